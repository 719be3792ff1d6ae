"""``%tensorinfo NAME…``: everything about tensors, arrays, modules and values (``torchmagic.tensorinfo()``)."""

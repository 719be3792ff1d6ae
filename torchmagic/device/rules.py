"""What a torch call means for devices: pure rules, no recording and no torch state.

The ``%%device`` watcher (:mod:`torchmagic.device.watcher`) asks these
questions of every user-level call it sees; each answer depends only on the
call's name and arguments (and, for copies, its output):

* :func:`sync_reason`: why the call makes Python wait for an asynchronous
  device: reading values back (``.item()``, ``.tolist()``, ``bool(x)``,
  printing, ``.cpu()``) or an output size that depends on the values
  (``nonzero``, boolean-mask indexing, ``torch.where(cond)``, ``unique``,
  ``bincount``, ``repeat_interleave`` with tensor repeats, ``equal``);
* :func:`copy_devices`: the (source, destination) devices when a copy-like
  call (``Tensor.to``/``cuda``/``cpu``/``copy_``/``type``, ``torch.tensor``/
  ``as_tensor``/``asarray``, ``Tensor.new_tensor``) moved data; creating a
  tensor on a device (``torch.ones(..., device=...)``) is not a copy;
* :func:`host_copy_waits`: whether such a copy makes Python wait;
* :func:`from_display`: whether the call comes from display machinery (a
  library's Python ``__repr__``) rather than the cell's own work.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from types import FrameType
from typing import Any

import torch
import torch.overrides

from torchmagic.i18n import N_

__all__ = [
    "COPY_NAMES",
    "PRINT_NAMES",
    "SYNC_CALLS",
    "HOST_COPY_WHY",
    "direction",
    "sync_reason",
    "copy_source",
    "copy_devices",
    "host_copy_waits",
    "is_mask",
    "from_display",
    "caller",
    "func_name",
]

#: user-level names that always wait for the device, and why
SYNC_CALLS: Mapping[str, str] = {
    "item": N_(".item() copies one value to Python"),
    "tolist": N_(".tolist() copies every value to Python"),
    "cpu": N_(".cpu() copies to the host and waits"),
    "numpy": N_(".numpy() needs the values on the host"),
    "nonzero": N_("nonzero: the output size depends on the values"),
    "argwhere": N_("argwhere: the output size depends on the values"),
    "masked_select": N_("masked_select: the output size depends on the values"),
    "unique": N_("unique: the output size depends on the values"),
    "unique_consecutive": N_("unique_consecutive: the output size depends on the values"),
    "bincount": N_("bincount: the output size depends on the largest value"),
    "equal": N_("equal returns a Python bool: the result is read back"),
    "allclose": N_("allclose returns a Python bool: the result is read back"),
    "is_nonzero": N_("is_nonzero returns a Python bool: the value is read back"),
    "__bool__": N_("a tensor in an if/while condition is read back to Python"),
    "__int__": N_("int(tensor) reads the value back"),
    "__float__": N_("float(tensor) reads the value back"),
    "__index__": N_("using a tensor as an index reads the value back"),
    "__repr__": N_("printing a tensor copies its values to the host"),
    "__format__": N_("formatting a tensor copies its values to the host"),
    "__str__": N_("printing a tensor copies its values to the host"),
}
#: calls that print a tensor (their sync row is called "print")
PRINT_NAMES = frozenset({"__repr__", "__format__", "__str__"})
# calls whose index argument (position 1) may hold a boolean mask
_MASK_INDEX = frozenset({"__getitem__", "__setitem__", "index_put_", "index_put", "_index_put_impl_"})
_MASK_WHY = N_("indexing with a boolean mask: the output size depends on the values")
_WHERE_WHY = N_("torch.where(cond) with one argument is nonzero: the output size depends on the values")
_REPEAT_WHY = N_("repeat_interleave with tensor repeats and no output_size: the output size depends on the values")
#: why a blocking copy to the host is a sync point
HOST_COPY_WHY = N_("copying to the host waits for the device")
# copy-like calls: their output is a copy of their source, maybe on another device
_COPY_METHODS = frozenset({"to", "cuda", "cpu", "copy_", "type", "mps", "xpu", "ipu", "hpu", "mtia", "new_tensor"})
_TENSOR_CTORS = frozenset({"tensor", "as_tensor", "asarray"})
#: every copy-like call name
COPY_NAMES = _COPY_METHODS | _TENSOR_CTORS
# frames whose torch calls are display machinery (a library's Python __repr__), not the cell's work
_DISPLAY_FRAMES = frozenset(
    "__repr__ __str__ __format__ _repr_pretty_ _repr_html_ _repr_markdown_ _repr_latex_ "
    "_repr_mimebundle_ __rich__ __rich_repr__ __rich_console__ _tensor_str".split()
)
_OVERRIDES = torch.overrides.__file__
_MASK_DTYPES = (torch.bool, torch.uint8)


def func_name(func: Callable[..., Any]) -> str:
    """The bare name a rule looks up: ``Tensor.item`` -> ``'item'``."""
    return str(getattr(func, "__name__", "") or getattr(func, "__qualname__", "") or func)


def direction(src: str, dst: str) -> str:
    """``'cpu', 'cuda:0'`` -> ``'host→device'``."""
    host_src, host_dst = src.startswith("cpu"), dst.startswith("cpu")
    if host_src and not host_dst:
        return N_("host→device")
    if host_dst and not host_src:
        return N_("device→host")
    return N_("device→device")


def is_mask(index: object) -> bool:
    """A boolean/uint8 tensor, alone or inside an index tuple/list (``x[m]``, ``x[:, m]``)."""
    items = index if isinstance(index, (list, tuple)) else (index,)
    return any(isinstance(i, torch.Tensor) and i.dtype in _MASK_DTYPES for i in items)


def sync_reason(name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str | None:
    """Why the call ``name(*args, **kwargs)`` waits for the device (``None`` if it does not)."""
    why = SYNC_CALLS.get(name)
    if why is not None:
        return why
    if name in _MASK_INDEX:
        index = args[1] if len(args) > 1 else kwargs.get("indices")
        return _MASK_WHY if is_mask(index) else None
    if name == "where":
        return _WHERE_WHY if len(args) + len(kwargs) == 1 else None
    if name == "repeat_interleave" and "output_size" not in kwargs:
        if len(args) == 1 and not kwargs:  # torch.repeat_interleave(repeats)
            return _REPEAT_WHY
        repeats = args[1] if len(args) > 1 else kwargs.get("repeats")
        return _REPEAT_WHY if isinstance(repeats, torch.Tensor) else None
    return None


def copy_source(name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str | None:
    """The device a copy-like call copies from: a tensor's, or ``'cpu'`` for host data (a list, NumPy)."""
    if name == "copy_":
        src = args[1] if len(args) > 1 else kwargs.get("src")
    elif name == "new_tensor":
        src = args[1] if len(args) > 1 else kwargs.get("data")
    elif name in _TENSOR_CTORS:
        src = args[0] if args else kwargs.get("data", kwargs.get("obj"))
    else:
        src = args[0] if args else None
    if isinstance(src, torch.Tensor):
        return str(src.device)
    if name in _TENSOR_CTORS or name == "new_tensor":
        return "cpu"  # Python or NumPy data lives on the host
    return None


def copy_devices(name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], out: object) -> tuple[str, str] | None:
    """(source, destination) when the copy-like call ``name`` returned ``out`` on another device."""
    if name not in COPY_NAMES or not isinstance(out, torch.Tensor):
        return None  # x.type() without arguments returns a string
    src = copy_source(name, args, kwargs)
    dst = str(out.device)
    if src is None or src == dst:
        return None
    return src, dst


def host_copy_waits(
    name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], src: str, dst: str, sync_types: Collection[str]
) -> bool:
    """Whether a copy from ``src`` to ``dst`` makes Python wait (a blocking copy off an async device).

    ``.cpu()`` is not counted here: :func:`sync_reason` flags it before the call.
    """
    if name in SYNC_CALLS or not dst.startswith("cpu") or src.split(":")[0] not in sync_types:
        return False
    non_blocking = bool(kwargs.get("non_blocking")) or (name == "copy_" and len(args) > 2 and args[2] is True)
    return not non_blocking


def from_display(frame: FrameType | None, func: Callable[..., Any], filename: str, max_depth: int = 60) -> bool:
    """Whether the call comes from display machinery (a library's ``__repr__``), not the cell.

    ``frame`` is the one that called the mode; the walk stops at the cell's
    own file (``filename``).  torch's own dispatch frames and the frame of
    ``func`` itself (``Tensor.__repr__`` asking for its override) are not
    callers.  A ``__repr__`` defined in the cell counts too.
    """
    return caller(frame, func, filename, max_depth)[0]


def caller(
    frame: FrameType | None, func: Callable[..., Any], filename: str, max_depth: int = 60
) -> tuple[bool, FrameType | None]:
    """:func:`from_display`, and the innermost frame of the cell the walk reached (``None``: none)."""
    own = getattr(func, "__code__", None)
    depth = 0
    while frame is not None and depth < max_depth:
        code = frame.f_code
        if code is not own and code.co_filename != _OVERRIDES and code.co_name in _DISPLAY_FRAMES:
            return True, None
        if code.co_filename == filename:
            return False, frame
        frame = frame.f_back
        depth += 1
    return False, None

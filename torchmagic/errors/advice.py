"""The one table of advice: what to write instead, for mistakes whose exception alone confuses learners.

Each row is matched on the exception's type and message (and, where the
message is too generic, the failing expression's text).  Advice says what to
write instead; it never replaces the original error, which still fails the
cell unchanged.  Rows that another explanation asks for by name (the
autograd errors of ``%%autograd``) carry that name and take the user's own
names as ``{tensor}`` (as prose) and ``{code}`` (as code); the any-cell
explainer fills them with neutral words.
"""

from __future__ import annotations

import re

__all__ = ["hint_for", "advice"]

_NEUTRAL = {"tensor": "the output", "code": "out"}

# (exception type or "", message regex, expression regex or "", advice)
_HINTS: list[tuple[str, str, str, str]] = [
    ("TypeError", r"'torch\.Size' object is not callable", "",
     "`.shape` is an attribute, not a method: write `t.shape` (or call `t.size()`)."),
    ("TypeError", r"'torch\.dtype' object is not callable", "",
     "`.dtype` is an attribute, not a method: write `t.dtype`."),
    ("TypeError", r"'torch\.device' object is not callable", "",
     "`.device` is an attribute, not a method: write `t.device`."),
    ("TypeError", r"'int' object is not callable", r"\.ndim\s*\(",
     "`.ndim` is an attribute: write `t.ndim` (or call `t.dim()`)."),
    ("TypeError", r"object is not subscriptable", r"\.size\s*\[",
     "`.size` is a method: write `t.size(0)` or `t.shape[0]`."),
    ("TypeError", r"'builtin_function_or_method' object is not iterable", r"\.size\b(?!\s*\()",
     "`.size` is a method: write `t.size()` or `t.shape`."),
    ("RuntimeError", r"Boolean value of Tensor with more than one value is ambiguous", "",
     "`if`/`and`/`or` need one True/False: use `(t > 0).any()`, `(t > 0).all()`, or compare one element."),
    ("", r"only one element tensors can be converted to Python scalars", "",
     ("To combine tensors use `torch.stack(tensors)` (new dim) or `torch.cat(tensors)` "
     "(existing dim); `.item()` works only on one-element tensors.")),
    ("RuntimeError", r"a leaf Variable that requires grad is being used in an in-place operation", "",
     ("Update parameters inside `with torch.no_grad():` (as optimizers do), or use an out-of-place "
      "operation on `w.detach()`.")),
    ("RuntimeError", r"modified by an inplace operation", "",
     ("Use the out-of-place form (`x = x + 1` instead of `x += 1`, `torch.relu(x)` instead of "
      "`x.relu_()`), or `.clone()` the tensor before changing it.")),
    ("RuntimeError", r"Trying to backward through the graph a second time", "",
     ("Recompute {tensor} (run the forward pass again) before each backward(), as a training loop does; "
      "to go back through one graph twice, pass `retain_graph=True` to the first backward().")),
    ("RuntimeError", r"element \d+ of tensors does not require grad|does not require grad and does not have a grad_fn",
     "", ("Create the parameters with `requires_grad=True` (or use `nn.Parameter`) and compute {tensor} "
          "outside `torch.no_grad()`, without `.detach()`.")),
    ("RuntimeError", r"grad can be implicitly created only for scalar outputs", "",
     ("Call backward() on a scalar: `{code}.sum().backward()` or `{code}.mean().backward()`; or pass the "
      "weights: `{code}.backward(gradient=torch.ones_like({code}))`.")),
    ("", r"Can't call numpy\(\) on Tensor that requires grad", "",
     "Use `t.detach().numpy()` (and `.cpu()` first for GPU tensors)."),
    ("TypeError", r"can't convert (cuda|mps|xpu).* to numpy", "",
     "Copy to the CPU first: `t.cpu().numpy()`."),
    ("RuntimeError", r"Profiler is already enabled on this thread", "",
     ("Only one PyTorch profiler can run at a time: stop the other one first. "
     "`%%tensorinfo --deep` runs one while the cell runs; run code that starts its own profiler without `--deep`.")),
    ("RuntimeError", r"Cannot access accelerator device when none is available|pin_memory=True requires", "",
     ("Pinned (page-locked) memory only speeds up copies to a GPU, and this machine has none: drop "
      "`pin_memory=True` / `.pin_memory()`, or write `pin_memory=torch.cuda.is_available()`.")),
    ("", r"Torch not compiled with CUDA enabled|Found no NVIDIA driver", "",
     ("This PyTorch has no GPU: pick the device with "
     "`device = 'cuda' if torch.cuda.is_available() else 'cpu'`.")),
    ("RuntimeError", r"view size is not compatible with input tensor's size and stride", "",
     ("The tensor is not contiguous (e.g. after `.T`, `.transpose`, `.permute`): "
     "use `.reshape(...)` or `.contiguous().view(...)`.")),
    ("RuntimeError", r"expected target dtype to be Long|expected scalar type Long but found", "",
     "Class targets must be integer class indices: use `target.long()`."),
    ("RuntimeError", r"result type \w+ can't be cast to the desired output type", "",
     "An in-place op cannot change a tensor's dtype: write `x = x + 0.5` or convert first with `x.float()`."),
    ("RuntimeError", r"expected .*to have the same dtype|same dtype|expected scalar type \w+ but found \w+", "",
     "Convert one side so both have the same dtype, e.g. `a.float()` or `b.to(a.dtype)`."),
    ("RuntimeError", r"Expected \dD \(batched\) or \dD \(unbatched\) input", "",
     "Add the batch dim with `x.unsqueeze(0)`, or check the layout (N, C, H, W)."),
    ("RuntimeError", (r"expected all tensors to be on the same device|is not on the expected device|"
     r"found at least two devices"), "",
     "Move them to one device: `b = b.to(a.device)` (and create new tensors with `device=a.device`)."),
    ("IndexError", r"Dimension out of range", "",
     "Valid dims for an n-d tensor are -n … n-1; check `t.ndim` and `t.shape`."),
]

_COMPILED = [(t, re.compile(m, re.IGNORECASE), re.compile(e) if e else None, h) for t, m, e, h in _HINTS]


def _row(exc_type: str, message: str, expression: str) -> str:
    for etype, msg_re, expr_re, text in _COMPILED:
        if etype and etype != exc_type:
            continue
        if not msg_re.search(message):
            continue
        if expr_re is not None and not expr_re.search(expression):
            continue
        return text
    return ""


def hint_for(exc_type: str, message: str, expression: str = "") -> str:
    """The advice for this error with neutral names (the any-cell explainer), or ``''``."""
    return _row(exc_type, message, expression).format(**_NEUTRAL)


def advice(exc_type: str, message: str, tensor: str = "", code: str = "") -> str:
    """The same advice with the user's names: ``tensor`` in prose (`` `loss` ``), ``code`` in code (``loss``)."""
    names = {"tensor": tensor or _NEUTRAL["tensor"], "code": code or _NEUTRAL["code"]}
    return _row(exc_type, message, "").format(**names)

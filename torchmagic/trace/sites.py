"""Which calls count as the user's: the frame walk from an op up to the cell.

A :class:`~torch.overrides.TorchFunctionMode` sees every torch call in the
process: the ones the cell's lines make, but also reprs and iteration,
module construction and weight init, torchmagic's own bookkeeping, other
files' code.  :func:`locate` walks from the calling frame up to the frame
running the cell and says whether the call is one to record, and how deep in
library code it happened (0: written on the cell's line; more: inside a
library call made there, such as ``lin(x)``).  It runs for every op, so it is
a plain loop over frames with set lookups and nothing else.
"""

from __future__ import annotations

import os
from types import FrameType

from torchmagic.core.funcs import FuncInfo

__all__ = ["LIBRARY_NOISE", "SETUP_FRAMES", "SKIP_FRAMES", "locate", "is_library_file"]

_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_GLUE_FILES = (os.path.join("torch", "_jit_internal.py"), os.path.join("torch", "_tensor.py"),
               os.path.join("torch", "overrides.py"))
_TORCH_DIR = ""  # filled on first use: importing torch here would make this module slow to import
_LIBRARY: dict[str, bool] = {}  # filename -> is_library_file (files never move while we run)

# Ops that library code runs for bookkeeping: hidden when not written on the cell's line itself.
LIBRARY_NOISE = frozenset(
    "dim size stride numel nelement is_contiguous element_size data_ptr is_floating_point "
    "is_complex get_device storage_offset untyped_storage device is_grad_enabled "
    "is_inference_mode_enabled".split()
)
# Library frames whose ops are set-up, not computation (module construction, weight init).
SETUP_FRAMES = frozenset({"__init__", "reset_parameters", "_init_weights", "__setstate__"})
# Frames whose ops are display or iteration machinery.
SKIP_FRAMES = frozenset(
    "__repr__ __str__ __format__ __iter__ __len__ __contains__ __hash__ __reversed__ __array__ "
    "_repr_pretty_ _repr_html_ _repr_markdown_ _repr_latex_ _repr_mimebundle_ __rich__ "
    "__rich_repr__ __rich_console__ _tensor_str __bool__".split()
)


def locate(frame: FrameType, filename: str, info: FuncInfo) -> tuple[FrameType, int, FrameType] | None:
    """``(cell frame, depth, caller)`` for a call to record, None for one to pass through.

    ``frame`` is the frame that called the op; ``filename`` the cell's.  A
    call is passed through when no frame of the cell is above it, when it
    runs inside display, iteration or set-up code, inside torchmagic, or when
    library code made it for bookkeeping (``x.size()`` inside ``F.linear``).
    ``caller`` is the frame that made the call: ``frame``, or for a torch
    function written in Python (``F.relu``, ``Tensor.backward``) the code
    that called that function, not torch's dispatch glue around it.
    """
    f: FrameType | None = frame
    depth = 0
    while f is not None and f.f_code.co_filename != filename:
        code = f.f_code
        if code.co_name in SKIP_FRAMES or code.co_name in SETUP_FRAMES or code.co_filename.startswith(_PKG_DIR):
            return None
        f = f.f_back
        depth += 1
    if f is None or f.f_code.co_name in SKIP_FRAMES:
        return None
    if not depth:
        return f, 0, frame
    if frame.f_code.co_name == "handle_torch_function":
        if depth <= 2:
            return f, 0, f  # a Python-level torch function (Tensor.backward, F.softmax) called on this line
        return f, depth, _past_glue(frame)
    if info.name in LIBRARY_NOISE or (info.name.startswith("_") and not info.name.startswith("__")):
        return None
    return f, depth, frame


def _past_glue(frame: FrameType) -> FrameType:
    """From ``handle_torch_function`` out to the code that called the torch function (past its wrappers)."""
    f = frame.f_back  # the torch function itself (F.relu), or a wrapper that calls it
    if f is None or f.f_back is None:
        return frame
    f = f.f_back
    while f.f_back is not None and f.f_code.co_filename.endswith(_GLUE_FILES):
        f = f.f_back  # boolean_dispatch (F.max_pool2d), Tensor's wrap-type-error decorators
    return f


def is_library_file(filename: str) -> bool:
    """True for PyTorch's own files, installed packages and the standard library; False for the user's code.

    The user's code is what a notebook cell defines (``<ipython-input-…>``,
    ``/tmp/ipykernel_…/….py``) or a module of their own project.
    """
    known = _LIBRARY.get(filename)
    if known is None:
        global _TORCH_DIR
        if not _TORCH_DIR:
            import torch

            _TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__))
        known = (
            filename.startswith((_TORCH_DIR, _PKG_DIR, os.path.dirname(os.__file__)))
            or "site-packages" in filename
            or "dist-packages" in filename
            or (filename.startswith("<") and not filename.startswith("<ipython-input-"))
        )
        if len(_LIBRARY) > 4096:
            _LIBRARY.clear()
        _LIBRARY[filename] = known
    return known

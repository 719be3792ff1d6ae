"""One line per tensor: the facts a glance needs, for listings, ``--short`` and the display hook.

Kind, shape, dtype, device, grad state, memory, and from the values their
range, mean and standard deviation with NaN/±Inf counts (statistics of the
finite values, as everywhere in ``%tensorinfo``).  Values are read from a
strided sample of at most ``summary_max_elements`` elements, so a listing of
thousands of tensors stays quick; nothing is kept of the objects.
"""

from __future__ import annotations

import reprlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torchmagic.core.meta import dtype_name, shape_of
from torchmagic.core.text import exc_line
from torchmagic.i18n import tr, trn
from torchmagic.tensors import stats
from torchmagic.tensors.report import SummaryRow

if TYPE_CHECKING:
    import torch

__all__ = ["SummaryOptions", "summary_row", "data_row", "tensor_row", "module_row", "array_row", "is_array"]


@dataclass
class SummaryOptions:
    """Fields named like their trait (see :mod:`torchmagic.options`)."""

    summary_max_elements: int


def is_array(obj: object) -> bool:
    """A NumPy ``ndarray`` (checked without importing NumPy)."""
    return type(obj).__module__ == "numpy" and type(obj).__name__ == "ndarray"


def _grad(t: torch.Tensor) -> str:
    """``requires grad`` (a leaf; ``, .grad set`` once backward filled it) or the node that made it."""
    if not t.requires_grad:
        return ""
    if not t.is_leaf:
        return type(t.grad_fn).__name__ if t.grad_fn is not None else tr("requires grad")
    return tr("requires grad, .grad set") if t.grad is not None else tr("requires grad")


def tensor_row(name: str, t: torch.Tensor, max_elements: int) -> SummaryRow:
    """A tensor's line; its values' statistics unless they cannot be read."""
    import torch

    row = SummaryRow(name=name, kind=type(t).__name__, shape=shape_of(t), dtype=dtype_name(t.dtype),
                     device=str(t.device), nbytes=int(t.numel() * t.element_size()), grad=_grad(t))
    reason = stats.skip_reason(t)
    if reason:
        row.note = reason.split(":")[0].split("：")[0]
        return row
    try:
        row.stats = stats.compute_stats(t, max_elements)
    except (RuntimeError, TypeError, NotImplementedError) as exc:  # exotic tensors: a missing fact, said once
        row.note, row.problem = tr("values not read"), exc_line(exc)
    if isinstance(t, torch.nn.Parameter):
        row.kind = "Parameter"
    return row


def array_row(name: str, a: object, max_elements: int) -> SummaryRow:
    """A NumPy array's line (its values read through ``torch.from_numpy``: no copy)."""
    import torch

    shape = tuple(int(s) for s in getattr(a, "shape", ()))
    row = SummaryRow(name=name, kind="ndarray", shape=shape, dtype=str(getattr(a, "dtype", "?")), device="cpu",
                     nbytes=int(getattr(a, "nbytes", 0)), grad="")
    try:
        t = torch.from_numpy(a)  # type: ignore[arg-type]
    except (TypeError, RuntimeError, ValueError):
        row.note = tr("dtype torch cannot read")
        return row
    if t.numel():
        row.stats = stats.compute_stats(t, max_elements)
    return row


def module_row(name: str, m: torch.nn.Module) -> SummaryRow:
    """A module's line: its parameters (elements, in how many tensors), dtypes, devices, memory."""
    params = list(m.parameters())
    buffers = list(m.buffers())
    numel = sum(int(p.numel()) for p in params)
    nbytes = sum(int(p.numel() * p.element_size()) for p in params + buffers)
    devices = sorted({str(p.device) for p in params + buffers})
    dtypes = sorted({dtype_name(p.dtype) for p in params})
    grad = tr("grad set") if any(p.grad is not None for p in params) else ""
    count = f"{numel:,}"
    note = (trn("{count} parameters in {n} tensor", "{count} parameters in {n} tensors", len(params), count=count)
            if params else tr("{count} parameters", count=count))
    return SummaryRow(name=name, kind=type(m).__name__, shape=None, dtype=", ".join(dtypes) or "-",
                      device=", ".join(devices) or "-", nbytes=nbytes, grad=grad, note=note)


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60


def data_row(name: str, obj: object, max_elements: int) -> SummaryRow | None:
    """The line of a tensor, array or module; ``None`` for anything else."""
    import torch

    if isinstance(obj, torch.Tensor):
        return tensor_row(name, obj, max_elements)
    if isinstance(obj, torch.nn.Module):
        return module_row(name, obj)
    if is_array(obj):
        return array_row(name, obj, max_elements)
    return None


def summary_row(name: str, obj: object, max_elements: int) -> SummaryRow:
    """The line of any object: tensors, arrays and modules in full, other values by type and repr."""
    row = data_row(name, obj, max_elements)
    if row is not None:
        return row
    return SummaryRow(name=name, kind=type(obj).__name__, shape=None, dtype="", device="", nbytes=0, grad="",
                      note=_REPR.repr(obj))

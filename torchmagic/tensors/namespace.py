"""``%tensorinfo`` with no argument: every tensor and module the user has, largest first.

Like ``%whos`` for PyTorch.  It reads metadata only (no values), so it stays
fast with thousands of names; sizes count each storage once per row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torchmagic.core.meta import dtype_name, fmt_shape, shape_of
from torchmagic.core.names import is_user_name
from torchmagic.tensors.report import NamespaceReport, NamespaceRow

__all__ = ["scan_namespace"]

MAX_ROWS = 500


def _tensor_row(name: str, t: Any, kind: str) -> NamespaceRow:
    grad = ""
    if t.requires_grad:
        grad = "grad set" if t.is_leaf and t.grad is not None else "requires grad"
    return NamespaceRow(name=name, kind=kind, shape=fmt_shape(shape_of(t)), dtype=dtype_name(t.dtype),
                        device=str(t.device), nbytes=int(t.numel() * t.element_size()), grad=grad)


def _module_row(name: str, m: Any) -> NamespaceRow:
    params = list(m.parameters())
    buffers = list(m.buffers())
    numel = sum(int(p.numel()) for p in params)
    nbytes = sum(int(p.numel() * p.element_size()) for p in params + buffers)
    devices = sorted({str(p.device) for p in params + buffers})
    dtypes = sorted({dtype_name(p.dtype) for p in params})
    grad = "grad set" if any(p.grad is not None for p in params) else ""
    return NamespaceRow(name=name, kind=type(m).__name__, shape=f"{numel:,} params",
                        dtype=", ".join(dtypes) or "-", device=", ".join(devices) or "-",
                        nbytes=nbytes, grad=grad)


def scan_namespace(namespace: Mapping[str, Any], max_rows: int = MAX_ROWS) -> NamespaceReport:
    import torch

    rows: list[NamespaceRow] = []
    for name, value in list(namespace.items()):
        if not is_user_name(name):
            continue
        if isinstance(value, torch.nn.Parameter):
            rows.append(_tensor_row(name, value, "Parameter"))
        elif isinstance(value, torch.Tensor):
            rows.append(_tensor_row(name, value, "Tensor"))
        elif isinstance(value, torch.nn.Module):
            rows.append(_module_row(name, value))
    rows.sort(key=lambda r: (-r.nbytes, r.name))
    total = sum(r.nbytes for r in rows)
    return NamespaceReport(rows=rows[:max_rows], total_bytes=total, hidden=max(len(rows) - max_rows, 0))

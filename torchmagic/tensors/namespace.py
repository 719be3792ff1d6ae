"""``%tensorinfo`` with no argument: every tensor, array and module the user has, largest first.

Like ``%whos`` for PyTorch, one line each (:mod:`torchmagic.tensors.summary`):
kind, shape, dtype, device, grad state, memory, range, mean/std and NaN/Inf
counts.  Values come from strided samples of at most
``summary_max_elements`` elements, so the listing stays quick with thousands
of names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torchmagic.core.names import is_user_name
from torchmagic.tensors.report import NamespaceReport, SummaryRow
from torchmagic.tensors.summary import SummaryOptions, data_row, summary_row

__all__ = ["scan_namespace", "summarize"]

MAX_ROWS = 500


def scan_namespace(namespace: Mapping[str, Any], options: SummaryOptions, max_rows: int = MAX_ROWS) -> NamespaceReport:
    """The listing: the user's tensors, arrays and modules, largest first (at most ``max_rows`` lines)."""
    rows: list[SummaryRow] = []
    for name, value in list(namespace.items()):
        if not is_user_name(name):
            continue
        row = data_row(name, value, options.summary_max_elements)
        if row is not None:
            rows.append(row)
    rows.sort(key=lambda r: (-r.nbytes, r.name))
    total = sum(r.nbytes for r in rows)
    return NamespaceReport(rows=rows[:max_rows], total_bytes=total, hidden=max(len(rows) - max_rows, 0))


def summarize(items: Sequence[tuple[str, Any]], options: SummaryOptions) -> NamespaceReport:
    """``%tensorinfo --short x y z``: one line per item, in the order asked."""
    rows = [summary_row(name, obj, options.summary_max_elements) for name, obj in items]
    return NamespaceReport(rows=rows, total_bytes=sum(r.nbytes for r in rows), asked=True)

"""trace.report: the plain data a trace is made of, and its one-line summary."""

from __future__ import annotations

import json

from torchmagic.errors.report import Operand
from torchmagic.trace.report import OpRow, TraceReport, Variant


def _rep(total: int, rows: int, dropped: int = 0, seconds: float = 0.0005) -> TraceReport:
    x = Operand("x", "tensor", (2,), "float32", "cpu", True)
    made = [OpRow(i, 2, "y = x + 1", "x + 1", "add", variants=[Variant((x,), (x,))]) for i in range(rows)]
    return TraceReport(rows=made, total_ops=total, distinct_ops=1, dropped_ops=dropped, seconds=seconds, max_rows=rows)


def test_summary_counts_and_times():
    assert _rep(1, 1).summary() == "1 op (1 distinct) in 1 row · 500 µs"
    assert _rep(12, 3, seconds=0.0123).summary() == "12 ops (1 distinct) in 3 rows · 12.3 ms"
    assert "5 more beyond the 2-row cap" in _rep(9, 2, dropped=5).summary()


def test_to_dict_is_json():
    data = json.loads(json.dumps(_rep(2, 2).to_dict()))
    assert data["rows"][1]["variants"][0]["inputs"][0]["label"] == "x"
    assert data["total_ops"] == 2 and data["view"] == "table"

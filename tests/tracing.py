"""Run a cell under ``%%tensorinfo`` and get its report: shared by the trace tests."""

from __future__ import annotations

from typing import Any

from torchmagic.trace.report import OpRow, TraceReport


def trace(ip: Any, capture: Any, body: str, opts: str = "") -> TraceReport:
    ip.run_cell("import torch")
    with capture():
        res = ip.run_cell(f"%%tensorinfo -o _rep {opts}\n{body}")
    assert res.error_in_exec is None, res.error_in_exec
    rep = ip.user_ns.pop("_rep")
    assert isinstance(rep, TraceReport)
    return rep


def rows(rep: TraceReport, op: str) -> list[OpRow]:
    return [r for r in rep.rows if r.op == op]

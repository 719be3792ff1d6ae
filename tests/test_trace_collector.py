"""trace.collector: the %%tensorinfo collector on its own, as the runner drives it."""

from __future__ import annotations

from torchmagic.core.cell import Cell
from torchmagic.errors.frames import was_explained
from torchmagic.options import options_for
from torchmagic.trace.collector import TraceCollector
from torchmagic.trace.options import TraceOptions
from torchmagic.trace.report import TraceReport


def _collect(ip, body: str):
    ip.run_cell("import torch")
    cell = Cell.compile(ip, body, "%%tensorinfo")
    coll = TraceCollector(cell, options_for(TraceOptions), ip)
    error = None
    with coll:
        try:
            cell.run()
        except Exception as exc:  # the user's error: the collector still reports
            error = exc
    return coll, coll.report(error), error


def test_report_of_a_passing_cell(ip):
    coll, rep, error = _collect(ip, "x = torch.ones(2, 3)\ny = x.sum(0)")
    assert error is None and isinstance(rep, TraceReport) and rep.error is None
    assert [r.op for r in rep.rows] == ["ones", "sum"]
    assert rep.rows[1].variants[0].outputs[0].label == "y"
    assert coll.fence is coll.recorder.fence and coll.fence.first is None


def test_failing_cell_is_explained_once_and_marked(ip):
    _, rep, error = _collect(ip, "a = torch.ones(2, 3)\nb = torch.ones(5, 4)\nc = a @ b")
    assert isinstance(error, RuntimeError)
    assert rep.error is not None and "inner dims 3 ≠ 5" in rep.error.title
    assert rep.error.line == 4 and rep.error.source == "c = a @ b"
    assert was_explained(error)  # the any-cell explainer stays quiet


def test_error_outside_any_op_is_explained_from_the_traceback(ip):
    _, rep, error = _collect(ip, "x = torch.ones(2, 3)\nn = x.shape()")
    assert isinstance(error, TypeError)
    assert rep.error is not None and "attribute, not a method" in rep.error.title
    assert was_explained(error)


def test_plain_python_errors_are_not_marked(ip):
    _, rep, error = _collect(ip, "1 / 0")
    assert isinstance(error, ZeroDivisionError) and rep.error is None
    assert not was_explained(error)


def test_recorder_is_off_after_the_cell(ip):
    import torch

    coll, _, _ = _collect(ip, "x = torch.ones(2)")
    before = coll.recorder.total
    torch.ones(3) + 1
    assert coll.recorder.total == before
    assert torch._C._len_torch_function_stack() == 0

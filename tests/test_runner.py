"""core.runner: the one way every cell magic runs its cell under collectors."""

from __future__ import annotations

import ast
import traceback
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from IPython.core.error import UsageError

from torchmagic.core.cell import Cell
from torchmagic.core.report import Report
from torchmagic.core.runner import Collector, Rerun, run_cell


@dataclass
class Demo(Report):
    _renderer = "tests.demo_renderer"
    name: str
    shape: tuple[int, ...]
    value: float


class Probe(Collector):
    """Records what happened to it; its report names the error it was given."""

    what = "the probe"

    def __init__(self, fail: str = "", required: bool = False, reruns: int = 0) -> None:
        super().__init__()
        self.fail = fail
        self.required = required  # type: ignore[misc]
        self.reruns = reruns
        self.events: list[str] = []

    def __enter__(self) -> Probe:
        self.events.append("enter")
        if self.fail == "enter":
            raise RuntimeError("cannot start")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.events.append("exit")
        if self.fail == "exit":
            raise RuntimeError("cannot stop")

    def more_runs(self, run: Rerun) -> None:
        for _ in range(self.reruns):
            run(())
        if self.fail == "more":
            raise RuntimeError("our bug between runs")

    def report(self, error: BaseException | None) -> Demo:
        self.events.append("report")
        if self.fail == "report":
            raise RuntimeError("cannot build")
        return Demo(name=type(error).__name__ if error else "ok", shape=(), value=0.0)


def run(ip: Any, body: str, *collectors: Probe) -> tuple[Any, BaseException | None, list[Any]]:
    shown: list[Any] = []
    try:
        return run_cell(ip, body, "%%probe", lambda cell: list(collectors), shown.append), None, shown
    except BaseException as exc:
        return None, exc, shown


def test_a_passing_cell_returns_its_value_and_shows_the_report(ip: Any) -> None:
    probe = Probe()
    value, error, shown = run(ip, "a = 20\na + 22", probe)
    assert (value, error) == (42, None) and ip.user_ns["a"] == 20
    assert probe.events == ["enter", "exit", "report"] and [r.name for r in shown] == ["ok"]


def test_a_failing_cell_shows_the_report_then_raises_the_same_exception(ip: Any) -> None:
    probe = Probe()
    ip.user_ns["boom"] = ValueError("the user's own")
    _, error, shown = run(ip, "x = 1\nraise boom", probe)
    assert error is ip.user_ns["boom"]  # the very object, unchanged
    assert [r.name for r in shown] == ["ValueError"]


def test_an_interrupt_still_shows_what_was_recorded(ip: Any) -> None:
    _, error, shown = run(ip, "raise KeyboardInterrupt", Probe())
    assert isinstance(error, KeyboardInterrupt) and [r.name for r in shown] == ["KeyboardInterrupt"]


def test_collectors_that_cannot_be_built_leave_a_plain_run(ip: Any, capsys: Any) -> None:
    def broken(cell: Cell) -> list[Collector]:
        raise RuntimeError("bug in start")

    value = run_cell(ip, "7 * 6", "%%probe --x", broken, lambda r: None)
    assert value == 42
    err = capsys.readouterr().err
    assert err.count("torchmagic:") == 1 and "starting %%probe failed (RuntimeError: bug in start)" in err


def test_a_collector_that_cannot_start_is_skipped(ip: Any, capsys: Any) -> None:
    bad, good = Probe(fail="enter"), Probe()
    value, error, shown = run(ip, "6 * 7", bad, good)
    assert value == 42 and error is None
    assert bad.events == ["enter"] and good.events == ["enter", "exit", "report"] and len(shown) == 1
    assert "starting the probe failed" in capsys.readouterr().err


def test_a_required_collector_that_cannot_start_stops_the_cell(ip: Any) -> None:
    ip.user_ns["ran"] = []
    _, error, _ = run(ip, "ran.append(1)", Probe(fail="enter", required=True))
    assert isinstance(error, UsageError) and "the cell did not run" in str(error)
    assert ip.user_ns["ran"] == []


@pytest.mark.parametrize("step", ["exit", "report"])
def test_our_failure_after_the_cell_keeps_its_value(ip: Any, capsys: Any, step: str) -> None:
    value, error, _ = run(ip, "40 + 2", Probe(fail=step))
    assert value == 42 and error is None
    assert capsys.readouterr().err.count("torchmagic:") == 1


def test_our_failure_after_a_failing_cell_keeps_its_error(ip: Any, capsys: Any) -> None:
    _, error, _ = run(ip, "1 / 0", Probe(fail="exit"))
    assert isinstance(error, ZeroDivisionError)
    assert "stopping the probe failed" in capsys.readouterr().err


def test_more_runs_keep_the_last_value_and_the_users_error(ip: Any, capsys: Any) -> None:
    ip.user_ns["n"] = 0
    value, error, _ = run(ip, "n += 1\nn", Probe(reruns=2))
    assert value == 3 and error is None
    ip.user_ns["n"] = 0
    _, error, shown = run(ip, "n += 1\nif n == 2:\n    raise ValueError(n)\nn", Probe(reruns=3))
    assert isinstance(error, ValueError) and error.args == (2,) and shown[0].name == "ValueError"
    ip.user_ns["n"] = 0
    value, error, _ = run(ip, "n += 1\nn", Probe(reruns=1, fail="more"))  # our bug: one line, the value stands
    assert value == 2 and error is None
    assert "running the cell again for the probe failed" in capsys.readouterr().err


def test_the_traceback_shows_no_torchmagic_frames(ip: Any) -> None:
    """From the cell on, no frame of ours (the trace's mode sits between the cell and torch)."""
    from torchmagic.options import options_for
    from torchmagic.trace.collector import TraceCollector
    from torchmagic.trace.options import TraceOptions

    ip.user_ns["torch"] = torch
    options = options_for(TraceOptions)
    with pytest.raises(RuntimeError) as info:
        run_cell(ip, "a = torch.ones(2)\nb = torch.ones(3)\na + b", "%%probe",
                 lambda cell: [TraceCollector(cell, options, ip)], lambda r: None)
    tb = info.value.__traceback__
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    cell_at = next(i for i, f in enumerate(frames) if f.f_code.co_filename in ip.compile._filename_map)
    ours = [f.f_code.co_filename for f in frames[cell_at:] if "/torchmagic/" in f.f_code.co_filename]
    assert ours == []
    # before the cell: the runner's frames, each hidden from IPython's traceback
    runner = [f for f in frames[:cell_at] if "/torchmagic/" in f.f_code.co_filename]
    assert runner and all(f.f_locals.get("__tracebackhide__") for f in runner)


def test_top_level_await_runs_inside_the_collectors(ip: Any) -> None:
    probe = Probe()
    value, error, _ = run(ip, "import asyncio\nawait asyncio.sleep(0)\nx = 5\nawait asyncio.sleep(0, result=x * 2)", probe)
    assert error is None and value == 10 and ip.user_ns["x"] == 5
    assert probe.events == ["enter", "exit", "report"]


class _Twice(ast.NodeTransformer):
    """An AST transformer like the ones users register: every integer literal doubled."""

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if type(node.value) is int:
            return ast.copy_location(ast.Constant(node.value * 2), node)
        return node


def test_the_shells_ast_transformers_apply(ip: Any) -> None:
    ip.ast_transformers.append(_Twice())
    try:
        value, error, _ = run(ip, "y = 20\ny + 1", Probe())
    finally:
        ip.ast_transformers.pop()
    assert error is None and value == 42 and ip.user_ns["y"] == 40


def test_tracebacks_name_the_running_cell(ip: Any) -> None:
    """``Cell In[N]``: N is the prompt number of the cell that ran the magic (IPython 8 and 9 alike)."""
    ip.user_ns["probe_start"] = lambda cell: [Probe()]
    ip.user_ns["run_cell_"] = run_cell
    result = ip.run_cell(
        "run_cell_(get_ipython(), '1 / 0', '%%probe', probe_start, lambda r: None)", store_history=True
    )
    error = result.error_in_exec
    assert isinstance(error, ZeroDivisionError)
    cell_file = traceback.extract_tb(error.__traceback__)[-1].filename
    assert ip.compile._filename_map[cell_file] == result.execution_count

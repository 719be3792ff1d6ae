"""core.cell: the exec path that every cell magic runs the user's code through."""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Iterator
from typing import Any

import pytest

from torchmagic.core.cell import Cell, trim_traceback


def test_runs_body_and_returns_last_expression(ip: Any) -> None:
    cell = Cell.compile(ip, "a = 20\nb = a + 1\nb * 2", "%%test")
    assert cell.run() == 42
    assert ip.user_ns["a"] == 20 and ip.user_ns["b"] == 21


def test_no_last_expression_returns_none(ip: Any) -> None:
    assert Cell.compile(ip, "c = 1\nif c:\n    c += 1", "%%test").run() is None
    assert ip.user_ns["c"] == 2


def test_line_numbers_match_the_notebook(ip: Any) -> None:
    cell = Cell.compile(ip, "x = 1\ny = 1 / 0", "%%test")
    assert cell.line(1) == "# %%test"
    assert cell.line(3) == "y = 1 / 0"
    with pytest.raises(ZeroDivisionError) as info:
        cell.run()
    frames = traceback.extract_tb(info.value.__traceback__)
    # Between the caller and the cell: nothing (no Cell.run, contextlib or exec frames).
    assert frames[0].name == "test_line_numbers_match_the_notebook"
    assert {f.filename for f in frames[1:]} == {cell.filename}
    assert frames[-1].lineno == 3  # line 1 is the magic line, as in the notebook
    assert "1 / 0" in (frames[-1].line or "")


def test_syntax_error_is_the_users(ip: Any) -> None:
    with pytest.raises(SyntaxError):
        Cell.compile(ip, "x = (1,", "%%test")


def test_contexts_are_exited_on_error_and_interrupt(ip: Any) -> None:
    events: list[str] = []

    @contextlib.contextmanager
    def ctx() -> Iterator[None]:
        events.append("enter")
        try:
            yield
        finally:
            events.append("exit")

    for code, exc in (("raise ValueError('x')", ValueError), ("raise KeyboardInterrupt", KeyboardInterrupt)):
        events.clear()
        with pytest.raises(exc):
            Cell.compile(ip, code, "%%test").run([ctx()])
        assert events == ["enter", "exit"]


def test_last_expression_runs_inside_contexts(ip: Any) -> None:
    inside: list[bool] = []
    state = {"on": False}

    @contextlib.contextmanager
    def ctx() -> Iterator[None]:
        state["on"] = True
        yield
        state["on"] = False

    ip.user_ns["probe"] = lambda: inside.append(state["on"]) or 7
    assert Cell.compile(ip, "probe()", "%%test").run([ctx()]) == 7
    assert inside == [True] and state["on"] is False


def test_trim_keeps_whole_traceback_without_cell_frames() -> None:
    try:
        raise RuntimeError("inside torchmagic")
    except RuntimeError as exc:
        tb = exc.__traceback__
    assert trim_traceback(tb, "<no such cell>") is tb


def test_cell_lineno_finds_the_innermost_cell_frame(ip: Any) -> None:
    import sys

    from torchmagic.core.cell import cell_lineno

    seen: list[int] = []
    ip.user_ns["where"] = lambda: seen.append(cell_lineno(cell.filename, sys._getframe(0)))
    cell = Cell.compile(ip, "x = 1\n\nwhere()", "%%test")
    cell.run()
    assert seen == [4]  # file line 4: the magic line, x = 1, blank, where()
    assert cell_lineno("<not a cell>", sys._getframe(0)) == 0

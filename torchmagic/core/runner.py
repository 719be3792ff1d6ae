"""The one way every cell magic runs its cell: compile once, run under collectors, show reports.

A cell magic parses its line and calls :func:`run_cell` with a *start*
function that builds its collectors for the compiled cell.  Everything else
is here, once:

1. compile the cell as IPython would (:meth:`Cell.compile`: input and AST
   transformers, top-level ``await``, tracebacks that show the cell's lines);
   a ``SyntaxError`` is the user's and propagates;
2. build the collectors; if that fails, one ``torchmagic:`` line and the
   cell runs plainly, as if torchmagic were not there;
3. run the cell inside them; each is entered and exited behind a fence, so a
   collector that cannot start is skipped and one that fails while stopping
   never replaces the cell's value or exception;
4. give collectors that need more runs of the same cell their runs
   (``%%device -n 10``, ``--compare``);
5. ask every collector that started for its report (also when the cell
   failed or was interrupted) and show it;
6. return the cell's value, or re-raise the user's exception unchanged, with
   torchmagic's own frames taken out of its traceback.

A **collector** (:class:`Collector`) is a context manager that records while
the cell runs and hands back a report (plain data, see
:mod:`torchmagic.core.report`).  It never renders and never raises into the
user's code: per-op failures go to its :class:`~torchmagic.core.guard.Fence`
and are said in one line after the cell.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, ClassVar, Literal

from IPython.core.error import UsageError

from torchmagic.core.cell import Cell
from torchmagic.core.guard import Fence, guarded, internal_failure
from torchmagic.core.report import Report
from torchmagic.core.text import exc_line
from torchmagic.i18n import N_, tr

__all__ = ["Collector", "Rerun", "run_cell", "run_collected", "drop_own_frames"]

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep

Rerun = Callable[[Iterable[AbstractContextManager[Any]]], Any]
"""Runs the cell once more inside the given contexts; returns its value or raises the user's error."""


class Collector:
    """Records while a cell runs, then hands back a report: the protocol of every cell magic.

    Override ``__enter__``/``__exit__`` (start and stop recording: exit runs
    however the cell ends) and :meth:`report`.  Collectors that run the cell
    again (timing repeats) override :meth:`more_runs`.
    """

    #: Said in one-line failure messages: "starting the %%tensorinfo trace failed (...)".
    what: ClassVar[str] = N_("the recording")  # marked with N_ where defined; tr() when said
    #: True when the cell must not run without this collector (``%%device cuda``
    #: sets the default device: running the cell on the CPU instead would be wrong).
    required: ClassVar[bool] = False

    def __init__(self) -> None:
        self.fence = Fence()  # per-op failures of our own bookkeeping, said once after the cell

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        return None

    def more_runs(self, run: Rerun) -> None:
        """After a run that succeeded: run the cell again as often as needed (the last run's value is kept)."""

    def report(self, error: BaseException | None) -> Report | None:
        """The report of what was recorded; ``error`` is the cell's exception, if it failed."""
        return None


class _Fenced:
    """Enter and exit one collector without letting its failures reach the cell.

    A collector that fails to start is skipped (one ``torchmagic:`` line; the
    cell runs unrecorded) unless it is ``required``; one that fails while
    stopping never replaces the cell's exception or value.
    KeyboardInterrupt passes through.
    """

    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self.inside = False
        self.started = False

    def __enter__(self) -> None:
        try:
            self.collector.__enter__()
        except Exception as exc:  # noqa: BLE001 - the fence: a collector's failure never reaches the cell
            if self.collector.required:
                raise UsageError(
                    tr("torchmagic could not start {what} ({error}); the cell did not run",
                       what=tr(self.collector.what), error=exc_line(exc))
                ) from None
            internal_failure(tr("starting {what}", what=tr(self.collector.what)), exc)
            return
        self.inside = self.started = True

    def __exit__(self, *exc_info: Any) -> Literal[False]:
        if self.inside:
            self.inside = False
            try:
                self.collector.__exit__(*exc_info)
            except Exception as exc:  # noqa: BLE001 - the fence: a collector's failure never reaches the cell
                internal_failure(tr("stopping {what}", what=tr(self.collector.what)), exc)
        return False  # never swallow the cell's exception


def run_cell(
    shell: Any,
    source: str,
    header: str,
    start: Callable[[Cell], Sequence[Collector]],
    show: Callable[[Report], None],
) -> Any:
    """Run ``source`` (a cell magic's body) under the collectors ``start`` builds; see the module docstring.

    ``header`` is the magic's own line (``%%tensorinfo --deep``), kept as the
    cell's first line so line numbers match the notebook.  ``show`` receives
    each report.  Returns the value of the cell's last expression.
    """
    __tracebackhide__ = True
    cell = Cell.compile(shell, source, header)
    collectors: Sequence[Collector] = ()
    try:
        collectors = start(cell)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - the fence: a collector's failure never reaches the cell
        internal_failure(tr("starting {magic}", magic=header.split()[0]), exc)
    return run_collected(cell, collectors, show)


def run_collected(cell: Cell, collectors: Sequence[Collector], show: Callable[[Report], None]) -> Any:
    """Steps 3 to 6 of :func:`run_cell` for a cell compiled already (the OpInfo sweep builds its own)."""
    __tracebackhide__ = True
    fenced = [_Fenced(c) for c in collectors]
    state = _State()
    try:
        state.value = cell.run(fenced)
    except UsageError:
        raise
    except BaseException as exc:  # noqa: BLE001 - the cell's own outcome, whatever it is, is re-raised below
        state.error = exc
    started = [f.collector for f in fenced if f.started]
    for collector in started:
        if state.error is None:
            _more_runs(collector, cell, state)
    for collector in started:
        _finish(collector, state.error, show)
    error, state.error = state.error, None
    if error is not None:
        with guarded(tr("cleaning the traceback")):
            drop_own_frames(error)
        try:
            raise error
        finally:
            error = None  # no reference cycle through this frame
    return state.value


class _State:
    """The cell's outcome so far: the value of its last run, or its exception."""

    def __init__(self) -> None:
        self.value: Any = None
        self.error: BaseException | None = None


def _more_runs(collector: Collector, cell: Cell, state: _State) -> None:
    """Let ``collector`` run the cell again; the user's error ends the cell, ours is one line."""
    __tracebackhide__ = True
    mine: list[BaseException] = []

    def rerun(contexts: Iterable[AbstractContextManager[Any]] = ()) -> Any:
        __tracebackhide__ = True
        try:
            state.value = cell.run(contexts)
        except BaseException as exc:
            mine.append(exc)
            raise
        return state.value

    try:
        collector.more_runs(rerun)
    except BaseException as exc:  # noqa: BLE001 - the user's error (re-raised below) or ours (one line)
        if isinstance(exc, KeyboardInterrupt) or any(exc is m for m in mine):
            state.error = exc
        else:
            internal_failure(tr("running the cell again for {what}", what=tr(collector.what)), exc)
    finally:
        mine.clear()


def _finish(collector: Collector, error: BaseException | None, show: Callable[[Report], None]) -> None:
    """Build and show one collector's report; our failures stay one line each."""
    report: Report | None = None
    what = tr(collector.what)
    with guarded(tr("building the report of {what}", what=what)):
        report = collector.report(error)
    if report is not None:
        with guarded(tr("showing the report of {what}", what=what)):
            show(report)
    collector.fence.warn(tr("recording {what}", what=what))


def drop_own_frames(exc: BaseException) -> None:
    """Unlink torchmagic's frames (recording modes, hooks) from the user's traceback.

    The cell's frames and the library frames between them stay; IPython
    would otherwise show our ``__torch_function__`` in the middle of the
    user's error.  So do the frames torch adds only because a mode is on:
    ``torch/overrides.py``'s dispatch just before our frames, and the API
    frame that called it (``Tensor.backward`` at its ``has_torch_function``
    line), which appears again, at its real line, right after ours.  The
    first entry is kept (a traceback cannot start empty).
    """
    entries: list[TracebackType] = []
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        entries.append(tb)
        tb = tb.tb_next
    own = [k > 0 and _is_own(e) for k, e in enumerate(entries)]
    overrides = _overrides_file()
    for k in range(1, len(entries)):
        if not own[k] or own[k - 1]:
            continue
        start = k  # a run of our frames starts here: drop the mode dispatch just before it
        while start > 1 and entries[start - 1].tb_frame.f_code.co_filename == overrides:
            start -= 1
        end = k
        while end < len(entries) and own[end]:
            end += 1
        if start < k and start > 1 and end < len(entries) and (
            entries[start - 1].tb_frame.f_code is entries[end].tb_frame.f_code
        ):
            start -= 1  # the API frame that dispatched to the mode; it follows again, at its real line
        for j in range(start, k):
            own[j] = True
    prev: TracebackType | None = None
    for entry, drop in zip(entries, own):
        if drop and prev is not None:
            prev.tb_next = entry.tb_next
        else:
            prev = entry


def _overrides_file() -> str:
    """torch's ``overrides.py`` (where a function mode is dispatched to), if torch is loaded."""
    torch = sys.modules.get("torch")
    where = getattr(torch, "__file__", None)
    return os.path.join(os.path.dirname(where), "overrides.py") if where else "\0"


def _is_own(entry: TracebackType) -> bool:
    return entry.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR)

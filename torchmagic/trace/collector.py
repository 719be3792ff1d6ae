"""The ``%%tensorinfo`` collector: the recorder around the cell, the trace report after it.

The recorder (:mod:`torchmagic.trace.recorder`) is the only global state
touched while the cell runs; names are resolved and the report is built
after the cell (:mod:`torchmagic.trace.build`).  When the cell fails, the
report carries the explanation of the error: the one the recorder made when
the op raised, or else one read from the traceback's frames, and the
exception is marked so the any-cell explainer does not say it again.
"""

from __future__ import annotations

from typing import Any

from torchmagic.core.cell import Cell
from torchmagic.core.names import user_names
from torchmagic.core.runner import Collector
from torchmagic.errors.frames import attached, explain_exception, mark_explained
from torchmagic.errors.report import Explanation
from torchmagic.i18n import N_
from torchmagic.trace.build import finish
from torchmagic.trace.modules import ModuleNames
from torchmagic.trace.options import TraceOptions
from torchmagic.trace.recorder import Recorder
from torchmagic.trace.report import TraceReport

__all__ = ["TraceCollector"]


class TraceCollector(Collector):
    """Records the torch ops of one cell; :meth:`report` is its :class:`TraceReport`."""

    what = N_("the %%tensorinfo trace")  # tr() where the runner says it

    def __init__(self, cell: Cell, options: TraceOptions, shell: Any = None) -> None:
        super().__init__()
        self.shell = shell  # where the any-cell explainer finds the cells' files; optional
        self.cell = cell
        self.options = options
        self.recorder = Recorder(
            cell.filename,
            options,
            names=user_names(cell.locals),
            codes=tuple(c for c in (cell.body, cell.last) if c is not None),
            namespace=cell.locals,
            modules=ModuleNames(cell.locals) if options.trace_modules else None,
        )
        self.fence = self.recorder.fence

    def __enter__(self) -> TraceCollector:
        self.recorder.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.recorder.__exit__(*exc_info)

    def report(self, error: BaseException | None) -> TraceReport:
        explanation = self._explain(error) if isinstance(error, Exception) else None
        names_now = ModuleNames(self.cell.locals) if self.recorder.tracker is not None else None
        return finish(self.recorder, self.cell.lines, user_names(self.cell.locals), self.options.view, explanation,
                      names_now)

    def _explain(self, error: BaseException) -> Explanation | None:
        explanation = attached(error) or explain_exception(error, self.shell)
        if explanation is not None:
            mark_explained(error)
            if explanation.line is not None and not explanation.source:
                explanation.source = self.cell.line(explanation.line)
        return explanation

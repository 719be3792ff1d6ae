"""Run a cell under the recorder and hand its report to the caller.

This is the whole of ``%%tensorinfo``'s behaviour in one function, so the
magic only parses options: compile the body like IPython does, run it inside
the recorder (the only global state touched, entered and exited by one
ExitStack in :meth:`Cell.run`), build the report after the modes are gone,
show it, and return the last expression's value or re-raise the user's
exception unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from torchmagic.core.guard import guarded, internal_failure
from torchmagic.trace.report import Explanation, TraceReport

__all__ = ["TraceOptions", "trace_cell"]


@dataclass
class TraceOptions:
    """Options of one traced cell (defaults mirror TorchMagics' traits)."""

    deep: bool = False
    view: str = "table"  # "table" or "source"
    max_rows: int = 200
    max_shapes: int = 4
    max_children: int = 40


def trace_cell(
    shell: Any,
    body: str,
    header: str,
    options: TraceOptions,
    emit: Callable[[TraceReport], None],
) -> Any:
    """Run ``body`` traced; ``emit`` receives the report (also when the cell fails)."""
    __tracebackhide__ = True
    from torchmagic.core.cell import Cell
    from torchmagic.core.names import user_names
    from torchmagic.trace.failing import explain_exception, mark_explained
    from torchmagic.trace.build import finish
    from torchmagic.trace.recorder import Recorder

    cell = Cell.compile(shell, body, header)
    rec: Any = None
    try:
        rec = Recorder(
            cell.filename,
            names=user_names(shell.user_ns),
            deep=options.deep,
            max_rows=options.max_rows,
            max_variants=options.max_shapes,
            max_children=options.max_children,
            codes=tuple(c for c in (cell.body, cell.last) if c is not None),
            namespace=shell.user_ns,
        )
    except Exception as exc:  # cannot record: run the cell as if torchmagic were not here
        internal_failure("starting the %%tensorinfo trace", exc)
    if rec is None:  # outside the except block: the cell's errors must not chain to ours
        return cell.run()
    try:
        result = cell.run([rec])
    except BaseException as exc:
        error: Explanation | None = None
        # Everything below is ours: it must never replace or hide the user's exception.
        with guarded("explaining the error in the %%tensorinfo report"):
            if isinstance(exc, Exception):
                error = rec.error if rec.error_id == id(exc) else explain_exception(exc, shell)
                if error is not None:
                    mark_explained(exc)
                    if error.line is not None and not error.source:
                        error.source = cell.line(error.line)
        with guarded("cleaning the traceback"):
            _drop_recorder_frames(exc)
        with guarded("building the %%tensorinfo report"):
            emit(finish(rec, cell.lines, user_names(shell.user_ns), options.view, error))
        rec.fence.warn("recording the %%tensorinfo trace")
        raise
    with guarded("building the %%tensorinfo report"):
        emit(finish(rec, cell.lines, user_names(shell.user_ns), options.view, None))
    rec.fence.warn("recording the %%tensorinfo trace")
    return result


def _drop_recorder_frames(exc: BaseException) -> None:
    """Unlink the recorder's own frame from the traceback (IPython never hides the last frame)."""
    from torchmagic.trace import recorder

    own = recorder.__file__
    tb = exc.__traceback__
    prev = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == own and prev is not None:
            prev.tb_next = tb.tb_next
        else:
            prev = tb
        tb = tb.tb_next

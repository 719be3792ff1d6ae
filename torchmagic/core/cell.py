"""Run a cell body the way IPython runs a cell, inside torchmagic's context managers.

Why not ``shell.run_cell(body)``?  A nested ``run_cell`` swallows the body's
exception (the outer cell would still be ``ok`` and *Run All* would go on) and
runs the display hook while our modes are still active.  Instead we compile the
body ourselves, exactly as ``%%time`` does: the source is registered with
IPython's compiler cache (so tracebacks show the cell's lines), the last bare
expression is split off and evaluated separately so the magic can return it for
IPython to display as ``Out[N]`` *after* every mode has been exited.
"""

from __future__ import annotations

import ast
import contextlib
from dataclasses import dataclass
from types import CodeType, FrameType, TracebackType
from typing import Any, ContextManager, Iterable, Literal

__all__ = ["Cell", "trim_traceback", "cell_lineno"]


@dataclass
class Cell:
    """A compiled cell body, ready to run in the user's namespace.

    ``filename`` is what frames executing the cell report as ``co_filename``;
    collectors use it to tell the user's own lines from library code.
    ``first_line`` is the file line of the body's first line (2: the magic's
    own ``%%name`` line is line 1, as in the notebook).
    """

    filename: str
    source: str
    lines: list[str]
    body: CodeType
    last: CodeType | None
    globals: dict[str, Any]
    locals: dict[str, Any]
    first_line: int = 2

    @classmethod
    def compile(cls, shell: Any, cell: str, header: str) -> "Cell":
        """Compile ``cell`` for ``shell``; a ``SyntaxError`` is the user's and propagates."""
        __tracebackhide__ = True
        body_src = shell.transform_cell(cell)
        source = f"# {header}\n{body_src}"
        filename = shell.compile.cache(source, shell.execution_count, raw_code=source)
        tree = shell.compile.ast_parse(source, filename=filename)
        last_expr: ast.Expression | None = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last_expr = ast.Expression(tree.body.pop().value)  # type: ignore[attr-defined]
        body = shell.compile(tree, filename, "exec")
        last = shell.compile(last_expr, filename, "eval") if last_expr is not None else None
        return cls(
            filename=filename,
            source=source,
            lines=source.splitlines(),
            body=body,
            last=last,
            globals=shell.user_global_ns,
            locals=shell.user_ns,
        )

    def line(self, lineno: int) -> str:
        """The source text of file line ``lineno`` (1-based), stripped."""
        if 1 <= lineno <= len(self.lines):
            return self.lines[lineno - 1].strip()
        return ""

    def run(self, contexts: Iterable[ContextManager[Any]] = ()) -> Any:
        """Execute the body inside ``contexts`` and return the last expression's value.

        The user's exception propagates unchanged in type and value, with the
        traceback trimmed to start at the cell, so the cell fails as usual.
        """
        __tracebackhide__ = True
        left: _UserModes = ([], [])
        try:
            with contextlib.ExitStack() as stack:
                for cm in contexts:
                    stack.enter_context(_Fenced(cm))
                depths = _mode_depths()
                try:
                    exec(self.body, self.globals, self.locals)
                    if self.last is not None:
                        return eval(self.last, self.globals, self.locals)
                    return None
                finally:  # modes the cell entered and left on: lift them off ours first
                    left = _lift_modes(depths)
        except BaseException as exc:
            exc.__traceback__ = trim_traceback(exc.__traceback__, self.filename)
            raise
        finally:  # ...and put them back once ours are gone, where the user left them
            _restore_modes(left)


_UserModes = tuple[list[Any], list[Any]]


def _mode_depths() -> tuple[int, int]:
    import torch

    return torch._C._len_torch_function_stack(), torch._C._len_torch_dispatch_stack()


def _lift_modes(depths: tuple[int, int]) -> _UserModes:
    """Pop the function/dispatch modes pushed above ``depths`` (the cell's own, left on).

    Without this, exiting our modes would pop the user's instead (mode exit
    pops the top of the stack) and leave torchmagic's recorder on for good.
    """
    import torch
    from torch.utils._python_dispatch import _pop_mode

    functions: list[Any] = []
    dispatches: list[Any] = []
    while torch._C._len_torch_function_stack() > depths[0]:
        functions.append(torch._C._pop_torch_function_stack())
    while torch._C._len_torch_dispatch_stack() > depths[1]:
        dispatches.append(_pop_mode())
    return functions, dispatches


def _restore_modes(left: _UserModes) -> None:
    import torch
    from torch.utils._python_dispatch import _push_mode

    functions, dispatches = left
    for mode in reversed(functions):
        torch._C._push_on_torch_function_stack(mode)
    for mode in reversed(dispatches):
        _push_mode(mode)


class _Fenced:
    """Enter/exit one of torchmagic's context managers without letting its bugs reach the cell.

    A context that fails to start is skipped (one ``torchmagic:`` line; the
    cell runs unrecorded); one that fails while exiting never replaces the
    cell's own exception or result.  KeyboardInterrupt passes through.
    """

    def __init__(self, cm: ContextManager[Any]) -> None:
        self.cm = cm
        self.entered = False

    def __enter__(self) -> None:
        try:
            self.cm.__enter__()
        except Exception as exc:  # noqa: BLE001
            from torchmagic.core.guard import internal_failure

            internal_failure(f"starting {type(self.cm).__name__}", exc)
            return
        self.entered = True

    def __exit__(self, *exc_info: Any) -> Literal[False]:
        if not self.entered:
            return False
        self.entered = False
        try:
            self.cm.__exit__(*exc_info)
        except Exception as exc:  # noqa: BLE001
            from torchmagic.core.guard import internal_failure

            internal_failure(f"stopping {type(self.cm).__name__}", exc)
        return False  # never swallow the cell's exception


def trim_traceback(tb: TracebackType | None, filename: str) -> TracebackType | None:
    """Drop leading frames until the first one from ``filename`` (the cell).

    If no frame belongs to the cell (the error came from torchmagic's own
    context managers), the traceback is returned whole.
    """
    cur = tb
    while cur is not None and cur.tb_frame.f_code.co_filename != filename:
        cur = cur.tb_next
    return cur if cur is not None else tb


def cell_lineno(filename: str, frame: FrameType | None, max_depth: int = 400) -> int:
    """The line the cell is on, walking out from ``frame`` (0 if no cell frame is found).

    Collectors call this from inside a torch hook to say which line of the
    cell caused the event; the innermost frame of the cell's file wins.
    """
    depth = 0
    while frame is not None and depth < max_depth:
        if frame.f_code.co_filename == filename:
            return frame.f_lineno
        frame = frame.f_back
        depth += 1
    return 0

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
import inspect
import sys
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from types import CodeType, FrameType, TracebackType
from typing import Any

from torchmagic.core.text import source_line

__all__ = ["Cell", "trim_traceback", "cell_lineno"]


@dataclass
class Cell:
    """A compiled cell body, ready to run in the user's namespace.

    ``filename`` is what frames executing the cell report as ``co_filename``;
    collectors use it to tell the user's own lines from library code.
    ``first_line`` is the file line of the body's first line (2: the magic's
    own ``%%name`` line is line 1, as in the notebook).  ``is_async`` is true
    when the body uses top-level ``await``.
    """

    filename: str
    source: str
    lines: list[str]
    body: CodeType
    last: CodeType | None
    globals: dict[str, Any]
    locals: dict[str, Any]
    first_line: int = 2
    is_async: bool = False

    @classmethod
    def compile(cls, shell: Any, cell: str, header: str) -> Cell:
        """Compile ``cell`` as IPython compiles a cell; a ``SyntaxError`` is the user's and propagates.

        Like IPython: input transformers (``%magic`` lines, ``!shell``), the
        shell's AST transformers (``shell.ast_transformers``) and top-level
        ``await`` (when ``%autoawait`` is on).  The cell is registered under
        the number of the notebook cell that runs the magic, so tracebacks say
        ``Cell In[N]`` with the prompt's N.
        """
        __tracebackhide__ = True
        body_src = shell.transform_cell(cell)
        source = f"# {header}\n{body_src}"
        filename = shell.compile.cache(source, _running_cell_number(shell), raw_code=source)
        tree = shell.compile.ast_parse(source, filename=filename)
        tree = shell.transform_ast(tree) or tree
        last_expr: ast.Expression | None = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last_expr = ast.Expression(tree.body.pop().value)
        flags = _TOP_LEVEL_AWAIT if getattr(shell, "autoawait", True) and _awaits(tree) else 0
        with shell.compile.extra_flags(flags):
            body = shell.compile(tree, filename, "exec")
            last = shell.compile(last_expr, filename, "eval") if last_expr is not None else None
        is_async = any(code is not None and code.co_flags & inspect.CO_COROUTINE for code in (body, last))
        return cls(
            filename=filename,
            source=source,
            lines=source.splitlines(),
            body=body,
            last=last,
            globals=shell.user_global_ns,
            locals=shell.user_ns,
            is_async=bool(is_async),
        )

    def line(self, lineno: int) -> str:
        """The source text of file line ``lineno`` (1-based), stripped."""
        return source_line(self.lines, lineno)

    def run(self, contexts: Iterable[AbstractContextManager[Any]] = ()) -> Any:
        """Execute the body inside ``contexts`` and return the last expression's value.

        The user's exception propagates unchanged in type and value, with the
        traceback trimmed to start at the cell, so the cell fails as usual.
        The contexts are entered in order and exited however the cell ends;
        :mod:`torchmagic.core.runner` fences them.
        """
        __tracebackhide__ = True
        left: _UserModes = ([], [])
        try:
            with contextlib.ExitStack() as stack:
                contexts = list(contexts)
                for cm in contexts:
                    stack.enter_context(cm)
                if contexts:  # collectors' function modes must not take PyTorch's fast path away
                    from torchmagic.core.fastpath import FastPath

                    stack.enter_context(FastPath())
                depths = _mode_depths()
                try:
                    self._execute(self.body)
                    return self._execute(self.last) if self.last is not None else None
                finally:  # modes the cell entered and left on: lift them off ours first
                    left = _lift_modes(depths)
        except BaseException as exc:
            exc.__traceback__ = trim_traceback(exc.__traceback__, self.filename)
            raise
        finally:  # ...and put them back once ours are gone, where the user left them
            _restore_modes(left)

    def _execute(self, code: CodeType) -> Any:
        """``exec``/``eval`` one code object; a coroutine (top-level ``await``) is run to its end here."""
        __tracebackhide__ = True
        result = eval(code, self.globals, self.locals)
        if code.co_flags & inspect.CO_COROUTINE:
            return _run_coroutine(result)
        return result


_TOP_LEVEL_AWAIT = getattr(ast, "PyCF_ALLOW_TOP_LEVEL_AWAIT", 0)


def _awaits(tree: ast.AST) -> bool:
    """Whether the cell awaits at top level (only then is it compiled as a coroutine, as IPython does)."""
    todo = list(ast.iter_child_nodes(tree))
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Await, ast.AsyncFor, ast.AsyncWith)):
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue  # their own scope: an await there is theirs
        todo.extend(ast.iter_child_nodes(node))
    return False


def _running_cell_number(shell: Any) -> int:
    """The execution count of the notebook cell that is running the magic.

    IPython 9 has already counted the running cell (``execution_count`` is
    N + 1 inside it), IPython 8 has not; the outer cell's own frame is in the
    compiler's filename map with its exact number, so we ask that first.
    """
    known = getattr(shell.compile, "_filename_map", {})
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        number = known.get(frame.f_code.co_filename)
        if isinstance(number, int):
            return number
        frame = frame.f_back
    return int(shell.execution_count)


def _run_coroutine(coro: Any) -> Any:
    """Run a cell's coroutine to completion on this thread (so torch modes see its ops).

    The magic is called synchronously, maybe from inside the kernel's running
    event loop, which cannot be re-entered; the coroutine runs on IPython's
    own asyncio loop with the running loop set aside meanwhile, as a
    terminal IPython runs an async cell.  Tasks of the kernel's loop wait
    until the cell ends.
    """
    import asyncio

    from IPython.core.async_helpers import get_asyncio_loop

    running = asyncio.events._get_running_loop()
    asyncio.events._set_running_loop(None)
    try:
        return get_asyncio_loop().run_until_complete(coro)
    finally:
        asyncio.events._set_running_loop(running)


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

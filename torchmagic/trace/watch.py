"""The NaN watch for any cell (``%tensorinfo --nan on``): where the first NaN/±Inf of a cell came from.

No trace: a light :class:`~torch.overrides.TorchFunctionMode` pushed before
each cell runs (IPython's ``pre_run_cell``) and popped after it
(``post_run_cell``), that only queues floating-point outputs for
:class:`~torchmagic.trace.nans.NanWatch`, tagged with the user's line
(code object, instruction, line number: no frames are kept).  After the
cell, if an op made NaN or ±Inf from finite inputs, one line says which
(line, sub-expression, op, counts and why); nothing is shown otherwise.

The mode never changes a result (it calls the op as given and only reads
outputs afterwards), skips torch.compile'd code, display code and
torchmagic's own cell magics (``%%tensorinfo`` has the same check built in),
and is taken off the stack however the cell ends, also when the cell left
a mode of its own above it, and on ``%unload_ext``.  On an accelerator,
values are read once at the end of the cell (see :mod:`torchmagic.trace.nans`).
"""

from __future__ import annotations

import linecache
import sys
from collections.abc import Callable, Sequence
from types import CodeType, FrameType
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from torchmagic.core.fastpath import FastPath
from torchmagic.core.funcs import FuncInfo, func_info
from torchmagic.core.guard import Fence
from torchmagic.i18n import tr
from torchmagic.trace.nans import Found, NanWatch, written
from torchmagic.trace.report import NanOrigin, NanReport
from torchmagic.trace.sites import SKIP_FRAMES, is_library_file
from torchmagic.trace.source import expression_at

__all__ = ["CellNanWatch", "origin_of"]

_MAX_DEPTH = 64  # frames walked from an op to the user's code
Tag = tuple[CodeType, int, int]  # the user's code object, instruction offset, line number
Op = Callable[..., Any]
Args = Sequence[Any]
Kwargs = dict[str, Any] | None


def _user_site(frame: FrameType | None) -> Tag | None:
    """The user's code that made the op: the innermost frame outside libraries (None for display code)."""
    depth = 0
    while frame is not None and depth < _MAX_DEPTH:
        code = frame.f_code
        if code.co_name in SKIP_FRAMES:
            return None
        if not is_library_file(code.co_filename):
            return code, frame.f_lasti, frame.f_lineno
        frame = frame.f_back
        depth += 1
    return None


class _Mode(TorchFunctionMode):
    def __init__(self, watch: NanWatch, fence: Fence) -> None:
        super().__init__()
        self.watch = watch
        self.fence = fence
        self.funcs: dict[Op, FuncInfo] = {}  # what each callable is, looked up once per cell

    def __torch_function__(self, func: Op, types: Sequence[type], args: Args = (), kwargs: Kwargs = None) -> Any:
        """Call the op as given; then queue its output for the NaN check, tagged with the user's line."""
        __tracebackhide__ = True
        kwargs = kwargs or {}
        if torch.compiler.is_compiling():
            return func(*args, **kwargs)
        watch = self.watch
        info = self.funcs.get(func)
        if info is None:
            try:
                info = self.funcs[func] = func_info(func)
            except Exception as exc:  # noqa: BLE001 - the watch is fenced: the user's op never sees our failure
                self.fence.fail(exc)
                return func(*args, **kwargs)
        if watch.pending and (info.inplace or (kwargs and ("out" in kwargs or kwargs.get("inplace")))):
            try:  # an in-place write must not change values we hold before we read them
                watch.before_write(written(info.inplace, args, kwargs))
            except Exception as exc:  # noqa: BLE001 - the watch is fenced: the user's op never sees our failure
                self.fence.fail(exc)
        out = func(*args, **kwargs)
        if not info.skip and isinstance(out, torch.Tensor):
            try:
                tag = _user_site(sys._getframe(1))
                if tag is not None:
                    watch.add(tag, info.name, args, kwargs, out)
            except Exception as exc:  # noqa: BLE001 - the watch is fenced: the user's op never sees our failure
                self.fence.fail(exc)
        return out


def origin_of(found: Found) -> NanOrigin:
    """The report's words for what the watch found."""
    tag: Tag = found.tag  # type: ignore[assignment]  # the watch tags ops with Tag
    code, lasti, line = tag
    source = linecache.getline(code.co_filename, line).strip()
    expression = expression_at(code, lasti)
    where = "" if code.co_name == "<module>" else str(getattr(code, "co_qualname", code.co_name))
    note = found.note()
    came_in = (tr("its inputs"),) if found.came_in else ()
    return NanOrigin(line, source, expression, found.op, found.made(), found.why, came_in, where, note)


class CellNanWatch:
    """Pushes the light mode before a cell and reports after it (see the module docstring)."""

    def __init__(self) -> None:
        self._mode: _Mode | None = None
        self._watch: NanWatch | None = None
        self._fast: FastPath | None = None
        self.fence = Fence()

    @property
    def active(self) -> bool:
        return self._mode is not None

    def start(self) -> None:
        """Before a cell: push the mode (once)."""
        if self._mode is not None:
            return
        self._watch = NanWatch()
        mode = _Mode(self._watch, self.fence)
        mode.__enter__()
        self._mode = mode
        self._fast = FastPath().__enter__()  # eval-mode Transformers keep their fused kernels

    def stop(self) -> NanReport | None:
        """After a cell: take the mode off the stack (wherever it is), read what is left, say what was found."""
        mode, self._mode = self._mode, None
        watch, self._watch = self._watch, None
        fast, self._fast = self._fast, None
        if fast is not None:
            fast.__exit__(None, None, None)
        if mode is not None:
            _remove(mode)
        if watch is None:
            return None
        try:
            found = watch.finish()
        except Exception as exc:  # noqa: BLE001 - fenced: a failure here loses the NaN line, never the cell
            self.fence.fail(exc)
            return None
        if found is None:
            return None
        return NanReport(origin_of(found), carried=max(0, sum(watch.carried.values()) - 1))


def _remove(mode: TorchFunctionMode) -> None:
    """Take ``mode`` off the function-mode stack, putting back any mode the cell left above it."""
    if not any(m is mode for m in torch.overrides._get_current_function_mode_stack()):
        return  # popped already (by the cell itself): nothing of ours is left
    above = []
    while True:
        top = torch._C._pop_torch_function_stack()
        if top is mode:
            break
        above.append(top)
    for m in reversed(above):
        torch._C._push_on_torch_function_stack(m)

"""Record every torch op a cell's own lines run, cheaply and without keeping tensors.

A :class:`TorchFunctionMode` sees each user-level call (``a + b``,
``x.view(3, -1)``, ``F.linear`` inside ``nn.Linear``).  For each call
:func:`~torchmagic.trace.sites.locate` walks up to the cell's frame (ops not
reached from the cell — reprs, iteration, torchmagic itself, other files —
pass straight through), and the call is aggregated by *site*: the cell
instruction, the library frame it ran in, and the op
(:class:`~torchmagic.trace.rows.Row`).  The expensive work (reading the
sub-expression, operand metadata, broadcasting, view checks) happens once per
site and once per distinct set of shapes (:mod:`torchmagic.trace.variants`);
a repeated op in a loop only bumps counters.  Rows and shape variants are
capped, so the log stays bounded for millions of ops.

Records hold strings, int tuples and weakrefs only.  Alongside:
:class:`~torchmagic.trace.modules.ModuleTracker` says which module call each
op ran in (a row's site includes it); :class:`~torchmagic.trace.nans.NanWatch`
checks floating-point outputs in batches for NaN/±Inf (the only tensors held,
at most 64 ops long, never beyond the cell); in-place writes to tensors
autograd saved are caught by :class:`~torchmagic.core.saved.SavedLog`;
``--deep`` also counts the aten ops each user-level op runs, read from
PyTorch's profiler (see :mod:`torchmagic.trace.aten`; a dispatch mode would
change results).
"""

from __future__ import annotations

import sys
import time
import weakref
from collections.abc import Mapping, Sequence
from types import CodeType, FrameType
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from torchmagic.core.funcs import FuncInfo, func_info
from torchmagic.core.guard import Fence
from torchmagic.core.saved import SavedLog
from torchmagic.errors.explain import FailedOp, explain
from torchmagic.errors.frames import attach, describe_module
from torchmagic.i18n import tr
from torchmagic.trace.aten import AtenLog, profiler_conflict
from torchmagic.trace.modules import ModuleTracker
from torchmagic.trace.nans import Found, NanWatch, written
from torchmagic.trace.options import TraceOptions
from torchmagic.trace.rows import Made, Row, Var
from torchmagic.trace.sites import SKIP_FRAMES, is_library_file, locate
from torchmagic.trace.source import Site, site_of
from torchmagic.trace.variants import describe, inputs_of, requested_shape, signature

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Recorder"]


class _FunctionMode(TorchFunctionMode):
    def __init__(self, rec: Recorder) -> None:
        super().__init__()
        self.rec = rec

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Sequence[type],
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        __tracebackhide__ = True
        if kwargs is None:
            kwargs = {}
        rec = self.rec
        if _is_compiling():
            return func(*args, **kwargs)
        try:  # our bookkeeping is fenced: it never changes the user's op or its error
            row = rec.before(func, args, sys._getframe(1))
        except Exception as exc:  # noqa: BLE001 - recording is fenced: the user's op never sees our failure
            rec.fence.fail(exc)
            row = None
        if row is None:
            return func(*args, **kwargs)
        if row.info.inplace or (kwargs and ("out" in kwargs or kwargs.get("inplace"))):
            try:  # before the op: the saving node is still reachable, held values not yet overwritten
                rec.before_write(row, args, kwargs)
            except Exception as exc:  # noqa: BLE001 - recording is fenced: the user's op never sees our failure
                rec.fence.fail(exc)
        stack = rec.stack
        stack.append(row)
        aten = rec.aten
        span = None
        if aten is not None:
            try:
                span = aten.open(row)
            except Exception as exc:  # noqa: BLE001 - recording is fenced: the user's op never sees our failure
                rec.fence.fail(exc)
        try:
            out = func(*args, **kwargs)
        except BaseException as exc:
            try:
                rec.failed(row, args, kwargs, exc)
            except Exception as internal:  # noqa: BLE001 - recording is fenced: the user's op never sees our failure
                rec.fence.fail(internal)
            raise
        finally:
            stack.pop()
            if span is not None:
                try:
                    aten.close(span, not stack)  # type: ignore[union-attr]
                except Exception as exc:  # noqa: BLE001 - recording is fenced: the user's op never sees our failure
                    rec.fence.fail(exc)
        try:
            rec.after(row, args, kwargs, out)
        except Exception as exc:  # noqa: BLE001 - recording is fenced: the user's op never sees our failure
            rec.fence.fail(exc)
        return out


def _is_compiling() -> bool:
    return bool(torch.compiler.is_compiling())


def _user_frame(frame: FrameType, cell: FrameType) -> FrameType:
    """The innermost frame of the user's own code between ``frame`` (the op's caller) and the cell's frame."""
    f: FrameType | None = frame
    while f is not None and f is not cell:
        if not is_library_file(f.f_code.co_filename):
            return f
        f = f.f_back
    return cell


class Recorder:
    """Context manager recording the ops that frames of ``filename`` run.

    ``names`` maps ``id(tensor) -> name`` for tensors that existed before
    (see :func:`torchmagic.core.names.user_names`); ``modules`` names
    modules likewise (:class:`torchmagic.trace.modules.ModuleNames`) and
    turns the module tree on (None: off).
    """

    def __init__(
        self,
        filename: str,
        options: TraceOptions,
        names: dict[int, str] | None = None,
        codes: tuple[CodeType, ...] = (),
        namespace: Mapping[str, Any] | None = None,
        modules: Callable[[nn.Module], str] | None = None,
    ) -> None:
        self.fence = Fence()  # failures of our own bookkeeping, said once after the cell
        self.filename = filename
        self.names = names or {}
        self.options = options
        self.deep = options.deep
        self.codes = codes  # the cell's code and namespace: does it start PyTorch's profiler itself?
        self.namespace = namespace
        self.aten: AtenLog | None = None
        self.deep_note = ""  # why --deep recorded no aten ops, if it didn't
        self.rows: dict[tuple[Any, ...], Row] = {}
        self.ordered: list[Row] = []
        self.total = 0
        self.dropped = 0
        self.stack: list[Row] = []
        self.seconds = 0.0
        self.saved = SavedLog()
        self.nans = NanWatch()
        self.nan_found: Found | None = None
        self._funcs: dict[Callable[..., Any], FuncInfo] = {}
        self._via_sites: dict[tuple[CodeType, int], Site] = {}  # the cell's site of each library call
        self.made: Made = {}  # what made the tensors the cell's ops returned (bounded)
        self.top: list[tuple[str, int]] = []  # the cell's own items in order: ("op", row) / ("module", node)
        self.tracker: ModuleTracker | None = None
        if modules is not None:
            self.tracker = ModuleTracker(filename, modules, self.made, self.top, self.fence)
        self._mode: _FunctionMode | None = None
        self._t0 = 0.0

    # -- context manager -------------------------------------------------------
    def __enter__(self) -> Recorder:
        if self.deep:
            self.deep_note = profiler_conflict(self.codes, self.namespace)
            self.namespace = None  # needed only here: hold no reference to the user's objects
            if not self.deep_note:
                aten = AtenLog(self._count)
                try:
                    aten.start()
                    self.aten = aten
                except Exception as exc:  # noqa: BLE001 - recording is fenced: the user's op never sees our failure
                    self.fence.fail(exc)
                    self.deep_note = tr("aten ops not recorded: PyTorch's profiler did not start")
        fmode = _FunctionMode(self)
        try:
            fmode.__enter__()
        except BaseException:
            self._stop_aten()
            raise
        self._mode = fmode
        if self.tracker is not None:
            try:
                self.tracker.start()
            except BaseException:
                self.__exit__(None, None, None)
                raise
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0
        try:
            try:
                self.nan_found = self.nans.finish()  # reads what is left (and lets go of it) first
            except Exception as exc:  # noqa: BLE001 - recording is fenced: a failure here only loses the NaN note
                self.fence.fail(exc)
        finally:  # however that ended (even a KeyboardInterrupt), every global piece is undone
            try:
                if self.tracker is not None:
                    self.tracker.stop()
            finally:
                mode, self._mode = self._mode, None
                try:
                    if mode is not None:
                        mode.__exit__(None, None, None)
                finally:
                    self._stop_aten()
                    self.stack.clear()
                    self.saved.clear()
                    self.nans.pending.clear()

    def _stop_aten(self) -> None:
        aten, self.aten = self.aten, None
        if aten is not None:
            aten.stop()

    def _count(self, row: Row, name: str) -> None:
        """``--deep``: one more ``name`` aten op under ``row`` (distinct names capped)."""
        if name in row.children or len(row.children) < self.options.trace_max_aten:
            row.children[name] = row.children.get(name, 0) + 1
        else:
            row.children_other += 1

    # -- recording ----------------------------------------------------------------
    def before(self, func: Callable[..., Any], args: Sequence[Any], frame: FrameType) -> Row | None:
        """Find (or make) the row for this call; None means: not a user op, pass through."""
        info = self._funcs.get(func)
        if info is None:
            info = self._funcs[func] = func_info(func)
        if info.skip:
            return None
        code = frame.f_code
        if code.co_filename == self.filename and code.co_name not in SKIP_FRAMES:  # on the cell's line: no walk
            f, depth, caller = frame, 0, frame
        else:
            found = locate(frame, self.filename, info)
            if found is None:
                return None
            f, depth, caller = found
        tracker = self.tracker
        twin = -1 if tracker is None else tracker.twin
        if depth == 0:
            key: tuple[Any, ...] = (f.f_code, f.f_lasti, func, twin)
        else:
            key = (f.f_code, f.f_lasti, func, caller.f_code, caller.f_lasti, twin)
        row = self.rows.get(key)
        if row is None:
            row = self._new_row(key, f, caller, info, len(args), depth, -1 if tracker is None else tracker.current)
            if row is None:
                return None
        elif tracker is not None and twin != tracker.current:  # a repeated call: its own node lists the row too
            tracker.add_op(row.index)
        row.count += 1
        self.total += 1
        return row

    def _new_row(
        self, key: tuple[Any, ...], f: FrameType, frame: FrameType, info: FuncInfo, nargs: int, depth: int, node: int
    ) -> Row | None:
        """A row for a new site: ``f`` is the cell's frame, ``frame`` the one that called the op."""
        if len(self.ordered) >= self.options.trace_max_rows:
            self.total += 1
            self.dropped += 1
            return None
        if depth:  # every op inside one library call on the cell's line shares the cell's site
            site = (self._via_sites.get((f.f_code, f.f_lasti)) or self._via_site(f, info.name, nargs)).copy()
        else:
            site = site_of(f, info.name, nargs, True)
        row = Row(len(self.ordered), f.f_lineno, info, site, site.expression if depth else "", node)
        user = f if depth == 0 else _user_frame(frame, f)
        if user is not f:  # inside a function of the user's own (a forward defined in a cell): read it there
            inner = site_of(user, info.name, nargs, user is frame)
            if user is frame:  # the op is written there (``F.relu(h)``), not inside a library call made there
                row.inner = inner.expression
            name = getattr(user.f_code, "co_qualname", user.f_code.co_name)  # Python >= 3.11: Net.forward
            row.inner_at = tr("{function}, line {line}: {code}", function=name, line=user.f_lineno,
                              code=inner.expression)
            site.arg_texts, site.elts = inner.arg_texts, inner.elts
            site.call_names = inner.call_names
        for name in site.call_names[:4]:
            value = user.f_locals.get(name, user.f_globals.get(name))
            if isinstance(value, torch.Tensor):
                row.via_refs.append((weakref.ref(value), name))
        self.rows[key] = row
        self.ordered.append(row)
        if node >= 0 and self.tracker is not None:
            self.tracker.nodes[node].items.append(("op", row.index))
            self.tracker.nodes[node].ops.add(row.index)
        else:
            self.top.append(("op", row.index))
        return row

    def _via_site(self, f: FrameType, op: str, nargs: int) -> Site:
        site = site_of(f, op, nargs, False)
        if len(self._via_sites) < 1024:
            self._via_sites[(f.f_code, f.f_lasti)] = site
        return site

    def after(self, row: Row, args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> None:
        sig = signature(args, kwargs, out)
        var = row.variants.get(sig)
        if var is not None:
            var.count += 1
        elif len(row.variants) < self.options.trace_max_shapes:
            row.variants[sig] = describe(row, args, kwargs, out, self.names, self.made)
        else:
            row.other += 1
        if type(out) is torch.Tensor or isinstance(out, torch.Tensor):
            if out.grad_fn is not None:
                self.saved.note(out, row.line)
            self.nans.add(row.index, row.op, args, kwargs, out)

    def failed(self, row: Row, args: Sequence[Any], kwargs: dict[str, Any], exc: BaseException) -> None:
        """The op raised: explain it in terms of its operands (the mode fences our failures)."""
        if not isinstance(exc, Exception):
            return
        inputs = inputs_of(row, args, kwargs, self.names, self.made)
        extra: dict[str, Any] = {}
        if row.info.reshape:
            extra["shape"] = requested_shape(args)
        if "dim" in kwargs:
            extra["dim"] = kwargs["dim"]
        elif row.op in ("cat", "stack", "concat", "concatenate") and len(args) > 1 and isinstance(args[1], int):
            extra["dim"] = args[1]
        failed = FailedOp(
            op=row.op,
            operands=[op for op, *_ in inputs],
            expression=row.site.expression,
            line=row.line,
            extra=extra,
        )
        if not row.variants:
            var = Var()
            var.inputs = inputs
            var.effect = "error"
            row.variants[("error",)] = var
        where = self._where(row)
        if where[0]:
            extra["module"] = where[0]
        explanation = explain(failed, type(exc).__name__, str(exc))
        if explanation is not None:
            if where[1]:
                explanation.details = (*explanation.details, where[1])
            attach(exc, explanation)

    def _where(self, row: Row) -> tuple[str, str]:
        """For a failing op inside a module: ``('net.fc = Linear(...)', 'inside net.fc, called at ...')``."""
        tracker = self.tracker
        if tracker is None or tracker.current < 0:
            return "", (tr("in {place}", place=row.inner_at) if row.inner_at else "")
        node = tracker.nodes[tracker.current]
        module = node.ref()
        path = tracker.path(node.index)
        layer = f"{path} = {describe_module(module)}" if module is not None else path
        if row.inner_at:
            return layer, tr("inside {path} ({type}), called from {place}", path=path, type=node.type,
                             place=row.inner_at)
        return layer, tr("inside {path} ({type})", path=path, type=node.type)

    # -- in-place on tensors autograd saved -------------------------------------------
    def before_write(self, row: Row, args: Sequence[Any], kwargs: dict[str, Any]) -> None:
        """Before an op that writes in place: check held outputs for NaN first, then the saved-tensor warning."""
        if self.nans.pending:
            self.nans.before_write(written(row.info.inplace, args, kwargs))
        if self.saved and row.info.inplace:
            self.check_inplace(row, args)

    def check_inplace(self, row: Row, args: Sequence[Any]) -> None:
        """Before an in-place op: warn when its target is a tensor a later backward() still needs."""
        target = args[0] if args else None
        if not isinstance(target, torch.Tensor):
            return
        by = self.saved.before_write(target)
        if by is None:
            return
        texts = row.site.arg_texts
        label = (texts[0] if texts else "") or self.names.get(id(target), "") or tr("this tensor")
        msg = tr("{name} was saved for backward by {node} (line {line}); modifying it in place makes {call} fail "
                 "({message})", name=label, node=by.node, line=by.line, call="backward()",
                 message="'modified by an inplace operation'")
        if msg not in row.warnings and len(row.warnings) < 4:
            row.warnings.append(msg)

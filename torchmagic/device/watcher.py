"""Watch a cell's torch calls for ``%%device``: copies, sync points, op times, new tensors.

:class:`Watcher` is a ``TorchFunctionMode``: it sees every user-level call,
what the cell wrote (``x.item()``, ``print(x)``, ``x.to("cuda")``) and what
nn.Module code calls for it (``F.linear``, the ``Tensor.to`` of each
parameter inside ``model.to(...)``).  For each call it asks the pure rules
(:mod:`torchmagic.device.rules`) whether it waits for the device or copies
across devices, times it (:class:`~torchmagic.device.ops.OpTimer`), hands its
new tensors to the memory tracker, and explains device-mismatch errors
before they propagate unchanged.

No ``TorchDispatchMode`` is pushed: while one is active PyTorch treats every
tensor as a subclass and takes other paths in composite ops and backward
formulas, which changes results in the last bits.  The price is what the
function level cannot see: calls made *inside* another torch call (a
composite op's pieces, ``Tensor.__repr__``'s copy of a GPU tensor to the
host, which is reported as a sync point, not as a transfer) and the aten ops
of ``backward()``; a sync hidden inside a C++ kernel or a backward formula
(say a ``nonzero`` inside some op's implementation) is not flagged.

Records are small named types of str/int keyed by cell line; no tensor,
frame or grad_fn is kept.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any, NamedTuple, Protocol

import torch
from torch.overrides import TorchFunctionMode

from torchmagic.core.cell import cell_lineno
from torchmagic.core.funcs import func_info
from torchmagic.core.guard import Fence
from torchmagic.core.meta import dtype_name, shape_of
from torchmagic.core.text import source_line
from torchmagic.device.devices import ASYNC_DEVICE_TYPES
from torchmagic.device.memory import TensorTracker, storage_key
from torchmagic.device.mismatch import explain, tensor_operands
from torchmagic.device.modules import ModuleRecorder
from torchmagic.device.ops import OpTimer, display_name, op_key
from torchmagic.device.report import Mismatch, SyncOp, Transfer
from torchmagic.device.rules import (
    COPY_NAMES,
    HOST_COPY_WHY,
    PRINT_NAMES,
    caller,
    copy_devices,
    direction,
    func_name,
    host_copy_waits,
    sync_reason,
)
from torchmagic.device.timing import Clock

__all__ = ["Watcher", "Recorders", "CellText", "prime"]


class CopyKey(NamedTuple):
    """Copies are grouped by cell line, op and devices."""

    line: int
    op: str
    src: str
    dst: str


class SyncKey(NamedTuple):
    """Sync points are grouped by cell line, op and device."""

    line: int
    op: str
    device: str


@dataclass(slots=True)
class Copies:
    """What the copies of one :class:`CopyKey` moved (shape and dtype of the first)."""

    count: int
    nbytes: int
    shape: tuple[int, ...]
    dtype: str


@dataclass(slots=True)
class Waits:
    """How often one :class:`SyncKey` made Python wait, and why."""

    count: int
    why: str


def _storage_keys(args: tuple[Any, ...]) -> set[int]:
    """Storages of a call's tensor inputs: outputs sharing one are views, not new memory."""
    keys: set[int] = set()
    for arg in args:
        items = arg if isinstance(arg, (list, tuple)) else (arg,)
        for item in items:
            if isinstance(item, torch.Tensor):
                key = storage_key(item)
                if key is not None:
                    keys.add(key)
    return keys


@dataclass
class _Primer:
    filename: str
    lines: list[str]
    locals: dict[str, Any]


_PRIMED = False


def prime() -> None:
    """Use the mode once on a tiny op, outside any timing.

    The first call through a Python mode imports parts of torch; a user's
    first ``%%device`` run must not be charged for that.
    """
    global _PRIMED
    if _PRIMED:
        return
    cell = _Primer("<prime>", [], {})
    with Watcher(cell, "cpu", Recorders(OpTimer(Clock()), TensorTracker(0))):
        (torch.zeros(1) + 1).sum().to("meta")
    _PRIMED = True


class CellText(Protocol):
    """What the watcher reads of the cell: its file name (to find its frames), lines and namespace."""

    filename: str
    lines: list[str]
    locals: dict[str, Any]


@dataclass
class Recorders:
    """Where the watcher hands what it sees: op times, new tensors, module calls."""

    ops: OpTimer[tuple[str, str]]
    tracker: TensorTracker | None = None
    modules: ModuleRecorder | None = None


class Watcher(TorchFunctionMode):
    """The function mode recording what a cell did on its devices (enter it around the cell).

    ``target`` is the device the cell runs on; ``sync_types`` are the device
    types on which reading back waits (the asynchronous ones; tests pass
    ``{"cpu"}`` to exercise the path); at most ``max_rows`` transfer and
    sync rows are kept.
    """

    def __init__(
        self,
        cell: CellText,
        target: str,
        recorders: Recorders,
        sync_types: frozenset[str] | set[str] = ASYNC_DEVICE_TYPES,
        max_rows: int = 50,
    ) -> None:
        super().__init__()
        self.filename, self.lines, self.namespace = cell.filename, cell.lines, cell.locals
        self.target = target
        self.ops, self.tracker, self.modules = recorders.ops, recorders.tracker, recorders.modules
        self.sync_types = frozenset(sync_types)
        self.max_rows = max_rows
        self.transfers: dict[CopyKey, Copies] = {}
        self.transfer_count = 0
        self.transfer_bytes = 0
        self.syncs: dict[SyncKey, Waits] = {}
        self._mismatches: list[tuple[BaseException, Mismatch]] = []
        self.recording_s = 0.0
        self.fence = Fence()  # failures of our own bookkeeping, said once after the cell
        self._frame: FrameType | None = None  # the cell's frame of the call being recorded
        if self.tracker is not None:
            self.tracker.where = self.where
        if self.modules is not None:
            self.modules.spent = self._spent

    def _spent(self) -> float:
        return self.recording_s

    # -- the mode --------------------------------------------------------------
    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: Mapping[str, Any] | None = None,
    ) -> Any:
        __tracebackhide__ = True
        kwargs = dict(kwargs or {})  # a DeviceContext below us edits it in place
        if torch.compiler.is_compiling():
            return func(*args, **kwargs)
        t0 = time.perf_counter()
        name = ""
        key: tuple[str, str] | None = None
        handle: int | None = None
        label = ""  # set for copy-like calls: the transfer row's op
        try:  # bookkeeping is fenced: a failure here must never change the user's op
            name = func_name(func)
            # a library's Python __repr__ (not the cell's work): its syncs and copies are
            # the printing's, and it is neither timed nor tracked
            display, self._frame = caller(sys._getframe(1), func, self.filename)
            why = sync_reason(name, args, kwargs)
            if why is not None and args and isinstance(args[0], torch.Tensor):
                dev = args[0].device
                if dev.type in self.sync_types:
                    printing = display or name in PRINT_NAMES
                    self.note_sync("print" if printing else display_name(func), str(dev), why)
            if not display and self.times(func):
                key = op_key(func, args, kwargs)
            if name in COPY_NAMES:
                label = "print" if display else key[0] if key is not None else display_name(func)
        except Exception as exc:  # noqa: BLE001 - fenced: our failure must not reach the user
            self.fence.fail(exc)
            key, label = None, ""
        t1 = time.perf_counter()
        if key is not None:
            try:
                handle = self.ops.begin()
            except Exception as exc:  # noqa: BLE001 - fenced: our failure must not reach the user
                self.fence.fail(exc)
                key = None
        t2 = time.perf_counter()
        try:
            out = func(*args, **kwargs)
        except Exception as exc:
            t3 = time.perf_counter()
            try:
                self.note_error(exc, name, args, kwargs)
            except Exception as internal:  # noqa: BLE001 - the user's error stays the user's
                self.fence.fail(internal)
            self._frame = None
            self.recording_s += (t2 - t0) + (time.perf_counter() - t3)
            raise
        t3 = time.perf_counter()
        if key is not None or label:
            try:
                if key is not None:
                    self.ops.end(key, handle)
                    self._track(key[0], args, kwargs, out)
                if label:
                    self._copied(label, name, args, kwargs, out)
            except Exception as exc:  # noqa: BLE001 - fenced: our failure must not reach the user
                self.fence.fail(exc)
        self._frame = None  # never keep the cell's frame past the call
        self.recording_s += (t1 - t0) + (time.perf_counter() - t3)
        return out

    def _copied(self, label: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        """A copy-like call: a transfer when its output landed on another device (maybe a sync too)."""
        devices = copy_devices(name, args, kwargs, out)
        if devices is None:
            return
        src, dst = devices
        self.note_transfer(label, src, dst, out)
        if host_copy_waits(name, args, kwargs, src, dst, self.sync_types):
            self.note_sync(label, src, HOST_COPY_WHY)

    def _track(self, op: str, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        """Hand the call's new tensors to the memory tracker (views of its inputs are not new).

        Inside a module, the module recorder also hooks their autograd nodes (backward per module).
        """
        if isinstance(out, torch.Tensor):
            outs: tuple[torch.Tensor, ...] = (out,)
        elif isinstance(out, (tuple, list)):
            outs = tuple(t for t in out if isinstance(t, torch.Tensor))
        else:
            return
        tracker = self.tracker
        if tracker is not None and outs:
            inputs = _storage_keys((*args, *kwargs.values()) if kwargs else args)
            for item in outs:
                tracker.add(item, op, inputs)
        modules = self.modules
        if modules is not None and modules.current():
            modules.made(outs, (*args, *kwargs.values()))

    # -- where in the cell -----------------------------------------------------
    def line(self) -> tuple[int, str]:
        """(line number, source text) of the innermost frame running the cell."""
        frame = self._frame  # found already by the walk of the call being recorded
        n = frame.f_lineno if frame is not None else cell_lineno(self.filename, sys._getframe(1))
        return n, source_line(self.lines, n)

    def where(self) -> tuple[int, str, int, str]:
        """:meth:`line`, the key of the innermost module running (0 outside modules) and its layer."""
        n, source = self.line()
        modules = self.modules
        key = modules.current() if modules is not None else 0
        return n, source, key, modules.layer(key) if modules is not None and key else ""

    # -- records -----------------------------------------------------------------
    @staticmethod
    def times(func: Callable[..., Any]) -> bool:
        """Whether a call is an op for the breakdown (not ``.shape``, ``len(x)`` or a private helper)."""
        info = func_info(func)
        return not info.skip and not (info.name.startswith("_") and not info.name.startswith("__"))

    def note_transfer(self, op: str, src: str, dst: str, out: torch.Tensor) -> None:
        nbytes = int(out.numel()) * int(out.element_size())
        self.transfer_count += 1
        self.transfer_bytes += nbytes
        key = CopyKey(self.line()[0], op, src, dst)
        rec = self.transfers.get(key)
        if rec is None:
            if len(self.transfers) >= self.max_rows:
                return
            rec = self.transfers[key] = Copies(0, 0, shape_of(out), dtype_name(out.dtype))
        rec.count += 1
        rec.nbytes += nbytes

    def note_sync(self, op: str, device: str, why: str) -> None:
        key = SyncKey(self.line()[0], op, device)
        rec = self.syncs.get(key)
        if rec is None:
            if len(self.syncs) >= self.max_rows:
                return
            rec = self.syncs[key] = Waits(0, why)
        rec.count += 1

    def note_error(self, exc: BaseException, op: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        """Explain ``exc`` if it is about devices (kept until :meth:`mismatch_for` asks)."""
        if any(seen is exc for seen, _ in self._mismatches) or len(self._mismatches) >= 8:
            return
        line, source = self.line()
        found = explain(exc, tensor_operands(args, kwargs), op, line, source, self.target, self.namespace)
        if found is not None:
            self._mismatches.append((exc, found))

    def mismatch_for(self, error: BaseException) -> Mismatch | None:
        """The explanation for the exception that ended the cell (or the one it chains from).

        Device errors the cell caught itself are not reported.  The exceptions
        are dropped here, so the watcher keeps no frames alive.
        """
        chain: list[BaseException] = []
        cur: BaseException | None = error
        while cur is not None and len(chain) < 8 and all(cur is not c for c in chain):
            chain.append(cur)
            cur = cur.__cause__ or cur.__context__
        found = next((m for exc, m in reversed(self._mismatches) if any(exc is c for c in chain)), None)
        self._mismatches.clear()
        return found

    # -- results -------------------------------------------------------------------
    def transfer_rows(self) -> list[Transfer]:
        rows = [
            Transfer(
                line=key.line,
                source=source_line(self.lines, key.line),
                op=key.op,
                src=key.src,
                dst=key.dst,
                direction=direction(key.src, key.dst),
                count=rec.count,
                nbytes=rec.nbytes,
                shape=rec.shape,
                dtype=rec.dtype,
            )
            for key, rec in self.transfers.items()
        ]
        return sorted(rows, key=lambda r: (r.line, r.op))

    def sync_rows(self) -> list[SyncOp]:
        rows = [
            SyncOp(
                line=key.line, source=source_line(self.lines, key.line), op=key.op, device=key.device,
                count=rec.count, why=rec.why,
            )
            for key, rec in self.syncs.items()
        ]
        return sorted(rows, key=lambda r: (r.line, r.op))

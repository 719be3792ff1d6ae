"""The ``%%device`` collector: default device, a recorded first run, clean repeats, compare.

The first run of the cell is the *recorded* one (:class:`RecordedRun`): the
watcher notes transfers, sync-forcing ops, per-op times and created tensors
while the run is timed (its time therefore includes torchmagic's recording,
and says so).  With ``-n`` or ``-r`` that first run is the warm-up, reported
separately, and the cell then runs ``loops x repeats`` more times with
nothing but the clock around it, like ``%timeit``.  ``--compare`` does all
this once per device.  The runner (:mod:`torchmagic.core.runner`) runs the
first recorded run; :meth:`DeviceSession.more_runs` the rest.

The default device is set with ``with torch.device(...)`` around the cell
body, so it is restored however the cell ends (exception, KeyboardInterrupt).
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from torchmagic.core.cell import Cell
from torchmagic.core.guard import Fence
from torchmagic.core.runner import Collector, Rerun
from torchmagic.core.text import exc_line
from torchmagic.device.devices import ASYNC_DEVICE_TYPES, resolve
from torchmagic.device.fold import fold_rows, label, named
from torchmagic.device.memory import AllocatorStats, TensorTracker, allocator_for, tracked_stats
from torchmagic.device.modules import ModuleRecorder
from torchmagic.device.ops import OpTimer
from torchmagic.device.report import DeviceReport, DeviceRun
from torchmagic.device.timing import Clock, Marks, clock_for, timed, timed_repeats
from torchmagic.device.watcher import Recorders, Watcher, prime
from torchmagic.i18n import N_, tr

if TYPE_CHECKING:
    import torch

__all__ = ["DeviceOptions", "Target", "DeviceSession", "RecordedRun", "default_device", "resolve_targets"]


@dataclass
class DeviceOptions:
    """Fields named like their trait (see :mod:`torchmagic.options`); the rest come from the line."""

    device_top_ops: int
    device_top_tensors: int
    device_op_events: int
    device_max_rows: int
    device_repeats: int
    loops: int | None = None  # -n
    repeats: int | None = None  # -r
    sync_types: frozenset[str] = field(default_factory=lambda: ASYNC_DEVICE_TYPES)

    @property
    def repeat(self) -> bool:
        """True with -n/-r: the recorded run is a warm-up, then loops x repeats clean runs."""
        return self.loops is not None or self.repeats is not None

    @property
    def plan(self) -> tuple[int, int]:
        """(loops, repeats) of the clean runs: -r defaults to ``device_repeats`` when -n is given."""
        return self.loops or 1, self.repeats or (self.device_repeats if self.loops is not None else 1)


@dataclass
class Target:
    """One device to run on: as asked (``cuda``), as resolved, and the fallback notice if any."""

    requested: str
    device: torch.device
    notice: str = ""


def _resolve(spec: str, fallback: str | None) -> Target:
    """``resolve`` with its own failures as one line: the cell is not run anywhere else.

    (Running a ``%%device meta`` cell on the CPU instead could allocate what
    the user meant never to allocate, so an unresolvable device stops here.)
    """
    try:
        device, notice = resolve(spec, fallback)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - fenced: our failure must not reach the user
        raise UsageError(
            tr("%%device could not resolve {device} ({error}); the cell did not run", device=repr(spec),
               error=type(exc).__name__ + ": " + str(exc))
        ) from None
    return Target(spec, device, notice or "")


def resolve_targets(devices: list[str], fallback: str | None = None) -> list[Target]:
    """Every device of the line, resolved before anything runs (a ``UsageError`` otherwise)."""
    return [_resolve(spec, fallback) for spec in devices]


def default_device(device: torch.device) -> AbstractContextManager[Any]:
    """``with torch.device(device)``, or nothing when ``device`` is already the default.

    Skipping the no-op case keeps ``%%device cpu`` free of the extra
    TorchFunctionMode that ``torch.device`` as a context adds to every call.
    """
    import torch

    try:
        current = torch.get_default_device()
    except (RuntimeError, AssertionError):  # e.g. a CUDA default on a CPU-only build
        current = None
    if current is not None and current.type == device.type and device.type in ("cpu", "meta"):
        return contextlib.nullcontext()
    return device  # torch.device is itself a context manager (a DeviceContext mode)


class RecordedRun:
    """One recorded, timed run of the cell on one device (a context manager around the run).

    Entering sets up everything that must exist before the clock starts
    (allocator baseline, the op-event pool, the run's two events, one drain
    synchronisation), the default device and the watcher; exiting stops the
    clock and copies what was recorded into ``run`` (plain data).  ``clock``
    and ``allocator`` default to the device's own; tests pass fakes, and
    ``allocator=False`` forces tracked memory.
    """

    def __init__(
        self,
        cell: Cell,
        target: Target,
        options: DeviceOptions,
        fence: Fence,
        clock: Clock | None = None,
        allocator: AllocatorStats | bool | None = True,
    ) -> None:
        device = target.device
        self.cell = cell
        self.options = options
        self.fence = fence
        self.clock = clock if clock is not None else clock_for(device)
        self.stats = allocator_for(device) if allocator is True else (allocator or None)
        self.device = device
        self.run = DeviceRun(device=str(device), requested=target.requested or str(device), notice=target.notice)
        self._stack = contextlib.ExitStack()
        self._marks: Marks | None = None
        self.tracker: TensorTracker | None = None
        self.watcher: Watcher | None = None
        self.ops: OpTimer[tuple[str, str]] | None = None
        self.modules: ModuleRecorder | None = None

    def __enter__(self) -> RecordedRun:
        with self._stack as stack:
            stack.enter_context(default_device(self.device))  # a failure here stops the cell (required)
            try:
                self._start_recording(stack)
            except Exception as exc:  # noqa: BLE001 - fenced: our failure must not reach the user
                self.fence.fail(exc)
                self.watcher = None
            try:
                start, end = self.clock.new_events(2)
                self.clock.synchronize()  # outside the timed region: earlier work is not ours
                self._marks = stack.enter_context(timed(self.clock, start, end))
            except Exception as exc:  # noqa: BLE001 - fenced: our failure must not reach the user
                self.fence.fail(exc)
            self._stack = stack.pop_all()
        return self

    def _start_recording(self, stack: contextlib.ExitStack) -> None:
        """Allocator baseline, op-event pool and the watcher: everything made before the clock starts."""
        options = self.options
        if self.stats is not None:
            self.stats.start()
        try:
            prime()
        except Exception as exc:  # noqa: BLE001 - fenced: our failure must not reach the user
            self.fence.fail(exc)
        self.tracker = TensorTracker(options.device_top_tensors, device=self.device)
        self.ops = OpTimer(self.clock, options.device_op_events)  # its event pool exists before the clock starts
        self.modules = ModuleRecorder(self.ops.sharing(), self.tracker, self.fence)
        recorders = Recorders(self.ops, self.tracker, self.modules)
        watcher = Watcher(self.cell, str(self.device), recorders, options.sync_types, options.device_max_rows)
        watcher.fence = self.fence
        stack.enter_context(self.modules)
        stack.enter_context(watcher)
        self.watcher = watcher

    def __exit__(self, *exc_info: Any) -> None:
        self._stack.__exit__(*exc_info)  # the clock stops (and syncs) first, then the watcher, the default device
        run = self.run
        if self._marks is not None:
            run.first = self._marks.timing(self.clock)
        if self.watcher is None or self.tracker is None or self.ops is None or self.modules is None:
            return  # recording did not start (said once after the cell)
        error = exc_info[1]
        try:
            paths = self._module_rows(self.modules)
            largest = self.tracker.finish(self.cell.locals, lambda keys: label([paths.get(k, "") for k in keys]))
            if isinstance(error, Exception):
                run.mismatch = self.watcher.mismatch_for(error)
            self.watcher.mismatch_for(_NO_ERROR)  # forget errors the cell caught itself
            run.op_count = self.ops.count
            run.ops = self.ops.stats(self.options.device_top_ops)
            run.op_time_kind = self.ops.kind
            run.transfers = self.watcher.transfer_rows()
            run.transfer_count = self.watcher.transfer_count
            run.transfer_bytes = self.watcher.transfer_bytes
            run.syncs = self.watcher.sync_rows()
            run.recording_ms = (self.watcher.recording_s + self.modules.overhead_s) * 1e3
            run.memory = (
                self.stats.stop(largest)
                if self.stats is not None
                else tracked_stats(self.device, self.tracker, largest)
            )
        except Exception as exc:  # noqa: BLE001 - fenced: our failure must not reach the user
            self.fence.fail(exc)

    def _module_rows(self, modules: ModuleRecorder) -> dict[int, str]:
        """Every module called (up to ``MODULE_ROWS``) and the rows shown (repeated layers folded); their paths.

        Fenced on its own: the rest of the report does not depend on it.
        """
        paths: dict[int, str] = {}
        try:
            paths = modules.names(self.cell.locals)
            run = self.run
            run.modules_unfolded = named(modules.rows(paths, MODULE_ROWS))
            run.modules = named(fold_rows(run.modules_unfolded)[: self.options.device_max_rows])
            run.modules_total = modules.count
        except Exception as exc:  # noqa: BLE001 - fenced: our failure must not reach the user
            self.fence.fail(exc)
        return paths


MODULE_ROWS = 1000  # modules kept in the report (the folded rows shown are fewer)
_NO_ERROR = Exception()


class DeviceSession(Collector):
    """Runs the cell on each device of the line and times it; :meth:`report` is the :class:`DeviceReport`."""

    what = N_("the %%device run")
    required = True  # without the default device the cell would run on the wrong device

    def __init__(
        self,
        cell: Cell,
        targets: list[Target],
        options: DeviceOptions,
        compare: bool = False,
        clock: Clock | None = None,
        allocator: AllocatorStats | bool | None = True,
    ) -> None:
        super().__init__()
        self.cell = cell
        self.targets = targets
        self.options = options
        self._clock = clock
        self._allocator = allocator
        self.result = DeviceReport(runs=[], cell_runs=0, compare=compare)
        self._current: RecordedRun | None = None
        self._repeating = False

    def _recorded(self, target: Target) -> RecordedRun:
        recorded = RecordedRun(self.cell, target, self.options, self.fence, self._clock, self._allocator)
        self.result.runs.append(recorded.run)
        self.result.cell_runs += 1
        self._current = recorded
        self._repeating = False
        return recorded

    def __enter__(self) -> DeviceSession:
        self._recorded(self.targets[0]).__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._current is not None:
            self._current.__exit__(*exc_info)

    def more_runs(self, run: Rerun) -> None:
        """The clean repeats on the first device, then recorded run and repeats on each other one."""
        for i, target in enumerate(self.targets):
            if i:
                run([self._recorded(target)])
            if self.options.repeat:
                self._repeat(run, target)

    def _repeat(self, run: Rerun, target: Target) -> None:
        assert self._current is not None
        loops, repeats = self.options.plan
        self._repeating = True

        def once() -> Any:
            self.result.cell_runs += 1
            return run(())

        with default_device(target.device):
            _, self._current.run.repeats = timed_repeats(once, self._current.clock, loops, repeats)
        self._repeating = False

    def report(self, error: BaseException | None) -> DeviceReport:
        if error is not None and self._current is not None:
            line = exc_line(error)
            self._current.run.error = tr("{error} (in a repeat run)", error=line) if self._repeating else line
        return self.result

"""Run a cell on a device: default device, recorded first run, clean repeats, compare.

The first run of the cell is the *recorded* one: the watcher notes transfers,
sync-forcing ops, per-op times and created tensors while it is timed (its
time therefore includes torchmagic's recording, and says so).  With ``-n``
or ``-r`` that first run is the warm-up, reported separately, and the cell
then runs ``loops x repeats`` more times with nothing but the clock around it,
like ``%timeit``.  ``--compare`` does all this once per device.

The default device is set with ``with torch.device(...)`` around the cell
body, so it is restored however the cell ends (exception, KeyboardInterrupt).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager

from IPython.core.error import UsageError

from torchmagic.core.cell import Cell
from torchmagic.core.guard import guarded
from torchmagic.device.devices import ASYNC_DEVICE_TYPES, resolve
from torchmagic.device.memory import AllocatorStats, TensorTracker, allocator_for, tracked_stats
from torchmagic.device.ops import OpTimer
from torchmagic.device.report import DeviceReport, DeviceRun
from torchmagic.device.timing import Clock, clock_for, timed_repeats, timed_run
from torchmagic.device.transfers import Watcher, prime

__all__ = ["RunOptions", "Outcome", "default_device", "run_on", "run_cell"]


@dataclass
class RunOptions:
    """How to run and what to keep (the magic fills this from traits and flags)."""

    loops: int = 1
    repeats: int = 1
    repeat: bool = False  # True with -n/-r: warm-up run, then loops x repeats clean runs
    top_ops: int = 10
    top_tensors: int = 5
    op_events: int = 512
    max_rows: int = 50
    sync_types: frozenset[str] = field(default_factory=lambda: ASYNC_DEVICE_TYPES)


@dataclass
class Outcome:
    """One device's run: the report part, the cell's value and its exception (if any)."""

    run: DeviceRun
    value: Any = None
    error: BaseException | None = None


def default_device(device: Any) -> ContextManager[Any]:
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


_NO_ERROR = Exception()


def _error_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def run_on(
    cell: Cell,
    device: Any,
    options: RunOptions,
    requested: str = "",
    notice: str = "",
    clock: Clock | None = None,
    allocator: AllocatorStats | None | bool = True,
) -> Outcome:
    """Run ``cell`` on ``device``; exceptions from the cell are returned, not raised.

    ``clock`` and ``allocator`` default to the device's own (CUDA events and
    caching-allocator statistics on CUDA); tests pass fakes.  ``allocator=False``
    forces tracked memory.  KeyboardInterrupt propagates after state is restored.
    """
    clock = clock if clock is not None else clock_for(device)
    stats = allocator_for(device) if allocator is True else (allocator or None)
    tracker = TensorTracker(options.top_tensors, device=device)
    with guarded("warming up the %%device recorder"):
        prime()
    ops = OpTimer(clock, options.op_events)  # its event pool is created here, ahead of the run
    watcher = Watcher(
        cell.filename,
        cell.lines,
        str(device),
        ops,
        tracker,
        cell.locals,
        options.sync_types,
        options.max_rows,
    )
    run = DeviceRun(device=str(device), requested=requested or str(device), notice=notice)
    outcome = Outcome(run=run)
    fence = watcher.fence
    mine: list[BaseException] = []  # exceptions that came out of the cell itself
    got: list[Any] = []  # the cell's value, kept even if our timing fails after it

    def first() -> Any:
        try:
            got.append(cell.run([default_device(device), watcher]))
        except Exception as exc:
            mine.append(exc)
            raise
        return got[0]

    try:
        if stats is not None:
            stats.start()
        outcome.value, run.first = timed_run(first, clock)
    except Exception as exc:
        if mine and exc is mine[-1]:  # the user's error: reported, then re-raised by the caller
            outcome.error = exc
            run.error = _error_line(exc)
            try:
                run.mismatch = watcher.mismatch_for(exc)
            except Exception as internal:  # noqa: BLE001
                fence.fail(internal)
        elif mine:  # the cell failed, then our timing did: the user's error wins
            outcome.error = mine[-1]
            run.error = _error_line(mine[-1])
            fence.fail(exc)
        else:  # torchmagic failed before or after a cell that succeeded
            outcome.value = got[0] if got else None
            fence.fail(exc)
    finally:
        largest: list[Any] = []
        try:
            largest = tracker.finish(cell.locals)
            watcher.mismatch_for(_NO_ERROR)  # forget errors the cell caught itself
        except Exception as exc:  # noqa: BLE001 - never replaces the user's error
            fence.fail(exc)
    try:
        _fill(run, ops, watcher, options)
        run.memory = stats.stop(largest) if stats is not None else tracked_stats(device, tracker, largest)
    except Exception as exc:  # noqa: BLE001
        fence.fail(exc)
    if outcome.error is not None or not options.repeat:
        fence.warn("recording the %%device run")
        return outcome

    def once() -> Any:
        try:
            return cell.run()
        except Exception as exc:
            mine.append(exc)
            raise

    try:
        with default_device(device):
            outcome.value, run.repeats = timed_repeats(once, clock, options.loops, options.repeats)
    except Exception as exc:
        if mine and exc is mine[-1]:
            outcome.error = exc
            run.error = _error_line(exc) + " (in a repeat run)"
        else:
            fence.fail(exc)
    fence.warn("recording the %%device run")
    return outcome


def _fill(run: DeviceRun, ops: OpTimer, watcher: Watcher, options: RunOptions) -> None:
    """Copy what the watcher and op timer recorded into the report (plain data)."""
    run.op_count = ops.count
    run.ops = ops.stats(options.top_ops)
    run.op_time_kind = ops.kind
    run.transfers = watcher.transfer_rows()
    run.transfer_count = watcher.transfer_count
    run.transfer_bytes = watcher.transfer_bytes
    run.syncs = watcher.sync_rows()
    run.recording_ms = watcher.recording_s * 1e3


def _resolve(spec: str, fallback: str | None) -> tuple[str, Any, str | None]:
    """``resolve`` with its own failures as one line: the cell is not run anywhere else.

    (Running a ``%%device meta`` cell on the CPU instead could allocate what
    the user meant never to allocate, so an unresolvable device stops here.)
    """
    try:
        return (spec, *resolve(spec, fallback))
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - torchmagic's or torch's bug: one line, no traceback
        raise UsageError(
            f"%%device could not resolve {spec!r} ({type(exc).__name__}: {exc}); the cell did not run"
        ) from None


def run_cell(
    cell: Cell,
    devices: list[str],
    options: RunOptions,
    fallback: str | None = None,
    compare: bool = False,
    announce: Callable[[str], None] | None = None,
) -> tuple[DeviceReport, Any, BaseException | None]:
    """Resolve ``devices`` (UsageError before anything runs), then run the cell on each.

    Returns the report, the last run's value and the first exception (the
    caller shows the report and re-raises it).  ``announce`` is told each
    fallback notice before the cell runs.
    """
    resolved = [_resolve(spec, fallback) for spec in devices]
    if announce is not None:
        for _spec, _device, notice in resolved:
            if notice:
                announce(notice)
    report = DeviceReport(runs=[], cell_runs=0, compare=compare)
    value: Any = None
    for spec, device, notice in resolved:
        outcome = run_on(cell, device, options, requested=spec, notice=notice or "")
        report.runs.append(outcome.run)
        report.cell_runs += 1 + (options.loops * options.repeats if options.repeat else 0)
        value = outcome.value
        if outcome.error is not None:
            if outcome.run.repeats is None and options.repeat:
                report.cell_runs -= options.loops * options.repeats
            return report, None, outcome.error
    return report, value, None

"""Honest cell timing: a host clock everywhere, device events where they exist.

CUDA (and MPS) run kernels asynchronously: Python returns from ``a @ b``
long before the GPU is done, so a plain stopwatch measures launch time.  The
rules this module keeps:

* event objects are created *before* the timed region (creating them is not
  free and must not be timed);
* the device is synchronised once before timing starts (so work queued by an
  earlier cell is not charged to this one) and exactly once at the end of each
  timed run, after the end event is recorded, never inside the timed region;
* elapsed times are read only after that synchronisation.

The CPU clock is ``time.perf_counter``; for CPU and ``meta`` cells the
"device" is the host, so there is no device time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from torchmagic.device.report import RepeatStats, Timing

if TYPE_CHECKING:
    import torch

__all__ = ["Clock", "HostClock", "EventClock", "clock_for", "timed", "timed_run", "timed_repeats"]

T = TypeVar("T")


class Clock:
    """Interface of the clocks (the host clock is the no-op base)."""

    name = "host clock (time.perf_counter)"
    has_events = False

    def new_events(self, n: int) -> list[Any]:
        """``n`` event objects, made now so none is created while timing."""
        return [None] * n

    def record(self, event: Any) -> None:
        """Enqueue ``event`` on the device's current stream (no wait)."""

    def synchronize(self) -> None:
        """Wait for the device to finish everything queued."""

    def elapsed_ms(self, start: Any, end: Any) -> float | None:
        """Device time between two recorded events; only valid after a synchronisation."""
        return None


class HostClock(Clock):
    """CPU and ``meta``: work is done when Python returns."""


class EventClock(Clock):
    """CUDA/MPS: timing events on the current stream plus one synchronisation.

    ``module`` is ``torch.cuda`` or ``torch.mps``; tests pass a fake with the
    same ``Event``/``synchronize`` surface to check the order of calls.
    """

    has_events = True

    def __init__(self, module: Any, device: torch.device | None = None) -> None:
        self.module = module
        self.device = device
        self.name = f"{getattr(module, '__name__', 'device').rsplit('.', 1)[-1].upper()} events"

    def new_events(self, n: int) -> list[Any]:
        """Create ``n`` events and record each once right away.

        torch creates the underlying CUDA event lazily, on its first
        ``record()``; recording here (outside any timed region) makes sure
        that cost is paid now.  Recording again later simply moves the event.
        """
        events = [self.module.Event(enable_timing=True) for _ in range(n)]
        for event in events:
            event.record()
        return events

    def record(self, event: Any) -> None:
        event.record()

    def synchronize(self) -> None:
        if self.device is not None and self.module.__name__.endswith("cuda"):
            self.module.synchronize(self.device)
        else:
            self.module.synchronize()

    def elapsed_ms(self, start: Any, end: Any) -> float | None:
        return float(start.elapsed_time(end))


def clock_for(device: torch.device) -> Clock:
    """The clock for a ``torch.device``: events on CUDA/MPS, the host clock otherwise."""
    import torch

    if device.type == "cuda":
        return EventClock(torch.cuda, device)
    if device.type == "mps" and hasattr(torch, "mps") and hasattr(torch.mps, "Event"):
        return EventClock(torch.mps, device)
    return HostClock()


@dataclass
class Marks:
    """Raw readings of one timed run, resolved into a :class:`Timing` after the sync."""

    t0: float
    t_host: float
    t_wall: float
    start: Any
    end: Any

    def timing(self, clock: Clock, loops: int = 1) -> Timing:
        device = clock.elapsed_ms(self.start, self.end) if clock.has_events else None
        return Timing(
            host_ms=(self.t_host - self.t0) * 1e3 / loops,
            wall_ms=(self.t_wall - self.t0) * 1e3 / loops,
            device_ms=None if device is None else device / loops,
        )


@contextmanager
def timed(clock: Clock, start: Any, end: Any) -> Iterator[Marks]:
    """Time the block between two events; the only synchronisation is after ``end``.

    However the block ends (an exception, an interrupt) the end event is
    recorded and the device synchronised, so the next timing starts clean.
    The :class:`Marks` are complete once the block has exited.
    """
    marks = Marks(0.0, 0.0, 0.0, start, end)
    marks.t0 = time.perf_counter()
    clock.record(start)
    try:
        yield marks
    finally:
        clock.record(end)
        marks.t_host = time.perf_counter()
        clock.synchronize()
        marks.t_wall = time.perf_counter()


def _timed(fn: Callable[[], T], clock: Clock, start: Any, end: Any) -> tuple[T, Marks]:
    with timed(clock, start, end) as marks:
        result = fn()
    return result, marks


def timed_run(fn: Callable[[], T], clock: Clock) -> tuple[T, Timing]:
    """Time one call of ``fn`` (events made and device drained before it starts)."""
    start, end = clock.new_events(2)
    clock.synchronize()  # outside the timed region: earlier work is not ours
    result, marks = _timed(fn, clock, start, end)
    return result, marks.timing(clock)


def _stats(values: list[float]) -> tuple[float, float, float]:
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
    return min(values), mean, var**0.5


def timed_repeats(
    fn: Callable[[], T], clock: Clock, loops: int, repeats: int
) -> tuple[T | None, RepeatStats]:
    """``repeats`` timed runs of ``loops`` calls each, like ``%timeit -n loops -r repeats``.

    Each repeat is one timed region (start event, the loops, end event, one
    synchronisation); all ``2 * repeats`` events are created up front.
    """
    events = clock.new_events(2 * repeats)
    clock.synchronize()
    result: T | None = None
    per_loop: list[float] = []
    wall: list[float] = []

    def loop() -> T | None:
        value: T | None = None
        for _ in range(loops):
            value = fn()
        return value

    for r in range(repeats):
        result, marks = _timed(loop, clock, events[2 * r], events[2 * r + 1])
        timing = marks.timing(clock, loops)
        wall.append(timing.wall_ms)
        per_loop.append(timing.device_ms if timing.device_ms is not None else timing.wall_ms)
    best, mean, std = _stats(per_loop)
    return result, RepeatStats(
        loops=loops,
        repeats=repeats,
        kind="device" if clock.has_events else "wall",
        per_loop_ms=tuple(per_loop),
        wall_per_loop_ms=tuple(wall),
        best_ms=best,
        mean_ms=mean,
        std_ms=std,
    )

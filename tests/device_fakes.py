"""A fake ``torch.cuda`` surface for testing the GPU code paths on a CPU machine.

Every call is appended to ``log`` so tests can assert the order of event
creation, recording, synchronisation and reads.
"""

from __future__ import annotations

from typing import Any


def last_index(log: list[tuple[Any, ...]], entry: tuple[Any, ...]) -> int | None:
    """Index of the last ``entry`` in ``log`` (events are recorded once when made, then again)."""
    for i in range(len(log) - 1, -1, -1):
        if log[i] == entry:
            return i
    return None


class FakeEvent:
    def __init__(self, cuda: FakeCuda, enable_timing: bool = False) -> None:
        assert enable_timing, "timing events must be created with enable_timing=True"
        self.cuda = cuda
        self.id = len(cuda.events)
        self.recorded_at: int | None = None
        cuda.events.append(self)
        cuda.log.append(("event", self.id))

    def record(self, stream: Any = None) -> None:
        self.cuda.clock += 1
        self.recorded_at = self.cuda.clock
        self.cuda.log.append(("record", self.id))

    def elapsed_time(self, end: FakeEvent) -> float:
        assert self.cuda.synced_after(end), "elapsed_time read before a synchronize"
        self.cuda.log.append(("elapsed", self.id, end.id))
        assert self.recorded_at is not None and end.recorded_at is not None
        return float(end.recorded_at - self.recorded_at) * self.cuda.ms_per_tick


class FakeCuda:
    """Stands in for ``torch.cuda`` in EventClock / AllocatorStats."""

    __name__ = "torch.cuda"

    def __init__(self, ms_per_tick: float = 0.5) -> None:
        self.log: list[tuple[Any, ...]] = []
        self.events: list[FakeEvent] = []
        self.clock = 0
        self.ms_per_tick = ms_per_tick
        self.allocated = 1000
        self.peak = 1000

    def Event(self, enable_timing: bool = False) -> FakeEvent:
        return FakeEvent(self, enable_timing)

    def synchronize(self, device: Any = None) -> None:
        self.log.append(("sync",))

    def synced_after(self, event: FakeEvent) -> bool:
        rec = last_index(self.log, ("record", event.id))
        return rec is not None and ("sync",) in self.log[rec:]

    # allocator statistics
    def memory_allocated(self, device: Any = None) -> int:
        self.log.append(("memory_allocated",))
        return self.allocated

    def max_memory_allocated(self, device: Any = None) -> int:
        self.log.append(("max_memory_allocated",))
        return self.peak

    def reset_peak_memory_stats(self, device: Any = None) -> None:
        self.log.append(("reset_peak",))
        self.peak = self.allocated

    def kinds(self) -> list[str]:
        return [entry[0] for entry in self.log]

"""Timing rules: events made ahead, no sync inside the timed region, one sync after it."""

from __future__ import annotations

import time

import pytest

from tests.device_fakes import FakeCuda, last_index
from torchmagic.device.timing import EventClock, HostClock, timed_repeats, timed_run


def _between(log: list[tuple], first: tuple, last: tuple) -> list[tuple]:
    """Entries between the last ``first`` and the last ``last``."""
    i, j = last_index(log, first), last_index(log, last)
    assert i is not None and j is not None and i < j
    return log[i + 1 : j]


def test_event_run_creates_events_first_and_syncs_once_after_the_end_event() -> None:
    cuda = FakeCuda()
    clock = EventClock(cuda, "cuda:0")
    calls: list[str] = []

    def body() -> int:
        cuda.log.append(("user",))
        calls.append("ran")
        return 42

    value, timing = timed_run(body, clock)
    assert value == 42 and calls == ["ran"]
    log = cuda.log
    start, end = cuda.events
    # both events exist (and were recorded once, so CUDA made them) before the region
    assert log[:4] == [("event", start.id), ("event", end.id), ("record", start.id), ("record", end.id)]
    # the timed region: record start .. record end contains the cell and no sync
    region = _between(log, ("record", start.id), ("record", end.id))
    assert ("user",) in region and ("sync",) not in region
    assert not any(e[0] == "event" for e in region)
    # exactly one sync between the end event and reading the time
    after = _between(log, ("record", end.id), ("elapsed", start.id, end.id))
    assert after.count(("sync",)) == 1
    # the only other sync drains earlier work before the region starts
    assert log.index(("sync",)) < last_index(log, ("record", start.id))
    assert log.count(("sync",)) == 2
    assert timing.device_ms == pytest.approx(0.5)  # one tick between the two records
    assert timing.wall_ms >= timing.host_ms >= 0


def test_event_run_records_end_and_syncs_when_the_cell_raises() -> None:
    cuda = FakeCuda()
    clock = EventClock(cuda)

    def boom() -> None:
        raise ValueError("user error")

    with pytest.raises(ValueError, match="user error"):
        timed_run(boom, clock)
    _start, end = cuda.events
    assert ("record", end.id) in cuda.log
    assert cuda.log[-1] == ("sync",)


def test_repeats_create_all_events_ahead_and_sync_once_per_repeat() -> None:
    cuda = FakeCuda()
    clock = EventClock(cuda)
    runs: list[int] = []

    def body() -> int:
        runs.append(1)
        cuda.log.append(("user",))
        return len(runs)

    value, stats = timed_repeats(body, clock, loops=4, repeats=3)
    assert len(runs) == 12 and value == 12
    log = cuda.log
    first_sync = log.index(("sync",))  # the drain before the first timed region
    assert [e[0] for e in log[:first_sync]].count("event") == 6  # 2 x repeats, all ahead
    assert not any(e[0] == "event" for e in log[first_sync:])
    for r in range(3):
        s, e = cuda.events[2 * r], cuda.events[2 * r + 1]
        region = _between(log, ("record", s.id), ("record", e.id))
        assert region.count(("user",)) == 4 and ("sync",) not in region
        assert _between(log, ("record", e.id), ("elapsed", s.id, e.id)).count(("sync",)) == 1
    assert stats.kind == "device" and stats.loops == 4 and stats.repeats == 3
    # each repeat spans 1 tick (start -> end record) = 0.5 ms, over 4 loops
    assert stats.per_loop_ms == pytest.approx((0.125, 0.125, 0.125))
    assert stats.best_ms == pytest.approx(0.125) and stats.std_ms == pytest.approx(0.0)


def test_host_clock_measures_wall_time() -> None:
    _, timing = timed_run(lambda: time.sleep(0.03), HostClock())
    assert timing.device_ms is None
    assert 30 <= timing.wall_ms < 300
    assert timing.host_ms == pytest.approx(timing.wall_ms, abs=1.0)


def test_host_clock_repeats_report_wall_per_loop() -> None:
    _, stats = timed_repeats(lambda: time.sleep(0.005), HostClock(), loops=2, repeats=3)
    assert stats.kind == "wall" and len(stats.per_loop_ms) == 3
    assert all(5 <= v < 100 for v in stats.per_loop_ms)
    assert stats.best_ms == min(stats.per_loop_ms)
    assert min(stats.per_loop_ms) <= stats.mean_ms <= max(stats.per_loop_ms)

"""Per-op breakdown: grouping by (op, shapes), host timing, event pool ahead of time."""

from __future__ import annotations

import time

import torch
from tests.device_fakes import FakeCuda

from torchmagic.device.ops import OpTimer, op_key
from torchmagic.device.timing import EventClock, HostClock


def test_op_key_names_the_aten_op_and_input_shapes() -> None:
    a, b = torch.ones(2, 3), torch.ones(3)
    assert op_key(torch.ops.aten.mm.default, (a, torch.ones(3, 4))) == ("aten.mm", "(2, 3) (3, 4)")
    assert op_key(torch.ops.aten.add.Tensor, (a, b)) == ("aten.add", "(2, 3) (3,)")
    assert op_key(torch.ops.aten.cat.default, ([a, a], 0)) == ("aten.cat", "[(2, 3), (2, 3)]")
    assert op_key(torch.ops.aten.ones.default, ([2, 3],)) == ("aten.ones", "")


def test_host_timer_groups_and_sorts_by_total_time() -> None:
    timer = OpTimer(HostClock())
    for _ in range(3):
        h = timer.begin()
        time.sleep(0.002)
        timer.end(("aten.mm", "(2, 2)"), h)
    h = timer.begin()
    timer.end(("aten.add", "(2,)"), h)
    stats = timer.stats(top=10)
    assert [s.op for s in stats] == ["aten.mm", "aten.add"]
    mm = stats[0]
    assert mm.count == 3 and mm.timed == 3
    assert mm.total_ms >= 6 and abs(mm.mean_ms - mm.total_ms / 3) < 1e-9
    assert timer.count == 4 and timer.kind == "cpu"
    assert len(timer.stats(top=1)) == 1


def test_event_timer_uses_the_pool_made_ahead_and_counts_past_its_end() -> None:
    cuda = FakeCuda()
    timer = OpTimer(EventClock(cuda), pool_size=2)
    assert len(cuda.events) == 4  # created in the constructor, before any op
    created = len(cuda.log)
    for _ in range(3):
        h = timer.begin()
        cuda.clock += 3  # the op takes 3 ticks
        timer.end(("aten.mm", "(8, 8)"), h)
    assert not any(e[0] == "event" for e in cuda.log[created:])  # no event made while running
    assert ("sync",) not in cuda.log
    cuda.synchronize()
    (mm,) = timer.stats(top=5)
    assert mm.count == 3 and mm.timed == 2  # pool of 2 pairs ran out
    assert mm.total_ms == 2 * 4 * 0.5  # each op: 3 ticks + the end record tick
    assert mm.mean_ms == 2.0 and timer.kind == "device"

"""Per-op breakdown: grouping by (op, shapes), host timing, event pool ahead of time."""

from __future__ import annotations

import time

import torch

from tests.device_fakes import FakeCuda
from torchmagic.device.ops import OpTimer, display_name, op_key
from torchmagic.device.timing import EventClock, HostClock


def test_op_key_names_the_user_level_call_and_input_shapes() -> None:
    import torch.nn.functional as F

    a, b = torch.ones(2, 3), torch.ones(3)
    assert op_key(torch.matmul, (a, torch.ones(3, 4))) == ("torch.matmul", "(2, 3) (3, 4)")
    assert op_key(torch.Tensor.add, (a, b)) == ("Tensor.add", "(2, 3) (3,)")
    assert op_key(torch.cat, ([a, a], 0)) == ("torch.cat", "[(2, 3), (2, 3)]")
    assert op_key(torch.ones, ((2, 3),)) == ("torch.ones", "")
    assert op_key(F.linear, (a, torch.ones(4, 3))) == ("F.linear", "(2, 3) (4, 3)")
    assert op_key(F.softmax, (a, 0)) == ("F.softmax", "(2, 3)")  # a Python function in torch.nn.functional
    assert op_key(torch.Tensor.backward, (a.sum(),)) == ("Tensor.backward", "()")
    assert op_key(torch.Tensor.__getitem__, (a, 0)) == ("Tensor.__getitem__", "(2, 3)")
    # nn.init's functions reach the mode with every argument as a keyword
    w = torch.empty(4, 8)
    assert op_key(torch.nn.init.uniform_, (), {"tensor": w, "a": 0.0, "b": 1.0}) == (
        "torch.nn.init.uniform_", "(4, 8)")
    # C functions of the torch namespaces keep their public namespace, not the C name
    assert display_name(torch.linalg.norm) == "torch.linalg.norm"
    assert display_name(torch.fft.fft) == "torch.fft.fft"
    assert display_name(torch.special.erf) == "torch.special.erf"
    assert display_name(torch.nn.init.uniform_) == "torch.nn.init.uniform_"
    assert display_name(torch.unique) == "torch.unique"  # defined in torch.functional


def test_op_key_names_what_a_function_mode_hands_over() -> None:
    from torch.overrides import TorchFunctionMode

    seen: list[str] = []

    class Mode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            seen.append(op_key(func, args)[0])
            return func(*args, **(kwargs or {}))

    x = torch.ones(2, 2)
    with Mode():
        _ = x + x
        _ = x @ x
        _ = x.T
        _ = torch.nn.functional.linear(x, x)
    assert seen == ["Tensor.add", "Tensor.matmul", "Tensor.T", "F.linear"]


def test_host_timer_groups_and_sorts_by_total_time() -> None:
    timer = OpTimer(HostClock())
    for _ in range(3):
        h = timer.begin()
        time.sleep(0.002)
        timer.end(("torch.mm", "(2, 2)"), h)
    h = timer.begin()
    timer.end(("Tensor.add", "(2,)"), h)
    stats = timer.stats(top=10)
    assert [s.op for s in stats] == ["torch.mm", "Tensor.add"]
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
        timer.end(("torch.mm", "(8, 8)"), h)
    assert not any(e[0] == "event" for e in cuda.log[created:])  # no event made while running
    assert ("sync",) not in cuda.log
    cuda.synchronize()
    (mm,) = timer.stats(top=5)
    assert mm.count == 3 and mm.timed == 2  # pool of 2 pairs ran out
    assert mm.total_ms == 2 * 4 * 0.5  # each op: 3 ticks + the end record tick
    assert mm.mean_ms == 2.0 and timer.kind == "device"

"""%%device per module: forward/backward time and memory of real models, names, folding, no trace left."""

from __future__ import annotations

import sys
from typing import Any

import pytest
import torch
import torch.nn as nn

from tests.test_device_session import first, run, run_ok
from torchmagic.device.modules import ModuleRecorder
from torchmagic.device.ops import OpTimer
from torchmagic.device.report import DeviceRun
from torchmagic.device.timing import HostClock

SETUP = """
import torch, torch.nn as nn
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 2))
xb = torch.randn(64, 10)
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(16 * 8 * 8, 10)
    def forward(self, x):
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        return self.fc(torch.flatten(x, 1))
net = Net()
batch = torch.randn(8, 3, 32, 32)
enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(32, 4, 64, batch_first=True), 4, enable_nested_tensor=False)
src = torch.randn(2, 5, 32)
"""


@pytest.fixture
def models(ip: Any) -> Any:
    ip.run_cell(SETUP).raise_error()
    return ip


def rows(run: DeviceRun) -> list[tuple[str, str, int, int]]:
    return [(m.path, m.type_name, m.depth, m.calls) for m in run.modules]


def test_the_reported_cell_attributes_activations_and_groups_repeats(models: Any) -> None:
    """Issue 13: `out = model(xb)` (Linear 10→20→2) called the (64, 20) activation "now: out"."""
    one = first(run_ok(models, "out = model(xb)\n", ["cpu"])[0])
    assert one.memory is not None
    made = {(t.op, t.shape): t for t in one.memory.largest}
    lin1, relu, lin2 = made["F.linear", (64, 20)], made["F.relu", (64, 20)], made["F.linear", (64, 2)]
    assert (lin1.names, lin1.freed, lin1.module) == ((), 1, "model.0")  # consumed by relu, then freed
    assert (relu.names, relu.unnamed, relu.module) == ((), 1, "model.1")  # saved by autograd for backward
    assert (lin2.names, lin2.module) == (("out",), "model.2")

    loop = first(run_ok(models, "for i in range(5):\n    out = model(xb)\n", ["cpu"])[0])
    assert loop.memory is not None
    got = [(t.op, t.shape, t.count, t.names, t.alive, t.freed) for t in loop.memory.largest]
    assert got == [
        ("F.linear", (64, 20), 5, (), 0, 5),
        ("F.relu", (64, 20), 5, (), 1, 4),  # the last one is saved for out's backward
        ("F.linear", (64, 2), 5, ("out",), 1, 4),
    ]
    assert rows(loop) == [("model", "Sequential", 0, 5), ("model.0", "Linear", 1, 5), ("model.1", "ReLU", 1, 5),
                          ("model.2", "Linear", 1, 5)]


def test_cnn_forward_and_backward_per_module(models: Any) -> None:
    one = first(run_ok(models, "out = net(batch)\nout.sum().backward()\n", ["cpu"])[0])
    assert rows(one) == [("net", "Net", 0, 1), ("net.conv1", "Conv2d", 1, 1), ("net.pool", "MaxPool2d", 1, 2),
                         ("net.conv2", "Conv2d", 1, 1), ("net.fc", "Linear", 1, 1)]
    by = {m.path: m for m in one.modules}
    assert all(m.forward_ms > 0 and m.backward_ms is not None and m.backward_ms > 0 for m in one.modules)
    assert by["net"].forward_ms >= by["net.conv1"].forward_ms
    assert by["net"].backward_ms >= by["net.conv2"].backward_ms  # children's backward is added to the parent's
    assert by["net.conv1"].kept_bytes == 8 * 8 * 32 * 32 * 4 and by["net.conv1"].out_shape == "(8, 8, 32, 32)"
    # the gradients w.r.t. conv1.s weight and bias (8, 3, 3, 3), (8,): batch needs none
    assert by["net.conv1"].grad_bytes == (8 * 27 + 8) * 4
    assert [(m.params, m.name) for m in one.modules] == [
        (11_642, "net"), (224, "conv1"), (0, "pool"), (1_168, "conv2"), (10_250, "fc")]


def test_transformer_layers_fold_and_every_module_stays_available(models: Any) -> None:
    one = first(run_ok(models, "y = enc(src)\ny.sum().backward()\n", ["cpu"])[0])
    shown = [(m.name, m.instances) for m in one.modules]
    assert shown[:3] == [("enc", 1), ("layers.0–3", 4), ("self_attn", 4)]
    assert ("linear1", 4) in shown and len(shown) == 10
    assert len(one.modules_unfolded) == one.modules_total == 2 + 4 * 9 - 1  # the ModuleList is never called
    attn = next(m for m in one.modules if m.name == "self_attn")
    # every autograd node F.multi_head_attention_forward made is timed for self_attn, not only its last
    assert attn.backward_ms is not None and attn.grad_bytes > 4 * 32 * 32 * 4


def test_results_and_gradients_are_bitwise_those_of_the_bare_cell(models: Any) -> None:
    body = (
        "torch.manual_seed(1)\n"
        "for m in (net, enc):\n"
        "    m.zero_grad(set_to_none=True)\n"
        "a = net(batch); a.square().mean().backward()\n"
        "b = enc(src); b.abs().sum().backward()\n"
        "res = [a, b] + [p.grad.clone() for p in list(net.parameters()) + list(enc.parameters())]\n"
    )
    models.run_cell(body).raise_error()
    bare = models.user_ns["res"]
    run_ok(models, body, ["cpu"])
    recorded = models.user_ns["res"]
    assert len(bare) == len(recorded)
    for x, y in zip(bare, recorded):
        assert torch.equal(x, y) and x.dtype == y.dtype
    assert type(models.user_ns["a"].grad_fn).__name__ == "AddmmBackward0"  # no hook function wrapped around it


def test_no_hook_is_left_behind(models: Any) -> None:
    from torch.nn.modules import module as nn_module

    before = (dict(nn_module._global_forward_pre_hooks), dict(nn_module._global_forward_hooks))
    run_ok(models, "y = enc(src)\nout = net(batch)\n", ["cpu"])
    assert (dict(nn_module._global_forward_pre_hooks), dict(nn_module._global_forward_hooks)) == before
    seen: list[str] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if "torchmagic" in frame.f_code.co_filename:
            seen.append(frame.f_code.co_name)

    sys.setprofile(profile)
    try:  # the graph was built under %%device; its backward now runs none of our hooks
        models.user_ns["y"].sum().backward()
        models.user_ns["out"].sum().backward()
    finally:
        sys.setprofile(None)
    assert seen == []


def test_a_failing_forward_keeps_the_users_error_and_the_stack_balanced(models: Any) -> None:
    src = (
        "class Bad(nn.Module):\n"
        "    def forward(self, x):\n"
        "        raise ValueError('bad forward')\n"
        "try:\n"
        "    nn.Sequential(nn.Linear(10, 4), Bad())(xb)\n"
        "except ValueError:\n"
        "    pass\n"
        "out = model(xb)\n"
    )
    one = first(run_ok(models, src, ["cpu"])[0])
    assert [(m.path, m.depth) for m in one.modules][-4:] == [
        ("model", 0), ("model.0", 1), ("model.1", 1), ("model.2", 1)]
    report, _, error = run(models, "model(torch.ones(3, 3))\n", ["cpu"])
    assert isinstance(error, RuntimeError) and "shapes cannot be multiplied" in str(error)
    assert [m.path for m in first(report).modules] == ["model", "model.0"]


def test_modules_made_in_the_cell_or_called_inline_get_names(models: Any) -> None:
    src = "fresh = nn.Sequential(nn.Linear(10, 3))\nz = fresh(xb)\nw = nn.Linear(10, 2)(xb)\n"
    one = first(run_ok(models, src, ["cpu"])[0])
    assert [m.path for m in one.modules] == ["fresh", "fresh.0", "<Linear>"]


def test_the_recorder_alone_times_calls_and_takes_its_own_time_out() -> None:
    lin = nn.Linear(4, 4)
    timer: OpTimer[tuple[int, str]] = OpTimer(HostClock())
    from torchmagic.core.guard import Fence

    recorder = ModuleRecorder(timer, None, Fence())
    with recorder:
        for _ in range(3):
            lin(torch.ones(2, 4))
    (row,) = recorder.rows(recorder.names({"lin": lin}), 10)
    assert (row.path, row.calls, row.backward_ms, row.params, row.out_shape) == ("lin", 3, None, 20, "(2, 4)")
    assert row.forward_ms > 0 and recorder.overhead_s > 0
    lin(torch.ones(2, 4))  # after the recorder: not counted
    assert recorder.rows(recorder.names({"lin": lin}), 10)[0].calls == 3


def test_no_modules_no_table(models: Any) -> None:
    one = first(run_ok(models, "x = torch.ones(3) * 2\n", ["cpu"])[0])
    assert one.modules == [] and one.modules_unfolded == [] and one.modules_total == 0


@pytest.mark.slow
def test_memory_stays_bounded_over_a_long_training_loop(models: Any) -> None:
    from tests.hardening.test_leaks import _rss

    models.user_ns["_rss"] = _rss
    body = (
        "opt = torch.optim.SGD(model.parameters(), lr=0.01)\n"
        "for i in range(10_000):\n"
        "    opt.zero_grad()\n"
        "    model(xb).square().mean().backward()\n"
        "    opt.step()\n"
        "    if i == 1_000:\n"
        "        _r0 = _rss()\n"
        "_r1 = _rss()\n"
    )
    one = first(run_ok(models, body, ["cpu"])[0])
    grown = models.user_ns["_r1"] - models.user_ns["_r0"]
    assert grown < 2**20, f"RSS grew {grown / 2**20:.2f} MiB"
    assert one.modules[0].calls == 10_000


def test_on_an_event_clock_module_times_come_from_events_made_before_the_run(models: Any) -> None:
    """The GPU path with a fake torch.cuda: module forward and backward steps are timed by device events
    from the run's one pool (made before the clock starts), with no synchronisation of their own."""
    from tests.device_fakes import FakeCuda
    from tests.test_device_session import opts
    from torchmagic.core.runner import run_cell
    from torchmagic.device.memory import AllocatorStats
    from torchmagic.device.session import DeviceSession, Target
    from torchmagic.device.timing import EventClock

    cuda = FakeCuda()
    dev = torch.device("cuda", 0)
    models.user_ns["cuda_log"] = cuda.log
    shown: list[Any] = []

    def session(cell: Any) -> list[DeviceSession]:
        return [DeviceSession(cell, [Target("cuda", dev)], opts(device_op_events=64), clock=EventClock(cuda, dev),
                              allocator=AllocatorStats(cuda, dev))]

    # the model runs on the CPU (no GPU here): only the clock is the fake GPU's
    run_cell(models, "cuda_log.append(('user',))\nout = model(xb)\nout.sum().backward()\n", "%%device test", session,
             shown.append)
    (report,) = shown
    run = report.runs[0]
    made_before = cuda.log.index(("user",))
    assert not any(e[0] == "event" for e in cuda.log[made_before:])  # no event made while the cell ran
    assert cuda.log[made_before:].count(("sync",)) == 1  # the run's one synchronisation, at its end
    assert [m.path for m in run.modules] == ["model", "model.0", "model.1", "model.2"]
    by = {m.path: m for m in run.modules}
    assert by["model"].forward_ms > by["model.0"].forward_ms > 0  # event ticks: the parent spans its children
    assert by["model.2"].backward_ms is not None and by["model.2"].backward_ms > 0
    assert run.op_time_kind == "device"


def test_a_graph_bigger_than_the_node_budget_is_timed_in_part(models: Any, monkeypatch: Any) -> None:
    from torchmagic.device import modules

    monkeypatch.setattr(modules, "MAX_NODES", 6)
    monkeypatch.setattr(modules, "_PRUNE_FIRST", 4)
    monkeypatch.setattr(modules, "_RETRY_FULL", 2)
    one = first(run_ok(models, "y = enc(src)\ny.sum().backward()\n", ["cpu"])[0])
    timed = [m for m in one.modules_unfolded if m.backward_ms is not None]
    assert timed and len(timed) < len(one.modules_unfolded)  # the first nodes hooked, the rest not
    assert models.user_ns["y"].shape == (2, 5, 32) and enc_grads_set(models)  # the cell ran as usual


def enc_grads_set(ip: Any) -> bool:
    return all(p.grad is not None for p in ip.user_ns["enc"].parameters())

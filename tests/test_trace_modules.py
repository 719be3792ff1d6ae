"""trace.modules: every op under the module call it ran in, in the order the data flowed."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest
import torch
import torch.nn.modules.module as module_mod

from tests.models import CNN, TRANSFORMER, tree
from tests.tracing import trace


def _no_global_hooks() -> bool:
    return not (module_mod._global_forward_hooks or module_mod._global_forward_pre_hooks
                or module_mod._global_forward_hooks_always_called)


def test_cnn_tree_in_execution_order(ip, capture):
    ip.run_cell(CNN)
    rep = trace(ip, capture, "out = net(batch)")
    assert tree(rep) == [
        "[net] Net (8, 3, 32, 32) -> (8, 10)",
        "  [net.conv1] Conv2d (8, 3, 32, 32) -> (8, 16, 32, 32)",
        "    conv2d (8, 3, 32, 32), (16, 3, 3, 3), (16,) -> (8, 16, 32, 32) x1",
        "  relu (8, 16, 32, 32) -> (8, 16, 32, 32) x1",
        "  [net.pool] MaxPool2d (8, 16, 32, 32) -> (8, 16, 16, 16)",
        "    max_pool2d (8, 16, 32, 32) -> (8, 16, 16, 16) x1",
        "  [net.conv2] Conv2d (8, 16, 16, 16) -> (8, 32, 16, 16)",
        "    conv2d (8, 16, 16, 16), (32, 16, 3, 3), (32,) -> (8, 32, 16, 16) x1",
        "  relu (8, 32, 16, 16) -> (8, 32, 16, 16) x1",
        "  [net.pool] MaxPool2d (8, 32, 16, 16) -> (8, 32, 8, 8)",
        "    max_pool2d (8, 32, 16, 16) -> (8, 32, 8, 8) x1",
        "  flatten (8, 32, 8, 8) -> (8, 2048) x1",
        "  [net.fc] Linear (8, 2048) -> (8, 10)",
        "    linear (8, 2048), (10, 2048), (10,) -> (8, 10) x1",
    ]
    net = ip.user_ns["net"]
    by_path = {m.path: m for m in rep.modules}
    assert by_path["net"].params == sum(p.numel() for p in net.parameters()) == 25578
    assert by_path["net.conv1"].params == 448 and by_path["net.pool"].params == 0


def test_intermediates_are_named_as_forward_names_them_or_by_what_made_them(ip, capture):
    ip.run_cell(CNN)
    rep = trace(ip, capture, "out = net(batch)")
    labels = [[o.label for o in r.variants[0].inputs] for r in rep.rows]  # rows in the order they first ran
    assert [r.op for r in rep.rows[:4]] == ["conv2d", "relu", "max_pool2d", "conv2d"]
    relu1, pool1, conv2 = labels[1:4]
    assert relu1 == ["self.conv1(x)"]  # F.relu(self.conv1(x)) in Net.forward
    assert pool1 == ["F.relu(self.conv1(x)) →"]  # inside MaxPool2d: named by the op that made it
    assert conv2[0] == "x"  # self.conv2(x): the name forward gives it
    assert "arg0" not in str(labels)
    relu = next(r for r in rep.rows if r.op == "relu")
    assert relu.inner == "F.relu(self.conv1(x))" and relu.module == 0


def test_transformer_layers_fold_and_each_instance_stays_reachable(ip, capture):
    ip.run_cell(TRANSFORMER)
    rep = trace(ip, capture, "out = enc(src)\nloss = out.pow(2).mean()\nloss.backward()")
    layers = [m for m in rep.modules if m.type == "TransformerEncoderLayer"]
    first, second = layers
    assert (first.repeat, first.instances, second.folded) == (2, ("enc.layers.0", "enc.layers.1"), True)
    assert len(first.differences) == 2 and first.differences[1].startswith("enc.layers.1: (8, 16, 64) → (8, 16, 64)")
    assert second.params == first.params > 0 and second.calls == 1
    lines = tree(rep)
    assert lines[:3] == [
        "[enc] TransformerEncoder (8, 16, 64) -> (8, 16, 64)",
        "  [enc.layers.0] TransformerEncoderLayer (8, 16, 64) -> (8, 16, 64) x2",
        "    [enc.layers.0.self_attn] MultiheadAttention (8, 16, 64), (8, 16, 64), (8, 16, 64) -> (8, 16, 64)",
    ]
    assert all(" x2" in ln for ln in lines if ln.startswith("      ") and "[" not in ln)  # ops counted over both
    assert not any("enc.layers.1" in ln for ln in lines)  # folded away, not repeated
    assert lines[-3:] == ["pow (8, 16, 64) -> (8, 16, 64) x1", "mean (8, 16, 64) -> () x1", "backward () ->  x1"]


def test_a_module_called_in_a_loop_is_one_call_site_that_counts(ip, capture):
    ip.run_cell("import torch\nlin = torch.nn.Linear(3, 2)")
    rep = trace(ip, capture, "for i in range(4):\n    y = lin(torch.ones(i + 1, 3))")
    (m,) = rep.modules
    assert (m.path, m.calls, m.shape_sets, m.inputs) == ("lin", 4, 4, "(1, 3)")
    (linear,) = [r for r in rep.rows if r.op == "linear"]
    assert linear.count == 4 and len(linear.variants) == 4


def test_module_made_in_the_cell_is_named_by_its_variable(ip, capture):
    rep = trace(ip, capture, "m = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh())\ny = m(torch.ones(1, 3))")
    assert [m.path for m in rep.modules] == ["m", "m.0", "m.1"]
    assert [m.path for m in trace(ip, capture, "y = torch.nn.ReLU()(torch.ones(2))").modules] == ["ReLU()"]


def test_results_unchanged_and_hooks_gone_on_every_path(ip, capture):
    ip.run_cell(CNN)
    bare = ip.user_ns["net"](ip.user_ns["batch"])
    rep = trace(ip, capture, "out = net(batch)")
    assert rep.modules and torch.equal(ip.user_ns["out"], bare) and _no_global_hooks()
    with capture():
        res = ip.run_cell("%%tensorinfo\nbad = Net(fc_in=7)\nout = bad(batch)")
    assert isinstance(res.error_in_exec, RuntimeError) and _no_global_hooks()


def test_keyboard_interrupt_inside_forward_leaves_nothing(ip, capture):
    ip.run_cell("import torch\nclass Stop(torch.nn.Module):\n    def forward(self, x):\n"
                "        raise KeyboardInterrupt\nouter = torch.nn.Sequential(torch.nn.Linear(2, 2), Stop())")
    with capture():
        res = ip.run_cell("%%tensorinfo\ny = outer(torch.ones(1, 2))")
    assert isinstance(res.error_in_exec, KeyboardInterrupt)
    assert _no_global_hooks() and torch._C._len_torch_function_stack() == 0


def test_eval_mode_transformer_is_bit_identical_to_bare(ip, capture):
    """PyTorch's fast path is off while any TorchFunctionMode is on: inside these modules ours is lifted."""
    ip.run_cell(TRANSFORMER + "enc.eval()\nwith torch.no_grad():\n    bare = enc(src)")
    rep = trace(ip, capture, "with torch.no_grad():\n    out = enc(src)")
    assert torch.equal(ip.user_ns["out"], ip.user_ns["bare"])
    (m,) = [m for m in rep.modules if m.path == "enc"]
    assert m.opaque and not m.items  # one opaque call: nothing inside was traced
    assert "run untraced" in rep.to_text()


def test_modules_called_on_other_threads_are_not_recorded(ip, capture):
    ip.user_ns["threading"] = threading
    ip.run_cell("import torch\nlin = torch.nn.Linear(2, 2)\nother = torch.nn.Linear(2, 2)")
    body = ("t = threading.Thread(target=lambda: other(torch.ones(1, 2)))\n"
            "t.start(); t.join()\ny = lin(torch.ones(1, 2))")
    rep = trace(ip, capture, body)
    assert [m.path for m in rep.modules] == ["lin"]


def test_nodes_keep_no_module_alive(ip, capture):
    ip.run_cell("import torch\nm = torch.nn.Linear(2, 2)")
    ref = weakref.ref(ip.user_ns["m"])
    rep = trace(ip, capture, "y = m(torch.ones(1, 2))")
    del ip.user_ns["m"], ip.user_ns["y"]
    gc.collect()
    assert ref() is None and rep.modules[0].path == "m"


def test_failing_linear_inside_forward_names_its_operand_and_layer(ip, capture):
    ip.run_cell(CNN + "bad = Net(fc_in=512)")
    with capture():
        res = ip.run_cell("%%tensorinfo -o rep\nout = bad(batch)")
    assert isinstance(res.error_in_exec, RuntimeError)
    err = ip.user_ns["rep"].error
    assert [o.label for o in err.operands] == ["x", "bad.fc.weight"]
    assert "bad.fc = Linear(in_features=512, out_features=10" in err.title
    assert any(d.startswith("inside bad.fc (Linear), called from Net.forward") for d in err.details)
    (fc,) = [m for m in ip.user_ns["rep"].modules if m.path == "bad.fc"]
    assert fc.outputs == "" and "✗ raised" in ip.user_ns["rep"].to_text()


@pytest.mark.parametrize("on", [True, False])
def test_the_module_tree_can_be_turned_off(ip, capture, options, on):
    ip.run_cell(CNN)
    with options(trace_modules=on):
        rep = trace(ip, capture, "out = net(batch)")
    assert bool(rep.modules) == on
    assert [r.op for r in rep.rows][:1] == ["conv2d"]
    if not on:  # the old view: one row per op site, conv1 and conv2 share Conv2d's
        assert len([r for r in rep.rows if r.op == "conv2d"]) == 1


@pytest.mark.parametrize("step", ["_push", "_pop"])
def test_a_failing_hook_of_ours_never_reaches_the_forward(ip, capture, monkeypatch, step):
    from torchmagic.trace.modules import ModuleTracker

    def broken(self, *args):
        raise RuntimeError("injected")

    ip.run_cell(CNN)
    monkeypatch.setattr(ModuleTracker, step, broken)
    with capture() as cap:
        res = ip.run_cell("%%tensorinfo\nout = net(batch)")
    assert res.success and ip.user_ns["out"].shape == (8, 10)
    lines = [ln for ln in cap.stderr.splitlines() if ln.startswith("torchmagic:")]
    assert len(lines) == 1 and "injected" in lines[0]
    assert _no_global_hooks() and torch._C._len_torch_function_stack() == 0

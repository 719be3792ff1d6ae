"""Module calls as sequence-number intervals: recording, placing nodes in calls, naming module inputs."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules import module as torch_module

from torchmagic.autograd.modules import ModuleRecorder, annotate, assign_calls, module_paths
from torchmagic.autograd.walk import walk


def _hooks() -> tuple[int, int]:
    return len(torch_module._global_forward_pre_hooks), len(torch_module._global_forward_hooks)


def test_calls_nest_and_the_hooks_leave() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    before = _hooks()
    with ModuleRecorder() as rec:
        model(torch.randn(2, 3))
    assert _hooks() == before
    outer, lin0, relu, lin2 = rec.calls
    assert outer.parent == -1 and {lin0.parent, relu.parent, lin2.parent} == {outer.index}
    assert outer.lo <= lin0.lo < lin0.hi <= relu.lo < relu.hi <= lin2.lo < lin2.hi <= outer.hi
    assert (lin0.ins, lin0.outs, lin2.outs) == (((2, 3),), ((2, 4),), ((2, 1),))
    assert len(lin0.consts) == 1 and lin0.consts[0][1] == (2, 3)  # the input needs no gradient
    assert lin2.consts == ()  # its input came from lin0: it requires grad
    assert [rec.modules[c.module][1] for c in rec.calls] == ["Sequential", "Linear", "ReLU", "Linear"]


def test_nodes_go_to_the_innermost_call_and_parameters_to_their_module() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    x = torch.randn(2, 3)
    with ModuleRecorder() as rec:
        loss = model(x).sum()
    g = walk([("loss", loss)], namespace={"model": model, "x": x})
    annotate(g, rec, {"model": model, "x": x})
    titles = {c.index: c.title for c in g.calls}
    where = {n.label: titles.get(n.call, "") for n in g.nodes}
    assert where["TanhBackward0"] == "model.1"
    assert where["model.0.weight"] == where["model.0.bias"] == "model.0"
    assert where["SumBackward0"] == ""  # made in the cell, outside any module
    assert where["x"] == "model.0"
    sizes = {c.title: (c.params, c.tensors, c.type) for c in g.calls}
    assert sizes["model.0"] == (16, 2, "Linear") and sizes["model"] == (21, 4, "Sequential")


def test_a_module_called_twice_shares_its_parameters_with_the_parent() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lin(self.lin(x))

    net = Twice()
    with ModuleRecorder() as rec:
        out = net(torch.randn(1, 2)).sum()
    g = walk([("out", out)], namespace={"net": net})
    annotate(g, rec, {"net": net})
    titles = {c.index: c.title for c in g.calls}
    assert sorted(c.title for c in g.calls) == ["net", "net.lin", "net.lin (call 2)"]
    weight = next(n for n in g.nodes if n.label == "net.lin.weight")
    assert titles[weight.call] == "net"  # used by both calls: their common parent


def test_a_child_that_raised_and_was_caught_is_closed_by_its_parent() -> None:
    """Without ``always_call`` hooks (they double the cost of every module call) a forward that
    raised is closed when its parent returns; calls made meanwhile count as inside it (rare: a
    forward that catches its own submodule's error)."""
    class Flaky(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise ValueError("no")

    class Outer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.flaky, self.lin = Flaky(), nn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            try:
                self.flaky(x)
            except ValueError:
                pass
            return self.lin(x)

    with ModuleRecorder() as rec:
        Outer()(torch.randn(1, 2))
    outer, flaky, lin = rec.calls
    assert lin.parent == flaky.index and flaky.parent == outer.index
    assert flaky.hi == outer.hi and not rec._stack


def test_module_paths_and_inputs_named_by_storage() -> None:
    enc = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, batch_first=True)
    src = torch.randn(2, 3, 8)
    ns = {"enc": enc, "src": src}
    paths = module_paths(ns)
    assert paths[id(enc.self_attn)] == "enc.self_attn" and paths[id(enc)] == "enc"
    with ModuleRecorder() as rec:
        loss = enc(src).sum()
    g = walk([("loss", loss)], namespace=ns)
    annotate(g, rec, ns)
    labels = [n.label for n in g.nodes if n.kind == "const"]
    assert "src" in labels  # the residual add's input, which autograd did not save
    assert "src (as (6, 8))" in labels  # the attention's projection saved a reshaped copy of it
    assert sum(1 for label in labels if label.startswith("dropout mask (p=0.1)")) >= 2
    assert "input without grad" not in labels


def test_assign_calls_without_records_changes_nothing() -> None:
    w = torch.ones(2, requires_grad=True)
    g = walk([("y", (w * 2).sum())])
    assign_calls(g, [])
    assert all(n.call == -1 for n in g.nodes)

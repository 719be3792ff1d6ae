"""Walking grad_fn into plain data: names, constants, leaves, cap, freed graphs."""

from __future__ import annotations

import gc
import json
import weakref

import torch
from torch import nn

from torchmagic.autograd.walk import find_leaves, walk


def _by_label(graph, label):  # type: ignore[no-untyped-def]
    return [n for n in graph.nodes if n.label == label]


def test_leaves_ops_constants_and_names() -> None:
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    x = torch.tensor([3.0, 4.0])
    y = w * x
    loss = y.sum()
    g = walk([("loss", loss)], namespace={"w": w, "x": x, "y": y, "loss": loss})
    kinds = sorted((n.kind, n.label) for n in g.nodes)
    assert kinds == [("const", "x"), ("leaf", "w"), ("op", "MulBackward0"), ("op", "SumBackward0")]
    mul = _by_label(g, "MulBackward0")[0]
    assert mul.names == ("y",) and mul.shape == (2,) and mul.dtype == "float32"
    assert any(s.startswith("other: (2,) float32 = x") for s in mul.saved)
    root = g.nodes[g.roots[0]]
    assert root.label == "SumBackward0" and root.names == ("loss",)
    # Edges follow the forward pass: w -> Mul -> Sum.
    ids = {n.label: n.id for n in g.nodes}
    assert (ids["w"], ids["MulBackward0"]) in g.edges
    assert (ids["MulBackward0"], ids["SumBackward0"]) in g.edges
    json.dumps([n.details() for n in g.nodes])  # plain data


def test_module_parameters_are_named_and_grouped() -> None:
    model = nn.Sequential(nn.Linear(3, 2), nn.Tanh(), nn.Linear(2, 1))
    out = model(torch.randn(4, 3)).sum()
    g = walk([("out", out)], namespace={"model": model})
    leaves = {n.label for n in g.leaves()}
    assert leaves == {"model.0.weight", "model.0.bias", "model.2.weight", "model.2.bias"}
    addmm_groups = sorted(n.group for n in g.nodes if n.label == "AddmmBackward0")
    assert addmm_groups == ["model.0", "model.2"]
    assert all(n.group == "" for n in g.nodes if n.label == "TanhBackward0")


def test_leaf_grad_text_and_unnamed_leaf() -> None:
    a = torch.ones(2, requires_grad=True)
    b = (a * 3).sum()
    b.backward(retain_graph=True)
    g = walk([("b", b)], names={}, grad_text=lambda t: str(t.grad.tolist()))
    leaf = g.leaves()[0]
    assert leaf.label == "leaf" and leaf.grad == "[3.0, 3.0]"
    assert "no name" in leaf.note


def test_freed_graph_is_flagged_and_cache_restores_saved() -> None:
    a = torch.ones(2, requires_grad=True)
    c = torch.full((2,), 5.0)
    y = (a * c).sum()
    cache: dict = {}
    before = walk([("y", y)], namespace={"a": a, "c": c}, saved_cache=cache)
    assert not before.freed
    y.backward()
    after_plain = walk([("y", y)], namespace={"a": a, "c": c})
    assert after_plain.freed
    mul = _by_label(after_plain, "MulBackward0")[0]
    assert mul.saved == () and "freed" in mul.note
    after = walk([("y", y)], namespace={"a": a, "c": c}, saved_cache=cache)
    mul2 = _by_label(after, "MulBackward0")[0]
    assert mul2.saved == _by_label(before, "MulBackward0")[0].saved
    assert {n.label for n in after.nodes if n.kind == "const"} == {"c"}


def test_node_cap_counts_the_rest() -> None:
    x = torch.ones(1, requires_grad=True)
    y = x
    for _ in range(50):
        y = y * 1.5
    g = walk([("y", y)], max_nodes=10)
    assert g.truncated > 0
    assert sum(1 for n in g.nodes if n.kind == "op") == 10
    assert any(n.kind == "more" for n in g.nodes)


def test_walk_keeps_nothing_alive() -> None:
    a = torch.randn(100, requires_grad=True)
    c = torch.randn(100)
    y = (a.sigmoid() * c).sum()
    g = walk([("y", y)], namespace={"a": a, "c": c, "y": y}, grad_text=lambda t: "x")
    leaves = find_leaves([y])
    assert [id(t) for t in leaves] == [id(a)]
    del leaves
    refs = [weakref.ref(a), weakref.ref(c), weakref.ref(y)]
    del a, c, y
    gc.collect()
    assert all(r() is None for r in refs)
    assert g.nodes  # the plain data survives


def test_outputs_used_by_other_outputs_are_not_roots() -> None:
    w = torch.ones(2, requires_grad=True)
    h = w * 2
    loss = h.sum()
    g = walk([("h", h), ("loss", loss)])
    assert [g.nodes[r].label for r in g.roots] == ["SumBackward0"]


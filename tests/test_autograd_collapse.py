"""Folding repeated blocks of deep graphs."""

from __future__ import annotations

import torch
from torch import nn

from torchmagic.autograd.collapse import collapse_repeats
from torchmagic.autograd.walk import walk


def _chain(blocks: int) -> tuple[nn.Module, torch.Tensor]:
    layers: list[nn.Module] = []
    for _ in range(blocks):
        layers += [nn.Linear(4, 4), nn.Tanh()]
    model = nn.Sequential(*layers)
    return model, model(torch.randn(2, 4)).sum()


def test_330_block_chain_collapses_to_a_handful_of_nodes() -> None:
    model, out = _chain(330)
    g = walk([("out", out)], namespace={"model": model})
    assert len(g.nodes) > 1600
    c = collapse_repeats(g)
    assert len(c.nodes) < 40
    folded = [n for n in c.nodes if n.kind == "collapsed"]
    assert len(folded) == 1
    assert "AddmmBackward0 → TanhBackward0" in folded[0].label
    # Every original node is either kept or counted in the collapsed box.
    assert len(c.nodes) - 1 + folded[0].count == len(g.nodes)
    assert c.collapsed and "drawn as one box" in c.collapsed[0]
    assert c.total_nodes == len(g.nodes)
    # Edges are consistent and the graph is still connected from the root.
    ids = {n.id for n in c.nodes}
    assert all(a in ids and b in ids for a, b in c.edges)
    ins = c.inputs()
    seen, stack = set(), list(c.roots)
    while stack:
        v = stack.pop()
        if v not in seen:
            seen.add(v)
            stack.extend(ins[v])
    assert seen == ids
    # The first and last blocks are still drawn with their names.
    leaves = {n.label for n in c.leaves()}
    assert {"model.0.weight", "model.658.weight"} <= leaves


def test_short_or_irregular_graphs_are_left_alone() -> None:
    model, out = _chain(3)
    g = walk([("out", out)], namespace={"model": model})
    assert collapse_repeats(g) is g
    x = torch.ones(3, requires_grad=True)
    y = ((x.exp() * 2).sin() + x.cos()).sum()
    g2 = walk([("y", y)])
    assert collapse_repeats(g2, min_repeats=2) is g2


def test_shared_weights_are_not_collapsed_away() -> None:
    lin = nn.Linear(3, 3)
    h = torch.randn(1, 3)
    for _ in range(12):
        h = torch.tanh(lin(h))
    g = walk([("h", h)], namespace={"lin": lin})
    c = collapse_repeats(g)
    # The shared parameters feed every block, so blocks are not independent: nothing folds.
    assert {n.label for n in c.leaves()} == {"lin.weight", "lin.bias"}
    assert all(n.kind != "collapsed" for n in c.nodes)


def test_group_modules_folds_parameters_into_their_layer() -> None:
    from torchmagic.autograd.collapse import group_modules

    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    x = torch.randn(8, 3)
    g = walk([("loss", model(x).sum())], namespace={"model": model, "x": x})
    c = group_modules(g)
    labels = sorted(n.label for n in c.nodes)
    assert labels == ["AddmmBackward0 · model.0", "AddmmBackward0 · model.2", "ReluBackward0",
                      "SumBackward0", "x"]
    layer0 = next(n for n in c.nodes if n.label.endswith("model.0"))
    assert any(s.startswith("parameter model.0.weight (4, 3) float32") for s in layer0.saved)
    assert any(s.startswith("parameter model.0.bias (4,)") for s in layer0.saved)
    ids = {n.id for n in c.nodes}
    assert all(a in ids and b in ids for a, b in c.edges) and len(c.edges) == len(c.nodes) - 1


def test_group_modules_keeps_shared_parameters_visible() -> None:
    from torchmagic.autograd.collapse import group_modules

    lin = nn.Linear(3, 3)
    h = torch.randn(1, 3)
    for _ in range(3):
        h = torch.tanh(lin(h))
    g = walk([("h", h)], namespace={"lin": lin})
    c = group_modules(g)
    assert {n.label for n in c.leaves()} == {"lin.weight", "lin.bias"}

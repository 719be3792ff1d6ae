"""The graph section: the SVG with drill-downs in HTML, the tree and the folded outline in a terminal."""

from __future__ import annotations

from torchmagic.autograd.fold import Drill
from torchmagic.autograd.graph import CallInfo, GNode, Graph
from torchmagic.autograd.render_graph import graph_html, graph_lines, tree_lines
from torchmagic.core.lines import Block
from torchmagic.core.report import rich_to_text


def _text(lines: list) -> str:  # type: ignore[type-arg]
    return rich_to_text(Block(lines))


def test_tree_shares_nodes_and_caps_lines() -> None:
    nodes = [GNode(id=0, kind="op", label="AddBackward0", names=("y",)),
             GNode(id=1, kind="op", label="ExpBackward0"),
             GNode(id=2, kind="leaf", label="x", shape=(2,), dtype="float32", grad="[1, 2]")]
    g = Graph(nodes=nodes, edges=[(1, 0), (1, 0), (2, 1)], roots=[0])
    text = _text(tree_lines(g))
    assert text.count("ExpBackward0") == 2 and "(shown above)" in text
    assert ".grad=[1, 2]" in text
    assert text.splitlines()[1].startswith("└── AddBackward0")
    chain = [GNode(id=i, kind="op", label=f"Op{i}") for i in range(500)]
    big = Graph(nodes=chain, edges=[(i + 1, i) for i in range(499)], roots=[0])
    capped = _text(tree_lines(big, max_lines=50))
    assert "more nodes not listed" in capped and "Op49" in capped and "Op60" not in capped


def _folded() -> Graph:
    """``x -> [net.body (open) > net.body.lin (box)] -> ReLU -> loss``: a view as fold() makes it."""
    calls = [CallInfo(0, -1, "net", "Net", ((2, 3),), ((2, 4),), params=16, tensors=2, nodes=5),
             CallInfo(1, 0, "net.lin", "Linear", ((2, 3),), ((2, 4),), params=16, tensors=2, nodes=3)]
    nodes = [GNode(0, "const", "x", shape=(2, 3), dtype="float32", requires_grad=False, seq=-1, call=0),
             GNode(1, "module", "net.lin", shape=(2, 4), sub="Linear  (2, 3) → (2, 4)", call=1, seq=1),
             GNode(2, "op", "ReluBackward0", shape=(2, 4), dtype="float32", call=0, seq=4),
             GNode(3, "op", "SumBackward0", shape=(), dtype="float32", names=("loss",), seq=5)]
    return Graph(nodes=nodes, edges=[(0, 1), (1, 2), (2, 3)], roots=[3], root_names=["loss"], calls=calls,
                 total_nodes=7)


def test_folded_outline_is_in_forward_order_under_open_modules() -> None:
    lines = _text(graph_lines(_folded())).splitlines()
    assert lines[0].startswith("backward graph, folded by module")
    assert lines[1:] == [
        "net  Net  (2, 3) → (2, 4)",
        "  x  (2, 3) float32",
        "  lin  Linear  (2, 3) → (2, 4)",
        "  ReluBackward0  (2, 4) float32",
        "SumBackward0  → loss  () float32",
    ]


def test_html_has_drill_downs_without_scripts() -> None:
    inner = Graph(nodes=[GNode(0, "op", "AddmmBackward0", shape=(2, 4), dtype="float32")], roots=[0])
    drills = [Drill("net.lin", "Linear", inner), Drill("net.lin2", "Linear", None, same_as="net.lin"),
              Drill("net.big", "Block", None)]
    html = graph_html(_folded(), drills, uid="t")
    assert html.count("<svg") == 2 and "<script" not in html
    assert "<details" in html and "net.lin · Linear (1 box)" in html
    assert "The same inside as a box above: net.lin2 (as net.lin)" in html and "--expand net.big" in html
    assert 'style="max-width:none"' in html  # a notebook must not shrink it (text stays 11 px)


def test_runs_of_the_same_block_are_shown_once_and_counted() -> None:
    from tests.test_autograd_fold import _net
    from torchmagic.autograd.fold import auto_expand, fold

    g = _net(blocks=6)
    view = fold(g, auto_expand(g, budget=40))
    lines = _text(graph_lines(view)).splitlines()
    assert lines[1:] == [
        "x  (1, 2)",
        "net  Net  (1, 2) → (1, 2)",
        "  0  Block  (1, 2) → (1, 2)",
        "    lin  Linear  (1, 2) → (1, 2)",
        "    ReluBackward0  (1, 2)",
        "  … 5 more the same: 1 … 5",
        "SumBackward0  → out  ()",
    ]

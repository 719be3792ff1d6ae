"""Folding by module: views, automatic opening by levels, drill-downs, and the Transformer snapshot."""

from __future__ import annotations

from typing import Any

from torchmagic.autograd.fold import MIN_VIEW, auto_expand, drill_downs, find_calls, fold
from torchmagic.autograd.graph import CallInfo, GNode, Graph
from torchmagic.autograd.render_graph import graph_lines
from torchmagic.autograd.report import AutogradReport
from torchmagic.core.lines import Block
from torchmagic.core.report import rich_to_text


def _net(blocks: int = 2) -> Graph:
    """x -> net[ block.i[ lin.i (Addmm, T <- w.i) -> Relu.i ] ... ] -> Sum; every call recorded."""
    calls = [CallInfo(0, -1, "net", "Net", ((1, 2),), ((1, 2),), params=6 * blocks, tensors=2 * blocks)]
    nodes = [GNode(0, "const", "x", shape=(1, 2), requires_grad=False)]
    edges: list[tuple[int, int]] = []
    prev, seq = 0, 0
    for b in range(blocks):
        block, lin = len(calls), len(calls) + 1
        calls += [CallInfo(block, 0, f"net.{b}", "Block", ((1, 2),), ((1, 2),), params=6, tensors=2, nodes=4),
                  CallInfo(lin, block, f"net.{b}.lin", "Linear", ((1, 2),), ((1, 2),), params=6, tensors=2,
                           nodes=3)]
        w, t, mm, relu = (len(nodes) + k for k in range(4))
        nodes += [GNode(w, "leaf", f"net.{b}.lin.weight", shape=(2, 2), call=lin),
                  GNode(t, "op", "TBackward0", shape=(2, 2), call=lin, seq=seq),
                  GNode(mm, "op", "MmBackward0", shape=(1, 2), call=lin, seq=seq + 1),
                  GNode(relu, "op", "ReluBackward0", shape=(1, 2), call=block, seq=seq + 2)]
        edges += [(w, t), (t, mm), (prev, mm), (mm, relu)]
        prev, seq = relu, seq + 3
    total = len(nodes)
    nodes.append(GNode(total, "op", "SumBackward0", shape=(), names=("out",), seq=seq))
    edges.append((prev, total))
    return Graph(nodes=nodes, edges=edges, roots=[total], root_names=["out"], calls=calls, total_nodes=total + 1)


def test_fold_closed_and_open() -> None:
    g = _net()
    closed = fold(g)
    assert [(n.kind, n.label) for n in closed.nodes] == [("const", "x"), ("module", "net"), ("op", "SumBackward0")]
    assert closed.edges == [(0, 1), (1, 2)] and closed.roots == [2]
    box = closed.nodes[1]
    assert box.count == 8 and box.sub == "Net  (1, 2) → (1, 2)" and "parameters: 4 tensors, 12 elements" in box.info
    opened = fold(g, expanded={0, 1})  # net and net.0 open; net.0.lin and net.1 folded
    labels = [n.label for n in opened.nodes]
    assert labels == ["x", "net.0.lin", "ReluBackward0", "net.1", "SumBackward0"]
    assert "net.0 … net.1" not in " ".join(opened.collapsed)
    assert opened.collapsed == ["10 backward nodes folded into 2 module boxes"]


def test_scope_view_has_stubs_for_outside_inputs() -> None:
    inner = fold(_net(), scope=3)  # inside net.1: its lin folded, its Relu, and what came from net.0
    assert [n.label for n in inner.nodes] == ["net.1.lin", "ReluBackward0", "from net.0"]
    assert (2, 0) in inner.edges and inner.roots == [1]


def test_auto_expand_opens_whole_levels_within_the_budget() -> None:
    g = _net(blocks=3)
    assert auto_expand(g, budget=40) == {0, 1, 3, 5}  # containers only: the Linear boxes stay closed
    assert auto_expand(g, budget=2) == {0, 1, 3, 5}  # fewer than MIN_VIEW boxes say too little: open
    ten = _net(blocks=10)
    blocks = {c.index for c in ten.calls if c.type == "Block"}
    assert auto_expand(ten, budget=21) == {0}  # 12 boxes; opening every block would show 22
    assert auto_expand(ten, budget=22) == {0, *blocks}
    assert MIN_VIEW <= 12
    assert auto_expand(ten, budget=21, given=[4]) == {0, 3, 4}  # --expand net.1.lin opens its parents too
    assert auto_expand(g, budget=1) == set()  # opening would show more than 4 × the budget
    assert find_calls(g, "net.1.lin") == [4] and find_calls(g, "nope") == []


def test_drill_downs_describe_same_structures_once() -> None:
    g = _net(blocks=3)
    view = fold(g, {0})
    drills = drill_downs(g, view, budget=40)
    assert [(d.path, d.depth, d.same_as, d.graph is not None) for d in drills] == [
        ("net.0", 0, "", True), ("net.0.lin", 1, "", True),
        ("net.1", 0, "net.0", False), ("net.2", 0, "net.0", False),
    ]
    assert drills[0].children == ("net.0.lin",)
    assert drill_downs(g, view, budget=40, max_boxes=2)[0].graph is None  # too big to draw: --expand


TRANSFORMER = """torch.manual_seed(0)
enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(d_model=64, nhead=4, dim_feedforward=128, batch_first=True),
                            num_layers=2)
src = torch.randn(2, 10, 64)"""
CELL = "out = enc(src)\nloss = out.pow(2).mean()\nloss.backward()"

LAYER = """\
  layers.{i}  TransformerEncoderLayer  (2, 10, 64) → (2, 10, 64)
    self_attn  MultiheadAttention  (2, 10, 64), (2, 10, 64) → (2, 10, 64)
    dropout1  Dropout p=0.1  (2, 10, 64) → (2, 10, 64){src}
    AddBackward0  (2, 10, 64) float32  ← {residual}, dropout1
    norm1  LayerNorm  (2, 10, 64) → (2, 10, 64)
    linear1  Linear  (2, 10, 64) → (2, 10, 128)
    ReluBackward0  (2, 10, 128) float32
    dropout  Dropout p=0.1  (2, 10, 128) → (2, 10, 128)
    linear2  Linear  (2, 10, 128) → (2, 10, 64)
    dropout2  Dropout p=0.1  (2, 10, 64) → (2, 10, 64)
    AddBackward0  (2, 10, 64) float32  ← norm1, dropout2
    norm2  LayerNorm  (2, 10, 64) → (2, 10, 64)"""
OUTLINE = "\n".join([
    "backward graph, folded by module (forward order; --expand NAME opens a box)",
    "enc  TransformerEncoder  (2, 10, 64) → (2, 10, 64)",
    LAYER.format(i=0, src="\n    src  (2, 10, 64)", residual="src"),
    LAYER.format(i=1, src="", residual="norm2"),
    "PowBackward0  (2, 10, 64) float32",
    "MeanBackward0  → loss  () float32",
])


def test_transformer_snapshot(ip: Any) -> None:
    ip.run_cell("import torch\nfrom torch import nn\n" + TRANSFORMER)
    assert ip.run_cell("%%autograd -o r\n" + CELL).success
    r: AutogradReport = ip.user_ns["r"]
    assert r.graph is not None and r.graph.total_nodes == 161
    text = rich_to_text(Block(graph_lines(r.graph)), width=120).rstrip()
    assert text == OUTLINE
    assert len(text.splitlines()) <= 60
    drawn = [(d.path, d.type, d.depth, len(d.graph.nodes) if d.graph else 0) for d in r.drills if not d.same_as]
    assert drawn == [
        ("enc.layers.0.self_attn", "MultiheadAttention", 0, 51), ("enc.layers.0.dropout1", "Dropout", 0, 3),
        ("enc.layers.0.norm1", "LayerNorm", 0, 4), ("enc.layers.0.linear1", "Linear", 0, 7),
        ("enc.layers.0.dropout", "Dropout", 0, 3), ("enc.layers.0.linear2", "Linear", 0, 7),
    ]
    assert sum(1 for d in r.drills if d.same_as) == 10
    whole = r.to_text()
    assert len(whole.splitlines()) < 60 + 20  # the graph fits a screen; the leaf table follows
    expanded = ip.run_cell("%%autograd -o r2 --expand enc.layers.1.self_attn\n" + CELL)
    assert expanded.success
    labels = [n.label for n in ip.user_ns["r2"].graph.nodes]
    assert "enc.layers.1.self_attn" not in labels and "SafeSoftmaxBackward0" in labels
    assert "enc.layers.0.self_attn" in labels

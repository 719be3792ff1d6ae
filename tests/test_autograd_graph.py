"""The plain graph model: node texts, inputs, topological order, module groups; no torch needed."""

from __future__ import annotations

import subprocess
import sys

from torchmagic.autograd.graph import GNode, Graph, assign_groups, topo_order


def _linear_graph() -> Graph:
    """``model.0.weight -> TBackward0 -> AddmmBackward0 <- model.0.bias``, then Tanh, then Sum."""
    return Graph(
        nodes=[
            GNode(0, "leaf", "model.0.weight", shape=(2, 3), dtype="float32", group="model.0"),
            GNode(1, "op", "TBackward0", shape=(3, 2), dtype="float32"),
            GNode(2, "leaf", "model.0.bias", shape=(2,), dtype="float32", group="model.0"),
            GNode(3, "const", "x", shape=(4, 3), dtype="float32", requires_grad=False),
            GNode(4, "op", "AddmmBackward0", shape=(4, 2), dtype="float32"),
            GNode(5, "op", "TanhBackward0", shape=(4, 2), dtype="float32", names=("h",)),
            GNode(6, "op", "SumBackward0", shape=(), dtype="float32", names=("loss",)),
        ],
        edges=[(0, 1), (1, 4), (2, 4), (3, 4), (4, 5), (5, 6)],
        roots=[6],
        root_names=["loss"],
    )


def test_inputs_and_topological_order() -> None:
    g = _linear_graph()
    assert g.inputs()[4] == [1, 2, 3]
    order = topo_order(g)
    assert sorted(order) == list(range(7))
    pos = {nid: k for k, nid in enumerate(order)}
    assert all(pos[a] < pos[b] for a, b in g.edges)
    assert [n.label for n in g.leaves()] == ["model.0.weight", "model.0.bias"]


def test_assign_groups_follows_parameters_not_activations() -> None:
    g = _linear_graph()
    assign_groups(g)
    groups = {n.label: n.group for n in g.nodes}
    assert groups["AddmmBackward0"] == "model.0"  # consumes model.0's parameters
    assert groups["TanhBackward0"] == ""  # an activation flowing through is not model.0's
    assert groups["SumBackward0"] == ""


def test_node_texts() -> None:
    g = _linear_graph()
    tanh, const = g.node(5), g.node(3)
    assert tanh.title == "TanhBackward0" and tanh.subtitle == "→ h  (4, 2) float32"
    details = tanh.details()
    assert details[0] == "TanhBackward0 — backward function"
    assert "output of: h" in details and "shape (4, 2), dtype float32" in details
    assert const.details()[0] == "x — input that needs no gradient"


def test_model_and_renderers_import_no_torch() -> None:
    code = (
        "import sys\n"
        "import torchmagic.autograd.graph, torchmagic.autograd.collapse, torchmagic.autograd.dot\n"
        "import torchmagic.autograd.svg, torchmagic.autograd.render, torchmagic.autograd.report\n"
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch.'))[:5]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

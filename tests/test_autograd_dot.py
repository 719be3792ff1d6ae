"""Graphviz export of a plain graph: every node and edge, escaped labels."""

from __future__ import annotations

from torchmagic.autograd.dot import to_dot
from torchmagic.autograd.graph import GNode, Graph


def test_to_dot_escapes_and_lists_every_edge() -> None:
    g = Graph(
        nodes=[
            GNode(0, "leaf", 'we"ird\\name', shape=(2,), dtype="float32"),
            GNode(1, "op", "MulBackward0", shape=(2,), dtype="float32"),
            GNode(2, "const", "constant 2", requires_grad=False),
            GNode(3, "op", "SumBackward0", shape=(), dtype="float32", names=('y"<x>',)),
        ],
        edges=[(0, 1), (2, 1), (1, 3)],
        roots=[3],
    )
    dot = to_dot(g)
    assert dot.startswith("digraph autograd {") and dot.rstrip().endswith("}")
    assert dot.count("->") == len(g.edges) == 3
    assert all(f"n{i} [label=" in dot for i in range(4))
    assert 'we\\"ird\\\\name' in dot
    assert '→ y\\"<x>' in dot  # the op's output name on its second line
    assert "fillcolor=\"#d7ecd9\"" in dot  # leaves are green, as in the SVG

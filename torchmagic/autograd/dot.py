"""Graphviz source for a backward graph, for people who want files (``report.to_dot()``).

A renderer like :mod:`~torchmagic.autograd.svg`: it reads the plain
:class:`~torchmagic.autograd.graph.Graph` only.
"""

from __future__ import annotations

from torchmagic.autograd.graph import Graph

__all__ = ["to_dot"]


def to_dot(graph: Graph) -> str:
    """Graphviz source for ``graph`` (``dot -Tsvg``), for people who want files."""

    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    fill = {"op": "#e8eef7", "leaf": "#d7ecd9", "const": "#eeeeee", "collapsed": "#fff3cd",
            "more": "#ffffff"}
    lines = ["digraph autograd {", '  node [shape=box, style="rounded,filled", fontsize=10];']
    for n in graph.nodes:
        label = n.title + (f"\n{n.subtitle}" if n.subtitle else "")
        lines.append(
            f"  n{n.id} [label={q(label)}, fillcolor={q(fill.get(n.kind, '#ffffff'))}, "
            f"tooltip={q(chr(10).join(n.details()))}];"
        )
    for a, b in graph.edges:
        lines.append(f"  n{a} -> n{b};")
    lines.append("}")
    return "\n".join(lines) + "\n"

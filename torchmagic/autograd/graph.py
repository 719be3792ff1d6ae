"""The backward graph as plain data: boxes, edges, and pure algorithms over them.

Nodes are autograd's backward functions (``MulBackward0``...), leaves are the
tensors gradients flow into (named as the user named them, ``model.0.weight``),
constants are inputs that needed no gradient.  Edges point the way the forward
pass went (input -> op -> output), so drawn top to bottom the loss is at the
bottom and gradients flow upwards.  Everything here is strings, ints and
tuples: no torch, so renderers (:mod:`~torchmagic.autograd.svg`,
:mod:`~torchmagic.autograd.render`, :mod:`~torchmagic.autograd.dot`) and the
folds (:mod:`~torchmagic.autograd.collapse`) depend on this module only.  The
walk over live autograd objects that builds a :class:`Graph` is
:mod:`torchmagic.autograd.walk`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from torchmagic.core.meta import fmt_shape

__all__ = ["GNode", "Graph", "topo_order", "assign_groups"]


@dataclass(frozen=True)
class GNode:
    """One box of the drawing."""

    id: int
    kind: str  # "op" | "leaf" | "const" | "collapsed" | "more"
    label: str  # MulBackward0 / the leaf's name / "constant"
    shape: tuple[int, ...] | None = None
    dtype: str = ""
    names: tuple[str, ...] = ()  # user names of tensors this node produced (ops) or is (leaves)
    saved: tuple[str, ...] = ()  # "other: (3,) float32 = x"
    grad: str = ""  # leaves: .grad when the graph was read
    note: str = ""
    group: str = ""  # module a leaf/op belongs to ("model.0")
    count: int = 1  # collapsed nodes: how many original nodes they stand for
    requires_grad: bool = True

    @property
    def title(self) -> str:
        """The main line shown in the box (the op, or the leaf's name)."""
        return self.label

    @property
    def subtitle(self) -> str:
        """The second line: shape and dtype, and the names of op outputs."""
        parts: list[str] = []
        if self.kind == "op" and self.names:
            parts.append("→ " + ", ".join(self.names))
        if self.shape is not None:
            parts.append(f"{fmt_shape(self.shape)} {self.dtype}".strip())
        return "  ".join(parts)

    def details(self) -> list[str]:
        """Lines for the hover tooltip and the terminal tree."""
        out: list[str] = []
        kind = {"op": "backward function", "leaf": "leaf tensor (gets .grad)",
                "const": "constant (needs no gradient)", "collapsed": "collapsed repeated blocks",
                "more": "not drawn"}.get(self.kind, self.kind)
        out.append(f"{self.label} — {kind}")
        if self.names:
            out.append(("output of: " if self.kind == "op" else "name: ") + ", ".join(self.names))
        if self.shape is not None:
            out.append(f"shape {fmt_shape(self.shape)}, dtype {self.dtype}")
        if self.group:
            out.append(f"module: {self.group}")
        out.extend(f"saved {s}" for s in self.saved)
        if self.grad:
            if self.kind == "op":
                out.append(f"gradient w.r.t. its output (last backward): {self.grad}")
            else:
                out.append(f".grad: {self.grad}")
        if self.note:
            out.append(self.note)
        return out


@dataclass
class Graph:
    """A backward graph as plain data; ``edges`` are ``(input id, consumer id)``."""

    nodes: list[GNode] = field(default_factory=list)
    edges: list[tuple[int, int]] = field(default_factory=list)
    roots: list[int] = field(default_factory=list)  # node ids of the outputs
    root_names: list[str] = field(default_factory=list)
    truncated: int = 0  # nodes not walked because of the cap
    total_nodes: int = 0  # nodes in the full graph (at least), before collapsing
    collapsed: list[str] = field(default_factory=list)  # messages about collapsed repeats
    freed: bool = False  # saved tensors were already freed by a backward
    stale: list[str] = field(default_factory=list)  # saved tensors modified in place

    def __len__(self) -> int:
        return len(self.nodes)

    def node(self, node_id: int) -> GNode:
        return self.nodes[node_id]

    def inputs(self) -> dict[int, list[int]]:
        ins: dict[int, list[int]] = {n.id: [] for n in self.nodes}
        for a, b in self.edges:
            ins[b].append(a)
        return ins

    def leaves(self) -> list[GNode]:
        return [n for n in self.nodes if n.kind == "leaf"]


def topo_order(graph: Graph) -> list[int]:
    """Node ids with every input before the ops that consume it."""
    ins = graph.inputs()
    users: dict[int, list[int]] = {n.id: [] for n in graph.nodes}
    missing = {nid: len(v) for nid, v in ins.items()}
    for a, b in graph.edges:
        users[a].append(b)
    ready = [nid for nid, k in missing.items() if k == 0]
    out: list[int] = []
    while ready:
        nid = ready.pop()
        out.append(nid)
        for u in users[nid]:
            missing[u] -= 1
            if missing[u] == 0:
                ready.append(u)
    return out


def assign_groups(graph: Graph) -> None:
    """Give an op the module of the parameters it consumes (``model.0`` for its addmm).

    An input counts if everything above it is parameters of one module (a
    ``TBackward0`` of ``model.0.weight`` does); activations flowing through
    do not, so a ``Tanh`` after ``model.0`` is not put in ``model.0``.
    """
    ins = graph.inputs()
    param_only: dict[int, bool] = {}
    groups: dict[int, str] = {}
    for nid in topo_order(graph):
        node = graph.nodes[nid]
        if node.kind == "leaf":
            groups[nid] = node.group
            param_only[nid] = bool(node.group)
            continue
        found = {groups.get(i, "") for i in ins[nid] if param_only.get(i)} - {""}
        if len(found) == 1:
            groups[nid] = found.pop()
            if node.kind == "op":
                graph.nodes[nid] = replace(node, group=groups[nid])
        param_only[nid] = bool(ins[nid]) and all(param_only.get(i, False) for i in ins[nid])



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

from dataclasses import dataclass, field

from torchmagic.core.meta import fmt_shape
from torchmagic.i18n import N_, tr

__all__ = ["GNode", "Graph", "CallInfo", "topo_order", "forward_order", "assign_groups"]


_KINDS = {"op": N_("backward function"), "leaf": N_("leaf tensor (gets .grad)"),
          "const": N_("input that needs no gradient"), "collapsed": N_("collapsed repeated blocks"),
          "module": N_("module call, folded"), "more": N_("not drawn")}


@dataclass(frozen=True)
class GNode:
    """One box of the drawing."""

    id: int
    kind: str  # "op" | "leaf" | "const" | "module" | "collapsed" | "more"
    label: str  # MulBackward0 / the leaf's name / "dropout mask" / a module's path
    shape: tuple[int, ...] | None = None
    dtype: str = ""
    names: tuple[str, ...] = ()  # user names of tensors this node produced (ops) or is (leaves)
    saved: tuple[str, ...] = ()  # "other: (3,) float32 = x"
    grad: str = ""  # leaves: .grad when the graph was read
    note: str = ""
    group: str = ""  # module a leaf/op belongs to ("model.0")
    count: int = 1  # collapsed and module boxes: how many original nodes they stand for
    requires_grad: bool = True
    call: int = -1  # index of the innermost module call that made it (CallInfo.index), -1: none
    seq: int = -1  # ops: autograd's sequence number (creation order, so inputs come first); -1: none
    flag: str = ""  # "nonfinite": a NaN/inf gradient reached it; "origin": one appeared here
    sub: str = ""  # module boxes: the second line, instead of shape and dtype
    info: tuple[str, ...] = ()  # more detail lines (module boxes: parameters, inputs)

    def but(self, **changes: object) -> GNode:
        """A copy with ``changes`` (``dataclasses.replace`` without its cost: graphs copy nodes a lot)."""
        new = object.__new__(GNode)
        new.__dict__.update(self.__dict__)
        new.__dict__.update(changes)
        return new

    @property
    def title(self) -> str:
        """The main line shown in the box (the op, or the leaf's name)."""
        return self.label

    @property
    def subtitle(self) -> str:
        """The second line: shape and dtype, and the names of op outputs."""
        if self.sub:
            return self.sub
        parts: list[str] = []
        if self.kind == "op" and self.names:
            parts.append("→ " + ", ".join(self.names))
        if self.shape is not None:
            parts.append(f"{fmt_shape(self.shape)} {self.dtype}".strip())
        return "  ".join(parts)

    def details(self) -> list[str]:
        """Lines for the hover tooltip and the terminal tree."""
        out: list[str] = []
        kind = tr(_KINDS[self.kind]) if self.kind in _KINDS else self.kind
        out.append(f"{self.label} — {kind}")
        if self.names:
            names = ", ".join(self.names)
            out.append(tr("output of: {names}", names=names) if self.kind == "op" else tr("name: {names}", names=names))
        if self.sub:
            out.append(self.sub)
        elif self.shape is not None:
            out.append(tr("shape {shape}, dtype {dtype}", shape=fmt_shape(self.shape), dtype=self.dtype))
        out.extend(self.info)
        if self.group:
            out.append(tr("module: {name}", name=self.group))
        out.extend(tr("saved {what}", what=s) for s in self.saved)
        if self.grad:
            if self.kind == "op":
                out.append(tr("gradient w.r.t. its output (last backward): {grad}", grad=self.grad))
            else:
                out.append(f".grad: {self.grad}")
        if self.note:
            out.append(self.note)
        return out


@dataclass(frozen=True)
class CallInfo:
    """One ``nn.Module`` call whose backward nodes are in the graph (see :mod:`torchmagic.autograd.modules`)."""

    index: int  # order of the call in the cell
    parent: int  # the enclosing call's index, -1 at the top
    path: str  # "enc.layers.0" (the module's name from the namespace), or its type when unnamed
    type: str  # "TransformerEncoderLayer"
    ins: tuple[tuple[int, ...], ...] = ()  # input shapes
    outs: tuple[tuple[int, ...], ...] = ()  # output shapes
    params: int = 0  # parameter elements of the module (its submodules included)
    tensors: int = 0  # ... and parameter tensors
    nodes: int = 0  # backward nodes made inside the call (its children's included)
    repeat: int = 1  # 2 for the second call of the same module in the cell
    detail: str = ""  # "p=0.1"

    @property
    def title(self) -> str:
        return self.path + (tr(" (call {n})", n=self.repeat) if self.repeat > 1 else "")

    @property
    def shapes(self) -> str:
        """``(2, 10, 64) → (2, 10, 64)``."""
        ins = ", ".join(fmt_shape(s) for s in self.ins[:2])
        outs = ", ".join(fmt_shape(s) for s in self.outs[:2])
        return f"{ins} → {outs}" if ins or outs else ""


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
    calls: list[CallInfo] = field(default_factory=list)  # module calls that made its nodes

    def __len__(self) -> int:
        return len(self.nodes)

    def node(self, node_id: int) -> GNode:
        return self.nodes[node_id]

    def inputs(self) -> dict[int, list[int]]:
        ins: dict[int, list[int]] = {n.id: [] for n in self.nodes}
        for a, b in self.edges:
            ins[b].append(a)
        return ins

    def users(self) -> dict[int, list[int]]:
        """For each node, the nodes that consume it."""
        out: dict[int, list[int]] = {n.id: [] for n in self.nodes}
        for a, b in self.edges:
            out[a].append(b)
        return out

    def leaves(self) -> list[GNode]:
        return [n for n in self.nodes if n.kind == "leaf"]


def forward_order(graph: Graph) -> list[int]:
    """Node ids in the order the forward pass made them (by sequence number), inputs first.

    Leaves and inputs have no number: each comes just before its first user.
    Autograd numbers nodes as it makes them, so every input's number is
    smaller than its user's and this is a topological order too.
    """
    users = graph.users()
    key: dict[int, float] = {}
    for node in graph.nodes:
        if node.seq >= 0:
            key[node.id] = float(node.seq)
    for node in graph.nodes:
        if node.id not in key:
            firsts = [key[u] for u in users[node.id] if u in key]
            key[node.id] = (min(firsts) - 0.5) if firsts else -1.0
    return sorted(key, key=lambda nid: (key[nid], nid))


def topo_order(graph: Graph) -> list[int]:
    """Node ids with every input before the ops that consume it."""
    users = graph.users()
    missing = {nid: len(v) for nid, v in graph.inputs().items()}
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
                graph.nodes[nid] = node.but(group=groups[nid])
        param_only[nid] = bool(ins[nid]) and all(param_only.get(i, False) for i in ins[nid])



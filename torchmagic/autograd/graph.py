"""Walk ``grad_fn`` chains into plain data: the backward graph a cell built.

Nodes are autograd's backward functions (``MulBackward0``...), leaves are the
tensors gradients flow into (named as the user named them, ``model.0.weight``),
constants are inputs that needed no gradient.  Edges point the way the forward
pass went (input -> op -> output), so drawn top to bottom the loss is at the
bottom and gradients flow upwards.  The walk keeps the autograd objects only
while it runs; the :class:`Graph` it returns holds strings, ints and tuples.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from torchmagic.autograd.values import fmt_number
from torchmagic.core.meta import dtype_name, fmt_shape
from torchmagic.core.names import iter_named_tensors
from torchmagic.core.saved import read_saved

__all__ = ["GNode", "Graph", "walk", "find_leaves", "to_dot", "topo_order"]

# Inputs of a backward node are usually saved under these names, in this order.
_INPUT_ORDER = ("self", "input", "mat1", "other", "mat2", "weight", "bias", "tensor", "tensors")


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


@dataclass(frozen=True)
class _Const:
    """An input that needed no gradient, as far as the saved tensors tell."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    cut: str


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _read_saved(fn: Any) -> tuple[list[tuple[str, Any]], str]:
    """Saved values of ``fn`` as (name, value); a note if they were freed or are stale."""
    saved = read_saved(fn)
    if saved.freed:
        return [], "saved tensors were freed by an earlier backward()"
    note = f"saved '{saved.modified[-1]}' was modified in place after it was saved" if saved.modified else ""
    return saved.values, note


def _describe(value: Any, names: Mapping[int, str]) -> str:
    import torch

    if isinstance(value, torch.Tensor):
        text = f"{fmt_shape(tuple(value.shape))} {dtype_name(value.dtype)}"
        name = names.get(id(value))
        return f"{text} = {name}" if name else text
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], torch.Tensor):
        return f"{len(value)} tensors"
    return _short(value)


def _order_key(item: tuple[str, Any]) -> tuple[int, str]:
    name = item[0]
    return (_INPUT_ORDER.index(name) if name in _INPUT_ORDER else len(_INPUT_ORDER), name)


def _output_meta(fn: Any) -> tuple[tuple[int, ...] | None, str]:
    try:
        meta = fn._input_metadata[0]
        return tuple(int(s) for s in meta.shape), dtype_name(meta.dtype)
    except Exception:  # noqa: BLE001 - custom Functions may lack metadata
        return None, ""


def _group_of(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else ""


def walk(
    roots: Iterable[tuple[str, Any]],
    namespace: Mapping[str, Any] | None = None,
    names: Mapping[int, str] | None = None,
    max_nodes: int = 5000,
    grad_text: Any = None,
    cuts: Mapping[int, str] | None = None,
    saved_cache: dict[tuple[int, str], Any] | None = None,
    op_grads: Mapping[tuple[int, str], str] | None = None,
    fns_out: list[tuple[int, Any]] | None = None,
) -> Graph:
    """The graph behind ``roots`` (``(label, tensor)`` pairs), named from ``namespace``.

    ``grad_text(tensor) -> str`` formats a leaf's ``.grad`` (leaves only).
    ``cuts`` maps ``id(tensor)`` of ``.detach()`` results to a description, so
    a constant that came from a detach is marked as a graph cut.
    ``saved_cache`` remembers saved-tensor descriptions by ``(id(node), name)``
    so a walk after ``backward()`` freed them can still show them.
    ``op_grads`` gives, by the same key, the gradient that reached an op
    during a watched backward; ``fns_out`` collects ``(node id, grad_fn)``
    pairs for the caller to hook (the caller must drop them afterwards).
    At most ``max_nodes`` nodes are read; the rest is counted in ``truncated``.
    """
    import torch

    names = dict(names or {})
    fn_names: dict[int, list[str]] = {}
    keep: list[Any] = []  # holds autograd objects while we walk so ids stay unique
    if namespace is not None:
        for name, t in iter_named_tensors(namespace):
            names.setdefault(id(t), name)
            if t.grad_fn is not None:
                keep.append(t.grad_fn)
                fn_names.setdefault(id(t.grad_fn), []).append(name)

    graph = Graph()
    index: dict[int, int] = {}
    queue: deque[Any] = deque()
    nodes: list[GNode | None] = []

    def add(obj: Any) -> int:
        key = id(obj)
        if key in index:
            return index[key]
        keep.append(obj)
        index[key] = len(nodes)
        nodes.append(None)
        queue.append(obj)
        return index[key]

    for label, t in roots:
        if not isinstance(t, torch.Tensor) or not t.requires_grad:
            continue
        if t.grad_fn is None:  # a leaf used directly as an output
            nid = add(t)
            fn_names.setdefault(id(t), [])
        else:
            nid = add(t.grad_fn)
            if label and label not in fn_names.setdefault(id(t.grad_fn), []):
                fn_names[id(t.grad_fn)].append(label)
        if nid not in graph.roots:
            graph.roots.append(nid)
            graph.root_names.append(label)

    def leaf_node(nid: int, t: Any) -> GNode:
        name = names.get(id(t), "")
        return GNode(
            id=nid,
            kind="leaf",
            label=name or "leaf",
            shape=tuple(int(s) for s in t.shape),
            dtype=dtype_name(t.dtype),
            names=(name,) if name else (),
            grad=grad_text(t) if grad_text is not None else "",
            group=_group_of(name),
            note="" if name else "a leaf with no name in the namespace",
        )

    walked = 0
    while queue:
        obj = queue.popleft()
        nid = index[id(obj)]
        if walked >= max_nodes:
            nodes[nid] = GNode(id=nid, kind="more", label="…", note="not walked (node cap)")
            graph.truncated += 1
            continue
        walked += 1
        if isinstance(obj, torch.Tensor):
            nodes[nid] = leaf_node(nid, obj)
            continue
        if hasattr(obj, "variable"):  # AccumulateGrad: the leaf itself
            nodes[nid] = leaf_node(nid, obj.variable)
            continue
        shape, dtype = _output_meta(obj)
        saved, note = _read_saved(obj)
        label = obj.name()
        saved.sort(key=_order_key)
        described = tuple(f"{k}: {_describe(v, names)}" for k, v in saved)
        spare: list[_Const] = []
        for _, v in saved:
            if isinstance(v, torch.Tensor) and not v.requires_grad:
                cname = names.get(id(v), "")
                if not cname and v.dim() == 0 and v.layout == torch.strided and v.device.type != "meta":
                    cname = f"constant {fmt_number(v.item())}"  # a Python number, like the 3 in w * 3
                spare.append(_Const(cname, tuple(int(s) for s in v.shape), dtype_name(v.dtype),
                                    (cuts or {}).get(id(v), "")))
        cache_key = (id(obj), label)
        if note.startswith("saved tensors were freed"):
            graph.freed = True
            if saved_cache is not None and cache_key in saved_cache:
                described, cached = saved_cache[cache_key]
                spare = list(cached)
                note = "saved tensors (shown as they were) were freed by backward()"
        elif note:
            graph.stale.append(f"{label}: {note}")
        if saved_cache is not None and (described or spare):
            saved_cache[cache_key] = (described, tuple(spare))
        nodes[nid] = GNode(
            id=nid,
            kind="op",
            label=label,
            shape=shape,
            dtype=dtype,
            names=tuple(fn_names.get(id(obj), ())),
            saved=described,
            note=note,
            grad=(op_grads or {}).get(cache_key, ""),
        )
        if fns_out is not None:
            fns_out.append((nid, obj))
        for child, _ in obj.next_functions:
            if child is None:
                const_id = len(nodes)
                if spare:
                    c = spare.pop(0)
                    nodes.append(GNode(
                        id=const_id, kind="const",
                        label=("✂ " if c.cut else "") + (c.name or c.cut or "constant"),
                        shape=c.shape, dtype=c.dtype,
                        names=(c.name,) if c.name and not c.name.startswith("constant ") else (),
                        requires_grad=False,
                        note=f"graph cut: {c.cut}; no gradient flows back through here" if c.cut else "",
                    ))
                else:
                    nodes.append(GNode(
                        id=const_id, kind="const", label="constant", requires_grad=False,
                        note="an input that needs no gradient (not saved, shape unknown)",
                    ))
                graph.edges.append((const_id, nid))
                continue
            graph.edges.append((add(child), nid))
        del saved, spare
    keep.clear()
    consumed = {a for a, _ in graph.edges}
    outer = [(r, label) for r, label in zip(graph.roots, graph.root_names) if r not in consumed]
    if outer:  # outputs used by other outputs are drawn inside, not as extra roots
        graph.roots = [r for r, _ in outer]
        graph.root_names = [label for _, label in outer]
    graph.nodes = [n for n in nodes if n is not None]
    graph.total_nodes = len(graph.nodes)
    _assign_groups(graph)
    return graph


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


def find_leaves(roots: Iterable[Any], limit: int = 100_000) -> list[Any]:
    """The leaf tensors (``AccumulateGrad.variable``) behind ``roots``; held by the caller only."""
    import torch

    stack: list[Any] = []
    leaves: list[Any] = []
    seen: set[int] = set()
    keep: list[Any] = []
    for t in roots:
        if not isinstance(t, torch.Tensor) or not t.requires_grad:
            continue
        if t.grad_fn is None:
            if id(t) not in seen:
                seen.add(id(t))
                leaves.append(t)
            continue
        stack.append(t.grad_fn)
    while stack and len(seen) < limit:
        fn = stack.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        keep.append(fn)
        if hasattr(fn, "variable"):
            var = fn.variable
            if id(var) not in seen:
                seen.add(id(var))
                leaves.append(var)
            continue
        stack.extend(c for c, _ in fn.next_functions if c is not None)
    keep.clear()
    return leaves


def _assign_groups(graph: Graph) -> None:
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

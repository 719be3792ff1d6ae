"""Walk live ``grad_fn`` chains into a plain :class:`~torchmagic.autograd.graph.Graph`.

The only module that reads autograd objects to build a graph: each backward
node's name, output metadata, saved values (through
:func:`torchmagic.core.saved.read_saved`) and inputs.  The walk keeps the
autograd objects only while it runs; the graph it returns holds strings,
ints and tuples.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from torchmagic.autograd.graph import GNode, Graph, assign_groups
from torchmagic.autograd.values import fmt_number
from torchmagic.core.meta import dtype_name, fmt_shape
from torchmagic.core.names import iter_named_tensors
from torchmagic.core.saved import read_saved

__all__ = ["walk", "find_leaves"]

# Inputs of a backward node are usually saved under these names, in this order.
_INPUT_ORDER = ("self", "input", "mat1", "other", "mat2", "weight", "bias", "tensor", "tensors")


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
    roots: Iterable[tuple[str, torch.Tensor]],
    namespace: Mapping[str, Any] | None = None,
    names: Mapping[int, str] | None = None,
    max_nodes: int = 5000,
    grad_text: Callable[[torch.Tensor], str] | None = None,
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

    def leaf_node(nid: int, t: torch.Tensor) -> GNode:
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
    assign_groups(graph)
    return graph


def find_leaves(roots: Iterable[torch.Tensor], limit: int = 100_000) -> list[torch.Tensor]:
    """The leaf tensors (``AccumulateGrad.variable``) behind ``roots``; held by the caller only."""
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



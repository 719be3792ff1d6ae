"""Walk live ``grad_fn`` chains into a plain :class:`~torchmagic.autograd.graph.Graph`.

The only module that reads autograd objects to build a graph: each backward
node's name, output metadata, saved values (through
:func:`torchmagic.core.saved.read_saved`) and inputs.  Inputs that need no
gradient are named for what they are: a tensor of the namespace (also seen
through a view of its storage), a Python number (``constant 3``), a dropout
mask (a saved factor whose values are only 0 and ``1/(1-p)``), a ``.detach()``
cut; an input autograd did not save stays "an input without grad".

Backward nodes are keyed by their *sequence number* (``_sequence_nr()``,
fixed when autograd made the node) and name, not by ``id()``: the Python
object of a node is created afresh whenever nobody holds it, so its id
changes between two walks while the number does not.  The walk keeps the
autograd objects only while it runs; the graph it returns holds strings,
ints and tuples.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from torchmagic.autograd.graph import GNode, Graph, assign_groups
from torchmagic.autograd.values import fmt_number
from torchmagic.core.meta import dtype_name, fmt_shape
from torchmagic.core.names import iter_named_tensors
from torchmagic.core.saved import read_saved
from torchmagic.i18n import N_, tr, trn

__all__ = ["walk", "find_leaves", "node_key", "storage_names", "saved_freed", "NodeKey", "UNKNOWN_INPUT"]

UNKNOWN_INPUT = N_("input without grad")  # the label of an input nothing tells the name of (translated: tr())
FREED = N_("saved tensors were freed by an earlier backward()")
FREED_SHOWN = N_("saved tensors (shown as they were) were freed by backward()")
NodeKey = tuple[int, str]  # (sequence number, name) of a backward node: stable while it lives
# Inputs of a backward node are usually saved under these names, in this order.
_INPUT_ORDER = ("self", "input", "mat1", "other", "mat2", "weight", "bias", "tensor", "tensors")
_MASK_CHECK = 1 << 22  # masks up to this many elements are checked value by value


def node_key(fn: Any) -> NodeKey:
    """The key of a backward node that stays the same while the node lives."""
    return int(fn._sequence_nr()), str(fn.name())


@dataclass(frozen=True)
class _Input:
    """An input that needed no gradient, as far as the saved tensors tell."""

    label: str
    shape: tuple[int, ...]
    dtype: str
    named: bool  # the label is a user's name
    note: str


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(value: Any, names: Mapping[int, str]) -> str:
    if isinstance(value, torch.Tensor):
        text = f"{fmt_shape(tuple(value.shape))} {dtype_name(value.dtype)}"
        name = names.get(id(value))
        return f"{text} = {name}" if name else text
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], torch.Tensor):
        return trn("{n} tensor", "{n} tensors", len(value))
    return _short(value)


def saved_freed(node: GNode) -> bool:
    """Whether the walk found ``node``'s saved tensors freed by a backward (its note says so)."""
    return tr(FREED) in node.note or tr(FREED_SHOWN) in node.note


def _order_key(item: tuple[str, Any]) -> tuple[int, str]:
    name = item[0]
    return (_INPUT_ORDER.index(name) if name in _INPUT_ORDER else len(_INPUT_ORDER), name)


def _output_meta(fn: Any) -> tuple[tuple[int, ...] | None, str]:
    try:
        meta = fn._input_metadata[0]
        return tuple(meta.shape), dtype_name(meta.dtype)
    except Exception:  # noqa: BLE001 - custom Functions may lack metadata
        return None, ""


def _group_of(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else ""


def _storage(t: torch.Tensor) -> int:
    try:
        return int(t.untyped_storage().data_ptr()) if t.layout == torch.strided else 0
    except (RuntimeError, NotImplementedError):
        return 0


def storage_names(named: Iterable[tuple[str, torch.Tensor]]) -> dict[int, str]:
    """``storage address -> name`` of the named tensors that need no gradient (the first name wins)."""
    out: dict[int, str] = {}
    for name, t in named:
        if not t.requires_grad:
            address = _storage(t)
            if address:
                out.setdefault(address, name)
    return out


def _mask(v: torch.Tensor, op: str) -> str:
    """``"dropout mask (p=0.1)"`` when ``v`` holds only 0 and one positive value (a dropout's scaled mask)."""
    if op != "MulBackward0" or v.numel() > _MASK_CHECK or v.numel() < 2 or v.device.type == "meta":
        return ""
    if not (v.is_floating_point() or v.dtype == torch.bool):
        return ""
    with torch.no_grad():
        flat = v.detach().reshape(-1)
        kept = flat[flat != 0]
        if kept.numel() == 0 or kept.numel() == flat.numel():
            return ""
        scale = float(kept[0])
        if scale <= 0 or not bool((kept == kept[0]).all()):
            return ""
    if scale == 1.0:
        return tr("mask of 0s and 1s")
    return tr("dropout mask (p={p})", p=f"{1 - 1 / scale:.3g}")


class _Walker:
    """One walk: the queue of autograd objects, the nodes made so far, the names to use."""

    def __init__(self, names: dict[int, str], storages: Mapping[int, str], cuts: Mapping[int, str],
                 grad_text: Callable[[torch.Tensor], str] | None) -> None:
        self.names = names
        self.storages = storages
        self.cuts = cuts
        self.grad_text = grad_text
        self.index: dict[int, int] = {}
        self.nodes: list[GNode | None] = []
        self.queue: deque[Any] = deque()
        self.keep: list[Any] = []  # holds autograd objects while we walk so ids stay unique

    def add(self, obj: Any) -> int:
        key = id(obj)
        if key in self.index:
            return self.index[key]
        self.keep.append(obj)
        self.index[key] = len(self.nodes)
        self.nodes.append(None)
        self.queue.append(obj)
        return self.index[key]

    def new(self, node: GNode) -> int:
        """Append a node that is not an autograd object (an input without gradient)."""
        nid = len(self.nodes)
        self.nodes.append(node)
        return nid

    def leaf(self, nid: int, t: torch.Tensor) -> GNode:
        name = self.names.get(id(t), "")
        return GNode(
            id=nid, kind="leaf", label=name or tr("leaf"), shape=tuple(int(s) for s in t.shape),
            dtype=dtype_name(t.dtype), names=(name,) if name else (),
            grad=self.grad_text(t) if self.grad_text is not None else "",
            group=_group_of(name), note="" if name else tr("a leaf with no name in the namespace"),
        )

    def input_of(self, v: torch.Tensor, op: str) -> _Input:
        """What to call a saved tensor that needs no gradient."""
        shape, dtype = tuple(int(s) for s in v.shape), dtype_name(v.dtype)
        cut = self.cuts.get(id(v), "")
        name = self.names.get(id(v), "")
        if cut:
            return _Input("✂ " + (name or cut), shape, dtype, bool(name),
                          tr("graph cut: {cut}; no gradient flows back through here", cut=cut))
        if name:
            return _Input(name, shape, dtype, True, "")
        if v.dim() == 0 and v.layout == torch.strided and v.device.type != "meta":
            return _Input(tr("constant {value}", value=fmt_number(v.item())), shape, dtype, False,
                          tr("a Python number in the expression"))
        mask = _mask(v, op)
        if mask:
            return _Input(mask, shape, dtype, False, tr("made by dropout: gradients flow only where it is not 0"))
        viewed = self.storages.get(_storage(v), "")
        if viewed:
            return _Input(viewed, shape, dtype, True, tr("saved: {name} (its storage, as {shape})", name=viewed,
                                                         shape=fmt_shape(shape)))
        return _Input(tr(UNKNOWN_INPUT), shape, dtype, False,
                      tr("a tensor that needs no gradient, made in the cell without a name"))


def walk(
    roots: Iterable[tuple[str, torch.Tensor]],
    namespace: Mapping[str, Any] | None = None,
    names: Mapping[int, str] | None = None,
    max_nodes: int = 5000,
    grad_text: Callable[[torch.Tensor], str] | None = None,
    cuts: Mapping[int, str] | None = None,
    saved_cache: dict[NodeKey, Any] | None = None,
    op_grads: Mapping[NodeKey, str] | None = None,
    op_flags: Mapping[NodeKey, str] | None = None,
    fns_out: list[tuple[int, Any]] | None = None,
    leaves_out: dict[int, int] | None = None,
    named: Sequence[tuple[str, torch.Tensor]] | None = None,
) -> Graph:
    """The graph behind ``roots`` (``(label, tensor)`` pairs), named from ``namespace``.

    ``named`` gives the ``(name, tensor)`` pairs directly when the caller has
    them already (they are read from ``namespace`` otherwise).

    ``grad_text(tensor) -> str`` formats a leaf's ``.grad`` (leaves only).
    ``cuts`` maps ``id(tensor)`` of ``.detach()`` results to a description, so
    an input that came from a detach is marked as a graph cut.
    ``saved_cache`` remembers saved-tensor descriptions by node key so a walk
    after ``backward()`` freed them can still show them; ``op_grads`` gives,
    by the same key, the gradient that reached an op during a watched
    backward, and ``op_flags`` whether it was not finite.  ``fns_out`` collects ``(node id, grad_fn)`` pairs for the
    caller to hook (the caller must drop them afterwards); ``leaves_out``
    maps each leaf's node id to ``id(leaf)``.  At most
    ``max_nodes`` nodes are read; the rest is counted in ``truncated``.
    """
    names = dict(names or {})
    fn_names: dict[int, list[str]] = {}
    if named is None:
        named = list(iter_named_tensors(namespace)) if namespace is not None else []
    w = _Walker(names, storage_names(named), cuts or {}, grad_text)
    for name, t in named:
        names.setdefault(id(t), name)
        if t.grad_fn is not None:
            w.keep.append(t.grad_fn)
            fn_names.setdefault(id(t.grad_fn), []).append(name)
    graph = Graph()
    for label, t in roots:
        if not isinstance(t, torch.Tensor) or not t.requires_grad:
            continue
        obj = t if t.grad_fn is None else t.grad_fn  # a leaf used directly as an output is its own root
        nid = w.add(obj)
        given = fn_names.setdefault(id(obj), [])
        if label and obj is not t and label not in given:
            given.append(label)
        if nid not in graph.roots:
            graph.roots.append(nid)
            graph.root_names.append(label)
    walked = 0
    while w.queue:
        obj = w.queue.popleft()
        nid = w.index[id(obj)]
        if walked >= max_nodes:
            w.nodes[nid] = GNode(id=nid, kind="more", label="…", note=tr("not walked (node cap)"))
            graph.truncated += 1
            continue
        walked += 1
        if isinstance(obj, torch.Tensor) or hasattr(obj, "variable"):  # AccumulateGrad: the leaf itself
            leaf = obj if isinstance(obj, torch.Tensor) else obj.variable
            w.nodes[nid] = w.leaf(nid, leaf)
            if leaves_out is not None:
                leaves_out[nid] = id(leaf)
        else:
            _op(w, graph, nid, obj, fn_names, saved_cache, op_grads, op_flags)
            if fns_out is not None:
                fns_out.append((nid, obj))
    w.keep.clear()
    consumed = {a for a, _ in graph.edges}
    outer = [(r, label) for r, label in zip(graph.roots, graph.root_names) if r not in consumed]
    if outer:  # outputs used by other outputs are drawn inside, not as extra roots
        graph.roots = [r for r, _ in outer]
        graph.root_names = [label for _, label in outer]
    graph.nodes = [n for n in w.nodes if n is not None]
    graph.total_nodes = len(graph.nodes)
    assign_groups(graph)
    return graph


def _op(w: _Walker, graph: Graph, nid: int, fn: Any, fn_names: Mapping[int, list[str]],
        saved_cache: dict[NodeKey, Any] | None, op_grads: Mapping[NodeKey, str] | None,
        op_flags: Mapping[NodeKey, str] | None) -> None:
    """Read one backward node: its box, and its inputs queued or added as input boxes."""
    key = node_key(fn)
    label = key[1]
    shape, dtype = _output_meta(fn)
    children = [child for child, _ in fn.next_functions]
    saved = read_saved(fn)
    note = ""
    values = sorted(saved.values, key=_order_key) if len(saved.values) > 1 else saved.values
    described = tuple(f"{k}: {_describe(v, w.names)}" for k, v in values)
    spare: list[_Input] = []
    if None in children:  # only inputs without a grad_fn need a name: read the saved ones for it
        spare = [w.input_of(v, label) for _, v in values if isinstance(v, torch.Tensor) and not v.requires_grad]
    if saved.freed:
        graph.freed = True
        note = tr(FREED)
        if saved_cache is not None and key in saved_cache:
            described, cached = saved_cache[key]
            spare = list(cached)
            note = tr(FREED_SHOWN)
    elif saved.modified:
        note = tr("saved '{name}' was modified in place after it was saved", name=saved.modified[-1])
        graph.stale.append(tr("{op}: {note}", op=label, note=note))
    if saved_cache is not None and (described or spare):
        saved_cache[key] = (described, tuple(spare))
    given = fn_names.get(id(fn))
    w.nodes[nid] = GNode(
        nid, "op", label, shape, dtype, tuple(given) if given else (), described, op_grads.get(key, "")
        if op_grads else "", note, seq=key[0], flag=op_flags.get(key, "") if op_flags else "",
    )
    edges = graph.edges
    for child in children:
        if child is not None:
            edges.append((w.add(child), nid))
        else:
            edges.append((w.new(_input_node(len(w.nodes), spare.pop(0) if spare else None)), nid))


def _input_node(nid: int, c: _Input | None) -> GNode:
    """The box of an input that needs no gradient (``None``: one autograd did not save)."""
    if c is None:
        return GNode(id=nid, kind="const", label=tr(UNKNOWN_INPUT), requires_grad=False,
                     note=tr("an input that needs no gradient (autograd did not save it: name and shape unknown)"))
    return GNode(id=nid, kind="const", label=c.label, shape=c.shape, dtype=c.dtype,
                 names=(c.label,) if c.named else (), requires_grad=False, note=c.note)


def find_leaves(roots: Iterable[torch.Tensor], limit: int = 100_000) -> list[torch.Tensor]:
    """The leaf tensors (``AccumulateGrad.variable``) behind ``roots``; held by the caller only."""
    stack: list[Any] = []
    leaves: list[torch.Tensor] = []
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

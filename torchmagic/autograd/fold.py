"""Fold a backward graph by module: one box per module call, its own subgraph behind it.

A 2-layer ``TransformerEncoder`` makes 161 backward nodes; drawn at once they
are either too small to read or too tall to follow.  Each node knows the
innermost module call that made it (``GNode.call``, from
:mod:`torchmagic.autograd.modules`), and the calls form a tree, so a *view*
of the graph picks which calls are open (``expanded``): every node is shown
inside the outermost call on its path that is closed, as one ``module`` box,
or as itself when every call around it is open.  The picture grows by
opening modules, never by shrinking text.

:func:`auto_expand` opens whole levels of containers (``enc``, then every
``enc.layers.i``) while the view stays within a box budget;
:func:`drill_downs` gives each closed box of a view its own view, one level
deeper, with modules of the same structure described once.  Pure data in,
pure data out: no torch here.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace

from torchmagic.autograd.graph import CallInfo, GNode, Graph, forward_order
from torchmagic.i18n import tr, trn

__all__ = ["Drill", "fold", "auto_expand", "drill_downs", "find_calls", "MIN_VIEW"]

MIN_VIEW = 8  # a view with fewer boxes than this is opened one level more even over the budget


@dataclass(frozen=True)
class Drill:
    """The inside of one module call: its own folded view (or a pointer to an identical one)."""

    path: str  # the call's title, "enc.layers.0"
    type: str
    graph: Graph | None  # None when ``same_as`` already shows this structure
    same_as: str = ""
    depth: int = 0  # 0: a box of the main view; 1: a box inside that box's view...
    children: tuple[str, ...] = field(default_factory=tuple)  # drills of the boxes inside


_CHAINS: dict[int, tuple[Graph, dict[int, list[int]]]] = {}  # the last graphs' chains (folds repeat them)


def _chains(graph: Graph) -> dict[int, list[int]]:
    """For each call index, the calls from the outermost down to it (remembered for the last graphs)."""
    hit = _CHAINS.get(id(graph))
    if hit is not None and hit[0] is graph:
        return hit[1]
    if len(_CHAINS) > 8:
        _CHAINS.clear()
    by_index = {c.index: c for c in graph.calls}
    out: dict[int, list[int]] = {}
    for call in graph.calls:
        chain: list[int] = []
        index = call.index
        while index >= 0 and index in by_index:
            chain.append(index)
            index = by_index[index].parent
        out[call.index] = chain[::-1]
    _CHAINS[id(graph)] = (graph, out)
    return out


def _unit(chain: list[int], expanded: Collection[int], scope: int) -> int | None:
    """The call whose box shows a node with this call chain (None: the node shows itself).

    Raises KeyError when the node is outside ``scope``.
    """
    if scope >= 0:
        if scope not in chain:
            raise KeyError(scope)
        chain = chain[chain.index(scope) + 1:]
    for index in chain:
        if index not in expanded:
            return index
    return None


def fold(graph: Graph, expanded: Collection[int] = (), scope: int = -1) -> Graph:
    """The view of ``graph`` with the calls in ``expanded`` open (all others folded into boxes).

    With ``scope``, only what happened inside that call is shown; inputs
    from outside it become boxes labelled ``from …``.
    """
    chains = _chains(graph)
    infos = {c.index: c for c in graph.calls}
    keys: list[tuple[str, int] | None] = []
    for node in graph.nodes:
        try:
            box = _unit(chains.get(node.call, []), expanded, scope)
        except KeyError:
            keys.append(None)
            continue
        keys.append(("c", box) if box is not None else ("n", node.id))
    members: dict[tuple[str, int], list[GNode]] = {}
    for node, key in zip(graph.nodes, keys):
        if key is not None:
            members.setdefault(key, []).append(node)
    new_id = {key: k for k, key in enumerate(members)}
    nodes: list[GNode] = []
    for key, inside in members.items():
        nid = new_id[key]
        if key[0] == "n":
            nodes.append(inside[0].but(id=nid))
        else:
            nodes.append(_box(nid, infos[key[1]], inside))
    edges: list[tuple[int, int]] = []
    outside: dict[int, int] = {}  # original node id -> stub id, for inputs from outside the scope
    for a, b in graph.edges:
        kb = keys[b]
        if kb is None:
            continue
        ka = keys[a]
        if ka is None:
            if a not in outside:
                outside[a] = len(nodes)
                nodes.append(_stub(len(nodes), graph, a, chains, scope))
            edges.append((outside[a], new_id[kb]))
        elif ka != kb:
            edges.append((new_id[ka], new_id[kb]))
    edges = list(dict.fromkeys(edges))
    if scope >= 0:
        used = {a for a, _ in edges}
        roots = [n.id for n in nodes if n.id not in used]
        root_names = [""] * len(roots)
    else:
        roots, root_names = [], []
        for r, label in zip(graph.roots, graph.root_names):
            key = keys[r]
            if key is not None and new_id[key] not in roots:
                roots.append(new_id[key])
                root_names.append(label)
    boxed = {key[1] for key in members if key[0] == "c"}
    kept = [c for c in graph.calls if c.index in expanded or c.index in boxed]
    boxes = sum(1 for key in members if key[0] == "c")
    message = (tr("{n} backward nodes folded into {boxes} module boxes", n=graph.total_nodes, boxes=boxes)
               if boxes else "")
    return replace(
        graph, nodes=nodes, edges=edges, roots=roots, root_names=root_names,
        collapsed=[*graph.collapsed, message] if message and scope < 0 else list(graph.collapsed),
        stale=list(graph.stale), calls=kept,
    )


def _box(nid: int, info: CallInfo, inside: list[GNode]) -> GNode:
    """The box of one folded module call."""
    flags = {n.flag for n in inside}
    lines = [trn("{n} backward node inside", "{n} backward nodes inside", info.nodes)]
    if info.tensors:
        lines.append(trn("parameters: {n} tensor, {elements} elements", "parameters: {n} tensors, {elements} elements",
                         info.tensors, elements=f"{info.params:,}"))
    if info.detail:
        lines.append(info.detail)
    leaves = [n for n in inside if n.kind == "leaf" and n.grad]
    lines.extend(f".grad {n.label}: {n.grad}" for n in leaves[:8])
    if len(leaves) > 8:
        lines.append(tr("… and {n} more parameters", n=len(leaves) - 8))
    sub = "  ".join(p for p in (info.type + (f" {info.detail}" if info.detail else ""), info.shapes) if p)
    seqs = [n.seq for n in inside if n.seq >= 0]
    return GNode(
        id=nid, kind="module", label=info.title, shape=info.outs[0] if info.outs else None,
        seq=min(seqs) if seqs else -1,
        sub=sub, info=tuple(lines), group=info.path, count=len(inside), call=info.index,
        flag="origin" if "origin" in flags else ("nonfinite" if "nonfinite" in flags else ""),
        note=tr("%%autograd --expand {path} draws it open", path=info.path),
    )


def _stub(nid: int, graph: Graph, original: int, chains: dict[int, list[int]], scope: int) -> GNode:
    """An input that comes from outside the scope of a drill-down view, named by the box it comes from."""
    node = graph.nodes[original]
    inside = chains.get(scope, [])
    source = chains.get(node.call, [])
    common = 0
    while common < min(len(inside), len(source)) and inside[common] == source[common]:
        common += 1
    rest = source[common:]
    label = node.label
    if rest:
        label = next((c.title for c in graph.calls if c.index == rest[0]), label)
    return GNode(id=nid, kind="const", label=tr("from {name}", name=label), shape=node.shape, dtype=node.dtype,
                 requires_grad=node.requires_grad, note=tr("comes from outside this module call"))


def _depths(graph: Graph) -> dict[int, int]:
    return {index: len(chain) - 1 for index, chain in _chains(graph).items()}


def _containers(graph: Graph) -> set[int]:
    """Calls that have calls inside them (only these are opened automatically)."""
    return {c.parent for c in graph.calls if c.parent >= 0}


def _count(graph: Graph, expanded: Collection[int], scope: int) -> int:
    chains = _chains(graph)
    units: set[tuple[str, int]] = set()
    for node in graph.nodes:
        try:
            box = _unit(chains.get(node.call, []), expanded, scope)
        except KeyError:
            continue
        units.add(("c", box) if box is not None else ("n", node.id))
    return len(units)


def auto_expand(graph: Graph, budget: int, scope: int = -1, given: Iterable[int] = ()) -> set[int]:
    """Calls to open so the view shows at most ``budget`` boxes: whole levels of containers at a time.

    ``given`` calls (``--expand``) are open too, with every call around
    them, whatever the budget: the default picture with those opened.
    """
    by_index = {c.index: c for c in graph.calls}
    opened: set[int] = set()
    for index in given:
        while index >= 0 and index in by_index:
            opened.add(index)
            index = by_index[index].parent
    expanded: set[int] = set()
    depths = _depths(graph)
    base = depths.get(scope, -1)
    containers = _containers(graph)
    level = base + 1
    while True:
        candidates = {i for i, d in depths.items() if d == level and i in containers
                      and (by_index[i].parent == scope or by_index[i].parent in expanded)}
        if scope >= 0:
            candidates = {i for i in candidates if _inside(i, scope, by_index)}
        if not candidates:
            return expanded | opened
        trial = expanded | candidates
        shown = _count(graph, trial, scope)
        # Over budget: stop, unless what is shown now is too little to tell anything (one box)
        # and repeated blocks can still fold the bigger view (collapse_repeats).
        if shown > budget and (_count(graph, expanded, scope) >= MIN_VIEW or shown > 4 * budget):
            return expanded | opened
        expanded = trial
        level += 1


def _inside(index: int, scope: int, by_index: dict[int, CallInfo]) -> bool:
    while index >= 0 and index in by_index:
        if index == scope:
            return True
        index = by_index[index].parent
    return False


def _signature(graph: Graph, index: int, memo: dict[int, tuple[object, ...]]) -> tuple[object, ...]:
    """What makes two module calls look the same inside: type, shapes, size and children."""
    if index not in memo:
        info = next(c for c in graph.calls if c.index == index)
        kids = tuple(_signature(graph, c.index, memo) for c in graph.calls if c.parent == index)
        memo[index] = (info.type, info.ins, info.outs, info.params, kids)
    return memo[index]


def drill_downs(graph: Graph, view: Graph, budget: int, max_boxes: int = 400) -> list[Drill]:
    """A view of each closed module box of ``view`` (and of the boxes inside it), depth first.

    Calls with the same structure as one already shown point to it instead
    of repeating it.  At most ``max_boxes`` boxes are drawn over all drills
    (the rest point to ``--expand``).
    """
    memo: dict[int, tuple[object, ...]] = {}
    shown: dict[tuple[object, ...], str] = {}
    by_index = {c.index: c for c in graph.calls}
    out: list[Drill] = []
    drawn = 0

    def visit(index: int, depth: int) -> str:
        nonlocal drawn
        info = by_index[index]
        sig = _signature(graph, index, memo)
        if sig in shown:
            out.append(Drill(info.title, info.type, None, same_as=shown[sig], depth=depth))
            return info.title
        shown[sig] = info.title
        inner = fold(graph, auto_expand(graph, budget, scope=index), scope=index)
        if drawn + len(inner.nodes) > max_boxes:
            out.append(Drill(info.title, info.type, None, depth=depth))
            return info.title
        drawn += len(inner.nodes)
        slot = len(out)
        out.append(Drill(info.title, info.type, inner, depth=depth))
        kids = tuple(visit(inner.nodes[k].call, depth + 1) for k in forward_order(inner)
                     if inner.nodes[k].kind == "module")
        out[slot] = replace(out[slot], children=kids)
        return info.title

    for nid in forward_order(view):
        node = view.nodes[nid]
        if node.kind == "module" and node.call in by_index:
            visit(node.call, 0)
    return out


def find_calls(graph: Graph, path: str) -> list[int]:
    """Indices of the calls of the module named ``path`` (``enc.layers.0``)."""
    return [c.index for c in graph.calls if c.path == path or c.title == path]

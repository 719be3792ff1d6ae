"""Collapse repeated blocks of a deep graph into one box.

A 330-layer ``Sequential`` makes a backward graph 1,600 boxes tall; what a
learner needs is the first block, the last block, and "326 × the same block"
in between.  We follow the graph's spine (the longest chain from the output
back to the input), give every spine node a structural signature (its op and
the shapes of the parameters hanging off it), find the longest periodic run
of signatures, and replace its middle with one ``collapsed`` node.  Pure data
in, pure data out: no torch here.
"""

from __future__ import annotations

from dataclasses import replace

from torchmagic.autograd.graph import GNode, Graph, topo_order
from torchmagic.i18n import tr

__all__ = ["collapse_repeats", "group_modules"]

MAX_PERIOD = 12


def _spine(graph: Graph, ins: dict[int, list[int]]) -> list[int]:
    """From the first root upwards, always into the input with the longest chain above it."""
    height: dict[int, int] = {}
    for nid in topo_order(graph):
        height[nid] = 1 + max((height[i] for i in ins[nid]), default=-1)
    if not graph.roots:
        return []
    path = [graph.roots[0]]
    while ins[path[-1]]:
        nxt = max(ins[path[-1]], key=lambda i: (height[i], -i))
        if graph.nodes[nxt].kind not in ("op", "module"):
            break
        path.append(nxt)
    return path


def _sides(
    graph: Graph, spine: list[int], ins: dict[int, list[int]], users: dict[int, list[int]]
) -> list[list[int] | None]:
    """Nodes that hang off each spine node only (its parameters); None if shared."""
    on_spine = set(spine)
    out: list[list[int] | None] = []
    for k, nid in enumerate(spine):
        nxt = spine[k + 1] if k + 1 < len(spine) else None
        members: list[int] = []
        stack = [i for i in ins[nid] if i != nxt]
        seen: set[int] = set()
        ok = True
        while stack:
            v = stack.pop()
            if v in seen:
                continue
            seen.add(v)
            if v in on_spine:
                ok = False
                break
            members.append(v)
            stack.extend(ins[v])
        if ok:
            inside = set(members) | {nid}
            ok = all(set(users[m]) <= inside for m in members)
        out.append(members if ok else None)
    return out


def _name(node: GNode) -> str:
    """What a box is, for comparing blocks: the op, or a folded module's type and shapes (not its path)."""
    return node.sub if node.kind == "module" else node.label


def _signature(graph: Graph, nid: int, side: list[int]) -> tuple[object, ...]:
    node = graph.nodes[nid]
    parts = sorted(
        (graph.nodes[m].kind, graph.nodes[m].label if graph.nodes[m].kind == "op" else "",
         graph.nodes[m].shape or ())
        for m in side
    )
    return (_name(node), node.shape or (), tuple(parts))


def _best_run(sigs: list[tuple[object, ...] | None], min_repeats: int) -> tuple[int, int, int] | None:
    """(start, period, repeats) of the periodic run that covers most spine nodes."""
    best: tuple[int, int, int] | None = None
    n = len(sigs)
    for p in range(1, MAX_PERIOD + 1):
        i = 0
        while i + p < n:
            j = i
            while j + p < n and sigs[j] is not None and sigs[j] == sigs[j + p]:
                j += 1
            if j > i:
                repeats = (j - i + p) // p
                if repeats >= min_repeats and (best is None or repeats * p > best[1] * best[2]):
                    best = (i, p, repeats)
                i = j + 1
            else:
                i += 1
    return best


def collapse_repeats(graph: Graph, min_repeats: int = 4, keep: int = 1) -> Graph:
    """A copy of ``graph`` with long runs of identical blocks folded into one node each."""
    current = graph
    for _ in range(4):  # a few independent runs at most
        folded = _collapse_once(current, min_repeats, keep)
        if folded is None:
            break
        current = folded
    return current


def _collapse_once(graph: Graph, min_repeats: int, keep: int) -> Graph | None:
    ins = graph.inputs()
    users = graph.users()
    spine = _spine(graph, ins)
    if len(spine) < min_repeats * 2:
        return None
    sides = _sides(graph, spine, ins, users)
    sigs: list[tuple[object, ...] | None] = []
    for k, nid in enumerate(spine):
        side = sides[k]
        single_user = k == 0 or users[nid] == [spine[k - 1]]
        sigs.append(_signature(graph, nid, side) if side is not None and single_user else None)
    run = _best_run(sigs, min_repeats)
    if run is None:
        return None
    start, period, repeats = run
    hidden_blocks = repeats - 2 * keep
    if hidden_blocks < 2:
        return None
    first = start + keep * period  # first spine index hidden
    last = first + hidden_blocks * period - 1  # last spine index hidden
    removed: set[int] = set()
    leaf_names: list[str] = []
    for k in range(first, last + 1):
        removed.add(spine[k])
        side = sides[k] or []
        removed.update(side)
        leaf_names.extend(graph.nodes[m].names[0] for m in side if graph.nodes[m].kind == "leaf"
                          and graph.nodes[m].names)
    # Forward order of one block: spine nodes are listed output-first.
    block = [_name(graph.nodes[spine[k]]).split("  ")[0] for k in range(first + period - 1, first - 1, -1)]
    label = f"{hidden_blocks} × [{' → '.join(block)}]"
    named = leaf_names
    if named:
        note = tr("{n} nodes: {repeats} repeats of the same block, parameters {first} … {last}", n=len(removed),
                  repeats=hidden_blocks, first=named[-1], last=named[0])
    else:
        note = tr("{n} nodes: {repeats} repeats of the same block", n=len(removed), repeats=hidden_blocks)
    groups = [graph.nodes[spine[k]].group for k in range(first, last + 1) if graph.nodes[spine[k]].group]
    keep_ids = [n.id for n in graph.nodes if n.id not in removed]
    renum = {old: new for new, old in enumerate(keep_ids)}
    cid = len(keep_ids)
    nodes = [graph.nodes[old].but(id=renum[old]) for old in keep_ids]
    nodes.append(GNode(
        id=cid, kind="collapsed", label=label, count=len(removed), note=note,
        shape=graph.nodes[spine[first]].shape, dtype=graph.nodes[spine[first]].dtype,
        group=f"{groups[-1]} … {groups[0]}" if groups else "",
    ))
    edges: list[tuple[int, int]] = []
    for a, b in graph.edges:
        if a in removed and b in removed:
            continue
        if a in removed:  # the hidden run's output feeds the node below it
            edges.append((cid, renum[b]))
        elif b in removed:  # the node above the hidden run feeds into it
            edges.append((renum[a], cid))
        else:
            edges.append((renum[a], renum[b]))
    edges = list(dict.fromkeys(edges))
    message = tr("{repeats} identical blocks of {period} op(s) ({n} nodes) are drawn as one box",
                 repeats=hidden_blocks, period=period, n=len(removed))
    return _rebuilt(graph, nodes, edges, renum, message)


def group_modules(graph: Graph) -> Graph:
    """Fold each module's parameters into the op that uses them (``AddmmBackward0 · model.0``).

    A parameter leaf (and a ``TBackward0``-style op over parameters only) of
    module ``g`` that feeds exactly one op of the same module disappears into
    that op's box; the box lists the parameters and their gradients in its
    details.  Activations, constants and shared parameters stay visible.
    """
    ins = graph.inputs()
    users = graph.users()
    absorbed: dict[int, int] = {}  # node -> op that swallows it
    for node in graph.nodes:
        if node.kind != "op" or not node.group:
            continue
        stack = list(ins[node.id])
        while stack:
            v = stack.pop()
            cand = graph.nodes[v]
            if v in absorbed or cand.group != node.group or set(users[v]) - {node.id, *absorbed}:
                continue
            if cand.kind == "leaf" or (cand.kind == "op" and all(
                graph.nodes[i].group == node.group for i in ins[v]
            )):
                if cand.kind == "op" and any(graph.nodes[i].kind not in ("leaf", "op") for i in ins[v]):
                    continue
                absorbed[v] = node.id
                stack.extend(ins[v])
    # Keep only nodes whose inputs and users all end up in the same box.
    changed = True
    while changed:
        changed = False
        for v, owner in list(absorbed.items()):
            inputs_ok = all(absorbed.get(i) == owner for i in ins[v])
            users_ok = all(u == owner or absorbed.get(u) == owner for u in users[v])
            if not (inputs_ok and users_ok):
                del absorbed[v]
                changed = True
    if not absorbed:
        return graph
    params: dict[int, list[str]] = {}
    for v, owner in absorbed.items():
        n = graph.nodes[v]
        if n.kind == "leaf":
            text = tr("parameter {name} {shape}", name=n.label, shape=n.subtitle).rstrip()
            params.setdefault(owner, []).append(text + (f", .grad {n.grad}" if n.grad else ""))
    keep_ids = [n.id for n in graph.nodes if n.id not in absorbed]
    renum = {old: new for new, old in enumerate(keep_ids)}
    nodes = []
    for old in keep_ids:
        n = graph.nodes[old]
        if old in params:
            n = n.but(label=f"{n.label} · {n.group}", saved=(*n.saved, *sorted(params[old])))
        nodes.append(n.but(id=renum[old]))
    edges = [(renum[a], renum[b]) for a, b in graph.edges if a not in absorbed and b not in absorbed]
    return _rebuilt(graph, nodes, edges, renum, tr("module parameters folded into {n} op box(es)", n=len(params)))


def _rebuilt(graph: Graph, nodes: list[GNode], edges: list[tuple[int, int]],
             renum: dict[int, int], message: str) -> Graph:
    """``graph`` with new nodes and edges (ids renumbered by ``renum``) and one more note."""
    return replace(
        graph,
        nodes=nodes,
        edges=edges,
        roots=[renum[r] for r in graph.roots if r in renum],
        root_names=list(graph.root_names),
        collapsed=[*graph.collapsed, message],
        stale=list(graph.stale),
    )

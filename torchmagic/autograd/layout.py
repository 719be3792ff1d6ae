"""A small layered (Sugiyama-style) layout for DAGs, in pure Python.

Autograd graphs are narrow, deep DAGs, so the classic recipe is enough and
fast: (1) layers by longest path to a sink, so every edge points down and
inputs sit just above the op that uses them; (2) dummy nodes split edges that
span several layers; (3) barycentre sweeps reorder each layer to remove
crossings, keeping the best order seen; (4) x positions come from an exact
least-squares fit to the neighbours' positions under the constraint that
boxes in a layer do not overlap (isotonic regression, pool-adjacent-violators).
Nothing here knows about torch or SVG: it maps box sizes and edges to
coordinates, so it is tested on random graphs.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["Box", "Layout", "layout", "count_crossings", "overlaps"]

H_GAP = 18.0  # horizontal space between boxes
V_GAP = 28.0  # vertical space between layers
MARGIN = 8.0
DUMMY_W = 6.0
X_SWEEPS = 4  # down, up, down, up: enough for narrow autograd graphs (more barely moves a box)


@dataclass(frozen=True)
class Box:
    """A node's rectangle; ``x``/``y`` are the top-left corner."""

    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def bottom(self) -> float:
        return self.y + self.h


@dataclass
class Layout:
    boxes: list[Box]
    routes: list[list[tuple[float, float]]]  # one polyline per input edge, top to bottom
    width: float
    height: float
    layers: list[int] = field(default_factory=list)  # layer of each node (0 = top)
    crossings: int = 0


def _break_cycles(n: int, edges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Reverse back edges found by an iterative DFS (autograd graphs have none)."""
    succ: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges:
        succ[a].append(b)
    state = [0] * n  # 0 new, 1 on stack, 2 done
    back: set[tuple[int, int]] = set()
    for start in range(n):
        if state[start]:
            continue
        stack = [(start, 0)]
        state[start] = 1
        while stack:
            v, i = stack[-1]
            if i < len(succ[v]):
                stack[-1] = (v, i + 1)
                w = succ[v][i]
                if state[w] == 1:
                    back.add((v, w))
                elif state[w] == 0:
                    state[w] = 1
                    stack.append((w, 0))
            else:
                state[v] = 2
                stack.pop()
    if not back:
        return edges
    return [(b, a) if (a, b) in back else (a, b) for a, b in edges]


def _layers(n: int, edges: list[tuple[int, int]]) -> list[int]:
    """Layer index per node: longest path to a sink, counted from the top."""
    succ: list[list[int]] = [[] for _ in range(n)]
    outdeg = [0] * n
    pred: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges:
        succ[a].append(b)
        pred[b].append(a)
        outdeg[a] += 1
    height = [0] * n
    ready = [v for v in range(n) if outdeg[v] == 0]
    while ready:
        v = ready.pop()
        for u in pred[v]:
            if height[v] + 1 > height[u]:
                height[u] = height[v] + 1
            outdeg[u] -= 1
            if outdeg[u] == 0:
                ready.append(u)
    top = max(height, default=0)
    return [top - h for h in height]


def count_crossings(
    upper: list[int], lower_pos: dict[int, int], upper_pos: dict[int, int], succ: list[list[int]]
) -> int:
    """Edge crossings between two adjacent layers (inversion count)."""
    pairs = sorted((upper_pos[u], lower_pos[v]) for u in upper for v in succ[u])
    seq = [p[1] for p in pairs]
    # Count inversions with a Fenwick tree over lower positions.
    size = max(lower_pos.values(), default=0) + 2
    tree = [0] * (size + 1)
    inversions = 0
    for seen, value in enumerate(seq):
        i = value + 1
        le = 0
        j = i
        while j > 0:
            le += tree[j]
            j -= j & -j
        inversions += seen - le
        while i <= size:
            tree[i] += 1
            i += i & -i
    return inversions


def _total_crossings(order: list[list[int]], succ: list[list[int]]) -> int:
    total = 0
    for i in range(len(order) - 1):
        up = {v: k for k, v in enumerate(order[i])}
        low = {v: k for k, v in enumerate(order[i + 1])}
        total += count_crossings(order[i], low, up, succ)
    return total


def _isotonic(targets: list[float], weights: list[float]) -> list[float]:
    """Nondecreasing fit minimising the weighted squared error (pool adjacent violators)."""
    means: list[float] = []
    wsum: list[float] = []
    sizes: list[int] = []
    for t, w in zip(targets, weights):
        means.append(t)
        wsum.append(w)
        sizes.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            m2, w2, s2 = means.pop(), wsum.pop(), sizes.pop()
            w1 = wsum[-1]
            means[-1] = (means[-1] * w1 + m2 * w2) / (w1 + w2)
            wsum[-1] = w1 + w2
            sizes[-1] += s2
    out: list[float] = []
    for m, s in zip(means, sizes):
        out.extend([m] * s)
    return out


def _place(row: list[int], width: list[float], desired: list[float], weight: list[float]) -> list[float]:
    """Centres for ``row`` closest to ``desired`` with no two boxes overlapping."""
    if len(row) == 1:  # most layers of a deep graph: nothing to keep apart
        return desired
    offsets = [0.0]
    for a, b in itertools.pairwise(row):
        offsets.append(offsets[-1] + width[a] / 2 + H_GAP + width[b] / 2)
    fit = _isotonic([d - o for d, o in zip(desired, offsets)], weight)
    return [f + o for f, o in zip(fit, offsets)]


def _sweep(it: int, depth: int) -> Iterator[tuple[int, bool]]:
    """Layers visited by sweep number ``it``: downwards on even sweeps (by inputs), upwards on odd ones."""
    down = it % 2 == 0
    for i in range(1, depth) if down else range(depth - 2, -1, -1):
        yield i, down


def _mean(nbrs: list[int], values: list[float], default: float) -> float:
    """The mean of ``values`` over ``nbrs`` (``default`` when there are none): a barycentre."""
    return sum(values[u] for u in nbrs) / len(nbrs) if nbrs else default


def layout(
    sizes: list[tuple[float, float]],
    edges: list[tuple[int, int]],
    sweeps: int = 12,
) -> Layout:
    """Lay out nodes with ``sizes[i] = (w, h)``; ``edges`` are ``(upper, lower)`` pairs."""
    n = len(sizes)
    if n == 0:
        return Layout(boxes=[], routes=[], width=0.0, height=0.0)
    clean = [(a, b) for a, b in edges if a != b]
    dag = _break_cycles(n, clean)
    layer = _layers(n, dag)
    width = [s[0] for s in sizes]
    # Split long edges with dummies; chains[k] is the node path of input edge k.
    succ: list[list[int]] = [[] for _ in range(n)]
    pred: list[list[int]] = [[] for _ in range(n)]
    chains: list[list[int]] = []
    for a, b in dag:
        path = [a]
        for lay in range(layer[a] + 1, layer[b]):
            d = len(layer)
            layer.append(lay)
            width.append(DUMMY_W)
            succ.append([])
            pred.append([])
            path.append(d)
        path.append(b)
        for u, v in itertools.pairwise(path):
            succ[u].append(v)
            pred[v].append(u)
        chains.append(path)
    total = len(layer)
    depth = max(layer) + 1
    # Initial order: depth-first from the bottom layer upwards, so related nodes stay close.
    order: list[list[int]] = [[] for _ in range(depth)]
    seen = [False] * total
    starts = sorted(range(total), key=lambda v: -layer[v])
    for s in starts:
        if seen[s]:
            continue
        stack = [s]
        while stack:
            v = stack.pop()
            if seen[v]:
                continue
            seen[v] = True
            order[layer[v]].append(v)
            stack.extend(reversed(pred[v]))
            stack.extend(reversed(succ[v]))
    best = [row[:] for row in order]
    best_cross = _total_crossings(order, succ)
    pos = [0.0] * total
    for row in order:
        for k, v in enumerate(row):
            pos[v] = float(k)
    stale = 0
    for it in range(sweeps):
        if best_cross == 0:
            break
        for i, down in _sweep(it, depth):
            row = order[i]
            keyed = []
            for v in row:
                key = _mean((pred if down else succ)[v], pos, pos[v])
                keyed.append((key, pos[v], v))
            keyed.sort()
            order[i] = [v for _, _, v in keyed]
            for k, v in enumerate(order[i]):
                pos[v] = float(k)
        cross = _total_crossings(order, succ)
        if cross < best_cross:
            best_cross, best, stale = cross, [row[:] for row in order], 0
        else:
            stale += 1
            if stale >= 2:
                break
    order = best
    # x: start packed, then pull each node towards its neighbours (down and up sweeps).
    xs = [0.0] * total
    for row in order:
        x = 0.0
        for v in row:
            xs[v] = x + width[v] / 2
            x += width[v] + H_GAP
    weight = [1.0 if v < n else 2.0 for v in range(total)]
    for it in range(X_SWEEPS):
        moved = 0.0
        for i, down in _sweep(it, depth):
            row = order[i]
            desired = [_mean((pred if down else succ)[v], xs, xs[v]) for v in row]
            for v, x in zip(row, _place(row, width, desired, [weight[v] for v in row])):
                moved = max(moved, abs(xs[v] - x))
                xs[v] = x
        if moved < 0.5 and it % 2:  # settled after a down and an up sweep
            break
    # y: one band per layer, as tall as its tallest box.
    band = [0.0] * depth
    for v in range(n):
        band[layer[v]] = max(band[layer[v]], sizes[v][1])
    tops = []
    y = MARGIN
    for i in range(depth):
        tops.append(y)
        y += max(band[i], 1.0) + V_GAP
    height = y - V_GAP + MARGIN
    left = min(xs[v] - width[v] / 2 for v in range(total))
    shift = MARGIN - left
    boxes: list[Box] = []
    for v in range(n):
        w, h = sizes[v]
        top = tops[layer[v]] + (band[layer[v]] - h) / 2
        boxes.append(Box(xs[v] + shift - w / 2, top, w, h))
    right = max(xs[v] + shift + width[v] / 2 for v in range(total))
    routes: list[list[tuple[float, float]]] = []
    flipped = {k for k, (e, d) in enumerate(zip(clean, dag)) if e != d}
    for k, path in enumerate(chains):
        a, b = path[0], path[-1]
        pts = [(boxes[a].cx, boxes[a].bottom)]
        for d in path[1:-1]:  # vertical through each layer band, so no box is clipped
            top = tops[layer[d]]
            pts.append((xs[d] + shift, top))
            pts.append((xs[d] + shift, top + max(band[layer[d]], 1.0)))
        pts.append((boxes[b].cx, boxes[b].y))
        routes.append(pts[::-1] if k in flipped else pts)
    # Routes for self-loops (dropped above) are empty so indices match the input.
    if len(clean) != len(edges):
        it_routes = iter(routes)
        routes = [[] if a == b else next(it_routes) for a, b in edges]
    return Layout(
        boxes=boxes,
        routes=routes,
        width=right + MARGIN,
        height=height,
        layers=layer[:n],
        crossings=best_cross,
    )


def overlaps(a: Box, b: Box) -> bool:
    """True when two boxes share interior area."""
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


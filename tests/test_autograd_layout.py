"""The pure layered layout: no overlapping boxes, edges all point down, few crossings."""

from __future__ import annotations

import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from torchmagic.autograd.layout import _isotonic, count_crossings, layout, overlaps


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[tuple[float, float]], list[tuple[int, int]]]:
    """Random DAGs: edges only from lower to higher index (then shuffled labels)."""
    n = draw(st.integers(min_value=1, max_value=40))
    sizes = [
        (float(draw(st.integers(20, 160))), float(draw(st.sampled_from([22, 36, 50]))))
        for _ in range(n)
    ]
    edges: list[tuple[int, int]] = []
    if n > 1:
        pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=80))
        edges = [(a, b) if a < b else (b, a) for a, b in pairs if a != b]
    perm = list(range(n))
    random.Random(draw(st.integers(0, 10**6))).shuffle(perm)
    return [sizes[perm.index(i)] for i in range(n)], [(perm[a], perm[b]) for a, b in edges]


@settings(max_examples=150, deadline=None)
@given(dags())
def test_random_dags_have_no_overlaps_and_downward_edges(
    graph: tuple[list[tuple[float, float]], list[tuple[int, int]]]
) -> None:
    sizes, edges = graph
    lay = layout(sizes, edges)
    assert len(lay.boxes) == len(sizes)
    for (w, h), box in zip(sizes, lay.boxes):
        assert (box.w, box.h) == (w, h)
        assert box.x >= 0 and box.y >= 0
        assert box.x + box.w <= lay.width + 1e-6 and box.y + box.h <= lay.height + 1e-6
    for a, b in itertools.combinations(lay.boxes, 2):
        assert not overlaps(a, b)
    assert len(lay.routes) == len(edges)
    for (a, b), route in zip(edges, lay.routes):
        assert lay.layers[a] < lay.layers[b]  # every edge points down
        assert lay.boxes[a].bottom < lay.boxes[b].y
        ys = [y for _, y in route]
        assert ys == sorted(ys) and len(set(ys)) == len(ys)  # strictly downward polyline
        assert route[0] == (lay.boxes[a].cx, lay.boxes[a].bottom)
        assert route[-1] == (lay.boxes[b].cx, lay.boxes[b].y)


def test_layers_are_longest_paths_to_the_output() -> None:
    # 0 -> 1 -> 3, 2 -> 3: the input 2 sits right above its consumer, not at the top.
    lay = layout([(40.0, 20.0)] * 4, [(0, 1), (1, 3), (2, 3)])
    assert lay.layers == [0, 1, 1, 2]


def test_chain_is_straight_and_crossing_free() -> None:
    n = 50
    lay = layout([(60.0, 20.0)] * n, [(i, i + 1) for i in range(n - 1)])
    assert lay.crossings == 0
    assert len({round(b.cx, 3) for b in lay.boxes}) == 1


def test_barycentre_removes_avoidable_crossings() -> None:
    # Two independent diamonds whose initial order would cross.
    edges = [(0, 2), (1, 3), (0, 3), (1, 2), (4, 6), (5, 7)]
    lay = layout([(30.0, 20.0)] * 8, edges)
    assert lay.crossings <= 1


def _brute_crossings(edges: list[tuple[int, int]]) -> int:
    return sum(
        1
        for (a, b), (c, d) in itertools.combinations(edges, 2)
        if (a - c) * (b - d) < 0
    )


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), max_size=25))
def test_crossing_count_matches_brute_force(pairs: list[tuple[int, int]]) -> None:
    upper = sorted({a for a, _ in pairs})
    succ: list[list[int]] = [[] for _ in range(7)]
    for a, b in pairs:
        succ[a].append(100 + b)
    lower_pos = {100 + k: k for k in range(7)}
    upper_pos = {k: k for k in range(7)}
    assert count_crossings(upper, lower_pos, upper_pos, succ) == _brute_crossings(pairs)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-100, 100), min_size=1, max_size=30))
def test_isotonic_fit_is_monotone_and_optimal_for_sorted_input(values: list[float]) -> None:
    fit = _isotonic(values, [1.0] * len(values))
    assert all(a <= b + 1e-9 for a, b in itertools.pairwise(fit))
    assert abs(sum(fit) - sum(values)) < 1e-6 * max(1.0, sum(abs(v) for v in values))
    srt = sorted(values)
    assert _isotonic(srt, [1.0] * len(srt)) == srt


def test_cycles_and_self_loops_do_not_crash() -> None:
    lay = layout([(30.0, 20.0)] * 3, [(0, 1), (1, 2), (2, 0), (1, 1)])
    assert len(lay.routes) == 4 and lay.routes[3] == []
    for a, b in itertools.combinations(lay.boxes, 2):
        assert not overlaps(a, b)


def test_empty_graph() -> None:
    lay = layout([], [])
    assert lay.boxes == [] and lay.width == 0

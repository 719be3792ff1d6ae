"""Broadcast alignment agrees with torch and explains every dim."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from torchmagic.core.broadcast import ADDED, CLASH, KEEP, STRETCH, align, broadcast_shape, needs_diagram

shapes = st.lists(st.integers(min_value=1, max_value=4), min_size=0, max_size=4).map(tuple)


def test_issue_example():
    al = align([("x", (1, 2)), ("y", (3, 1))])
    assert al.ok and al.result == (3, 2)
    assert al.operands[0].marks == (STRETCH, KEEP)
    assert al.operands[1].marks == (KEEP, STRETCH)


def test_dims_added_on_the_left_and_scalars():
    al = align([("m", (2, 3)), ("v", (3,)), ("s", ())])
    assert al.result == (2, 3)
    assert al.operands[1].padded == (None, 3)
    assert al.operands[1].marks == (ADDED, KEEP)
    assert al.operands[2].marks == (ADDED, ADDED)


def test_clash_names_dims():
    al = align([("a", (2, 3)), ("b", (4,))])
    assert not al.ok and al.clashes == (1,)
    assert al.operands[0].marks[1] == CLASH and al.operands[1].marks[1] == CLASH
    assert al.clash_text() == "dim 1 (-1): 3 ≠ 4"


def test_needs_diagram():
    assert needs_diagram([(2, 3), ()])
    assert not needs_diagram([(2, 3), (2, 3)])
    assert not needs_diagram([(2, 3)])


@settings(max_examples=200, deadline=None)
@given(st.lists(shapes, min_size=1, max_size=3))
def test_matches_torch(shape_list):
    try:
        expected = tuple(torch.broadcast_shapes(*shape_list))
    except RuntimeError:
        expected = None
    assert broadcast_shape(*shape_list) == expected
    al = align([(f"t{i}", s) for i, s in enumerate(shape_list)])
    if expected is not None:
        for op in al.operands:  # every mark is consistent with the padded size
            for size, mark, out in zip(op.padded, op.marks, expected):
                assert (mark == ADDED) == (size is None)
                assert mark != STRETCH or (size == 1 and out != 1)
                assert mark != KEEP or size == out
    else:
        assert al.clashes

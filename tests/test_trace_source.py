"""trace.source: the sub-expression of each op, from co_positions (fast path) or executing."""

from __future__ import annotations

import sys

import pytest

from tests.tracing import trace
from torchmagic.trace import source

CELL = (
    "x = torch.ones(3, 4)\n"
    "x[0] = torch.zeros(4)\n"
    "x[:, 1] += 2\n"
    "y = (x + 1) @ x.T\n"
    "z = [t * 2 for t in (x, y)]\n"
    "m = torch.nn.functional.softmax(y, dim=-1).argmax(1)\n"
)


def test_fast_path_finds_the_same_nodes_as_executing(ip, capture, monkeypatch):
    """Every site the cell records: the co_positions node is executing's node."""
    seen: list[tuple[str, str, str]] = []
    real = source.site_of

    def both(frame, op, nargs, direct):
        fast, slow = source._node_at(frame), source._executing_node(frame)
        if sys.version_info >= (3, 11):
            assert fast is not None, op
        if fast is not None and slow is not None:
            seen.append((op, source._text(fast[1], fast[0]), source._text(slow[1], slow[0])))
        return real(frame, op, nargs, direct)

    monkeypatch.setattr("torchmagic.trace.recorder.site_of", both)
    trace(ip, capture, CELL)
    assert len(seen) >= 8
    for op, fast, slow in seen:
        assert fast == slow, op


def test_expressions_and_targets(ip, capture):
    rep = trace(ip, capture, CELL)
    by_op = {}
    for r in rep.rows:
        by_op.setdefault(r.op, r)  # the first row of each op
    assert [r.expression for r in rep.rows if r.op == "__setitem__"] == ["x[0]", "x[:, 1]"]
    assert by_op["matmul"].expression == "(x + 1) @ x.T"
    assert by_op["add"].expression == "x + 1"
    assert by_op["softmax"].expression == "torch.nn.functional.softmax(y, dim=-1)"
    assert by_op["matmul"].variants[0].outputs[0].label == "y"


@pytest.mark.skipif(sys.version_info < (3, 11), reason="co_positions is Python 3.11+")
def test_several_statements_on_one_line(ip, capture):
    """``a = -d; a -= 1`` names each op (executing gives up on such lines)."""
    rep = trace(ip, capture, "d = torch.ones(2)\na = -d @ d; a -= 1")
    exprs = {r.op: r.expression for r in rep.rows}
    assert exprs["neg"] == "-d"
    assert exprs["matmul"] == "-d @ d"
    assert exprs["sub_"] == "a -= 1"


def test_multi_line_chain_falls_back_to_executing(ip, capture):
    rep = trace(ip, capture, "c = torch.ones(4)\nd = (c\n  .view(-1, 1)\n  .T)")
    view, = [r for r in rep.rows if r.op == "view"]
    assert view.expression.replace(" ", "") == "c.view(-1,1)"

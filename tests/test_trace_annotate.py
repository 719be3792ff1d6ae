"""trace.annotate: the cell's lines with the shapes they produced as comments."""

from __future__ import annotations

from torchmagic.errors.report import Operand
from torchmagic.trace.annotate import annotate
from torchmagic.trace.report import OpRow, Variant


def _t(shape: tuple[int, ...], dtype: str = "float32", device: str = "cpu") -> Operand:
    return Operand("t", "tensor", shape, dtype, device)


def _row(i: int, line: int, ins: tuple[Operand, ...], outs: list[tuple[Operand, ...]], count: int = 1,
         via: str = "") -> OpRow:
    return OpRow(i, line, "", "", "op", via, count, [Variant(ins, o) for o in outs])


LINES = ["# %%tensorinfo", "x = torch.ones(2, 3)", "y = (x + 1).sum(0)", "for i in r:", "    z = f(y)"]


def test_statement_level_rows_win_and_dtypes_show_when_they_change():
    rows = [
        _row(0, 2, (), [(_t((2, 3)),)]),
        _row(1, 3, (_t((2, 3)),), [(_t((2, 3)),)]),  # x + 1: not the statement's op
        _row(2, 3, (_t((2, 3)),), [(_t((3,), "float64"),)]),
    ]
    out = annotate(LINES, rows, tops={0, 2})
    assert [(a.line, a.comment) for a in out[:2]] == [(2, "(2, 3) float32"), (3, "(3,) float64")]


def test_loops_show_every_shape_and_a_count_library_calls_their_last_op():
    rows = [
        _row(0, 5, (_t((2,)),), [(_t((4,)),)], via="f(y)"),
        _row(1, 5, (_t((4,)),), [(_t((1,)),), (_t((2,)),)], count=6, via="f(y)"),
    ]
    out = annotate(LINES, rows, tops=set())
    assert out[3].comment == "(1,) | (2,)  ×6"
    assert out[2].comment == "" and out[2].text == "for i in r:"

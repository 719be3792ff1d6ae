"""trace.fold: same-structure sibling calls fold into one ×N block, each instance still listed."""

from __future__ import annotations

from torchmagic.errors.report import Operand
from torchmagic.trace.fold import fold, structure_keys
from torchmagic.trace.report import ModuleCall, OpRow, Variant


def _row(i: int, op: str) -> OpRow:
    x = Operand("x", "tensor", (2,), "float32", "cpu")
    return OpRow(i, 2, "y = m(x)", "m(x)", op, "m(x)", 1, [Variant((x,), (x,))])


def _call(i: int, path: str, typ: str, parent: int, items: list, inputs: str = "(2,)") -> ModuleCall:
    return ModuleCall(i, path, typ, parent, 2, 1, inputs, "(2,)", 10, 0.001, items)


def test_consecutive_same_structure_siblings_fold():
    rows = [_row(0, "linear"), _row(1, "relu")]
    mods = [
        _call(0, "m", "Seq", -1, [("module", 1), ("module", 2), ("module", 3), ("op", 1)]),
        _call(1, "m.0", "Layer", 0, [("op", 0)]),
        _call(2, "m.1", "Layer", 0, [("op", 0)]),
        _call(3, "m.2", "Layer", 0, [("op", 0)], inputs="(3,)"),
    ]
    fold(mods, rows, [("module", 0)])
    assert (mods[1].repeat, mods[1].instances) == (3, ("m.0", "m.1", "m.2"))
    assert [m.folded for m in mods] == [False, False, True, True]
    assert mods[1].differences[0] == "m.0: (2,) → (2,), 10 parameters, 1.00 ms"
    assert mods[1].differences[2].endswith("shapes differ from 0")


def test_different_types_ops_or_interruptions_do_not_fold():
    rows = [_row(0, "linear"), _row(1, "tanh")]
    mods = [
        _call(0, "a", "Layer", -1, [("op", 0)]),
        _call(1, "b", "Layer", -1, [("op", 1)]),  # same type, other op
        _call(2, "c", "Other", -1, [("op", 0)]),
        _call(3, "d", "Other", -1, [("op", 0)]),
    ]
    keys = structure_keys(mods, rows)
    assert keys[0] != keys[1] and keys[2] == keys[3]
    fold(mods, rows, [("module", 0), ("module", 1), ("module", 2), ("op", 1), ("module", 3)])
    assert all(m.repeat == 1 and not m.folded for m in mods)  # c and d are not next to each other


def test_folding_happens_at_every_depth():
    rows = [_row(0, "linear")]
    mods = [
        _call(0, "enc", "Enc", -1, [("module", 1), ("module", 3)]),
        _call(1, "enc.l0", "Layer", 0, [("module", 2)]),
        _call(2, "enc.l0.fc", "Linear", 1, [("op", 0)]),
        _call(3, "enc.l1", "Layer", 0, [("module", 4)]),
        _call(4, "enc.l1.fc", "Linear", 3, [("op", 0)]),
    ]
    fold(mods, rows, [("module", 0)])
    assert mods[1].repeat == 2 and mods[3].folded and not mods[2].folded

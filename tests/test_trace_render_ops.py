"""trace.render_ops: one op row, drawn the same in the flat table and in the module tree."""

from __future__ import annotations

from torchmagic.errors.report import Operand
from torchmagic.trace.render_ops import op_lines, op_trs, relative
from torchmagic.trace.report import OpRow, Variant


def test_relative_names_drop_the_shared_module_path():
    assert relative("net.conv1.weight", "net.conv1") == "weight"
    assert relative("enc.layers.0.norm1 →", "enc.layers.0.linear1") == "norm1 →"
    assert relative("net.conv1 →", "net") == "conv1 →"
    assert relative("x", "net.fc") == "x" and relative("self.conv1(x)", "net") == "self.conv1(x)"
    assert relative("layers.0.weight", "") == "layers.0.weight"


def _row(**kw: object) -> OpRow:
    x = Operand("x", "tensor", (8, 2048), "float32", "cpu", True)
    w = Operand("net.fc.weight", "tensor", (10, 2048), "float32", "cpu", True, True)
    out = Operand("out", "tensor", (8, 10), "float32", "cpu", True)
    base: dict[str, object] = {"index": 0, "line": 2, "source": "out = net(x)", "expression": "net(x)",
                               "op": "linear", "via": "net(x)", "count": 3,
                               "variants": [Variant((x, w), (out,), 3)], "module": 1}
    base.update(kw)
    return OpRow(**base)  # type: ignore[arg-type]


def test_a_row_inside_a_module_names_its_parameters_only():
    (line,) = op_lines([_row()], "float32", "", "net.fc")
    assert line.plain == "linear  x (8, 2048), weight → out (8, 10)  ×3"


def test_nan_notes_and_html_cells():
    (line,) = op_lines([_row(nan_origin=True, count=1, variants=[Variant((), ())])], "float32", "", "")
    assert "NaN/Inf start here" in line.plain
    (line,) = op_lines([_row(nonfinite=2)], "float32", "", "")
    assert "NaN/Inf ×2" in line.plain
    trs = op_trs(_row(), "<code>fc</code>", "net.fc")
    assert trs[0].startswith("<tr><td><code>fc</code></td>") and "<code>weight</code>" in trs[0]

"""errors.report: operands and explanations as plain data."""

from __future__ import annotations

import json

from torchmagic.errors.report import ErrorReport, Explanation, Operand


def test_operand_short_forms():
    assert Operand("x", "tensor", (2, 3), "float32", "cpu").short() == "(2, 3) float32"
    assert Operand("x", "tensor", (2,), "int64", "cuda:0").short() == "(2,) int64 cuda:0"
    assert Operand("2", "scalar", (), "int").short() == "scalar int"
    assert Operand("f", "value").short() == "value"


def test_error_report_is_plain_data():
    err = Explanation("view", "view: x (2, 3) has 6 elements, but (4,) holds 4", "RuntimeError", "shape '[4]' ...",
                      line=3, source="x.view(4)", operands=(Operand("x", "tensor", (2, 3), "float32", "cpu", True),))
    data = ErrorReport(err).to_dict()
    assert json.loads(json.dumps(data))["explanation"]["operands"][0]["shape"] == [2, 3]
    assert "torchmagic explains" in ErrorReport(err).to_text()

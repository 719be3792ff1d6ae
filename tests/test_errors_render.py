"""errors.render: an explanation and a broadcasting diagram, in the terminal and in HTML."""

from __future__ import annotations

import io

from rich.console import Console

from torchmagic.core.broadcast import align
from torchmagic.errors.render import alignment_html, alignment_lines, explanation_html, explanation_lines
from torchmagic.errors.report import ErrorReport, Explanation, Operand


def _t(label: str, shape: tuple[int, ...]) -> Operand:
    return Operand(label, "tensor", shape, "float32", "cpu", named=label.isidentifier())


def _term(renderable: object, width: int = 100) -> str:
    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None, force_terminal=False).print(renderable)
    return buf.getvalue()


def test_error_report_rendering():
    err = Explanation("matmul", "matmul: a is (2, 3), b is (5, 4): inner dims 3 ≠ 5", "RuntimeError",
                      "mat1 and mat2 shapes cannot be multiplied (2x3 and 5x4)", 4, "c = a @ b", "a @ b",
                      "matmul", (_t("a", (2, 3)), _t("b", (5, 4))), hint="Did you mean `a @ b.T`?")
    out = _term(ErrorReport(err))
    assert out.splitlines()[0] == "torchmagic explains"
    assert "inner dims 3 ≠ 5" in out and "line 4: c = a @ b" in out and "hint: Did you mean" in out
    assert "  a: (2, 3) float32" in out
    assert "RuntimeError: mat1 and mat2" in out
    html = ErrorReport(err).to_html()
    assert "tm-error" in html and "c = a @ b" in html and "<li><code>a</code>: (2, 3) float32</li>" in html


def test_alignment_lines_mark_stretched_added_and_clashing_dims():
    ok = [line.plain for line in alignment_lines(align([("x", (2, 3)), ("col", (2, 1)), ("v", (3,))]))]
    assert ok[0].split() == ["dim", "-2", "-1"]
    assert ok[1].split() == ["x", "(2,", "3)", "2", "3"]
    assert ok[2].split() == ["col", "(2,", "1)", "2", "1→3"]
    assert ok[3].split() == ["v", "(3,)", "·→2", "3"]
    assert ok[4].split() == ["result", "(2,", "3)", "2", "3"]
    bad = [line.plain for line in alignment_lines(align([("a", (2, 3)), ("b", (4,))]))]
    assert "3✗" in bad[1] and "4✗" in bad[2] and bad[3].split()[:2] == ["result", "error"]


def test_html_diagram_is_a_table_with_the_legend():
    html = alignment_html(align([("a", (2, 3)), ("b", (4,))]))
    assert html.startswith('<table class="tm-table tm-broadcast">')
    assert html.count("<tr>") == 4 and 'class="tm-error"' in html and "sizes clash" in html


def test_explanation_without_line_or_operands():
    err = Explanation("hint", "`.shape` is an attribute, not a method", "TypeError", "'torch.Size' object is not callable")
    lines = [line.plain for line in explanation_lines(err)]
    assert lines == ["`.shape` is an attribute, not a method", "TypeError: 'torch.Size' object is not callable"]
    assert "<ul>" not in explanation_html(err)

"""Renderers: terminal (rich) structure, HTML structure, escaping of user text, annotated source."""

from __future__ import annotations

import io

from rich.console import Console

from torchmagic.core.broadcast import align
from torchmagic.errors.report import ErrorReport, Explanation, Operand
from torchmagic.trace.render import annotated_text
from torchmagic.trace.report import AnnotatedLine, OpRow, TraceReport, Variant

PAYLOADS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "[bold]x[/bold]"]


def _t(label, shape, dtype="float32", device="cpu"):
    return Operand(label, "tensor", shape, dtype, device, named=label.isidentifier())


def _report(label="x", source="y = x + b", error=None):
    bc = align([(label, (2, 3)), ("b", (3,))])
    var = Variant((_t(label, (2, 3)), _t("b", (3,))), (_t("y", (2, 3)),), 3, "new", ("int64 + float32 → float32",), bc)
    view = Variant((_t("y", (2, 3)),), (_t("z", (6,)),), 1, "view", ("-1 → 6",))
    rows = [
        OpRow(0, 2, source, f"{label} + b", "add", "", 3, [var], 0, [f"{label} was saved for backward"],
              [("aten.add.Tensor", 3)]),
        OpRow(1, 3, "z = y.view(-1)", "y.view(-1)", "view", "", 1, [view], 2),
    ]
    return TraceReport(
        rows=rows, total_ops=4, distinct_ops=2, dropped_ops=0, seconds=0.0012, deep=True,
        annotated=[AnnotatedLine(2, source, "(2, 3)"), AnnotatedLine(3, "z = y.view(-1)", "(6,)")],
        error=error, max_rows=200,
    )


def _term(renderable, width=100):
    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None, force_terminal=False).print(renderable)
    return buf.getvalue()


def test_rich_layout_groups_ops_by_line():
    out = _term(_report())
    lines = out.splitlines()
    assert lines[0].startswith("%%tensorinfo 4 ops (2 distinct) in 2 rows · 1.2 ms")
    head = next(i for i, ln in enumerate(lines) if ln.strip().startswith("2 │ y = x + b"))
    assert "add" in lines[head + 1] and "x (2, 3)" in lines[head + 1] and "×3" in lines[head + 1]
    assert "aten.add.Tensor ×3" in out
    assert "x was saved for backward" in out
    assert "1→n: size 1 stretched" in out  # the diagram legend
    assert "view" in out and "-1 → 6" in out and "… 2 more with other shapes" in out
    assert "int64 + float32 → float32" in out


def test_rich_source_view():
    rep = _report()
    rep.view = "source"
    out = _term(rep)
    assert "y = x + b       # (2, 3)" in out
    assert "z = y.view(-1)  # (6,)" in out
    assert "add" not in out.replace("y = x + b", "")  # no table


def test_text_plain_is_rich_without_colour():
    text = _report().to_text()
    assert "\x1b[" not in text and "%%tensorinfo" in text


def test_html_structure():
    html = _report().to_html()
    assert 'class="tm tm-trace"' in html and 'class="tm-table tm-trace"' in html
    assert html.count("<tr>") >= 3
    assert "tm-broadcast" in html and "annotated source" in html
    assert "aten.add.Tensor ×3" in html
    bundle = _report()._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}


def test_user_text_escaped_everywhere():
    for payload in PAYLOADS:
        err = Explanation("broadcast", f"{payload} + b: clash", "RuntimeError", f"msg {payload}", 2,
                          f"y = {payload}", payload, "add", (_t(payload, (2, 3)),), (payload,),
                          align([(payload, (2, 3)), ("b", (4,))]), f"hint {payload}")
        rep = _report(label=payload, source=f"y = {payload} + b", error=err)
        html = rep.to_html() + ErrorReport(err).to_html()
        assert "<script>" not in html and "<img" not in html
        if payload.startswith("<"):
            assert "&lt;script&gt;" in html or "&lt;img" in html
        text = rep.to_text() + ErrorReport(err).to_text()
        assert payload in " ".join(text.split()) or payload in text  # printed literally, never as markup
        if payload.startswith("["):
            assert text.count("[bold]x[/bold]") >= 3


def test_annotated_text_aligns_comments():
    text = annotated_text([AnnotatedLine(2, "x = 1", "(2,)"), AnnotatedLine(3, "for i in r:", ""),
                           AnnotatedLine(4, "    yy = x * 2", "(2,)  ×3")])
    lines = text.splitlines()
    assert lines[0] == "x = 1           # (2,)"
    assert lines[1] == "for i in r:"
    assert lines[2] == "    yy = x * 2  # (2,)  ×3"


def test_report_to_dict_is_plain():
    import json

    data = _report().to_dict()
    json.dumps(data)
    assert data["rows"][0]["variants"][0]["broadcast"]["result"] == [2, 3]


def test_traced_cell_with_payload_names(ip, capture):
    ip.run_cell("import torch\nd = {'<script>alert(1)</script>': torch.ones(2), '[bold]k': torch.ones(2)}")
    with capture() as cap:
        res = ip.run_cell("%%tensorinfo -o rep\ny = d['<script>alert(1)</script>'] + d['[bold]k']")
    assert res.success
    html = ip.user_ns["rep"].to_html()
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "[bold]k" in cap.stdout

"""HTML and rich views of autograd reports: content, escaping, plain text."""

from __future__ import annotations

import re
from typing import Any

from torchmagic.autograd.render import leaf_rows, to_html
from torchmagic.autograd.report import AutogradReport

EVIL_CELL = (
    "d = {'<script>alert(1)</script>': torch.ones(2, requires_grad=True),\n"
    "     '[bold]x[/bold]': torch.ones(2, requires_grad=True)}\n"
    "k1, k2 = list(d)\n"
    "loss = (d[k1] * d[k2]).sum(); s = '\"><img src=x onerror=alert(1)>'; loss.backward()\n"
)


def _report(ip: Any) -> AutogradReport:
    ip.run_cell("import torch")
    res = ip.run_cell("%%autograd -o r\n" + EVIL_CELL)
    assert res.error_in_exec is None
    return ip.user_ns["r"]


def test_html_escapes_names_and_source(ip: Any) -> None:
    r = _report(ip)
    html = r.to_html()
    assert "<script>alert" not in html
    assert "<img" not in html
    assert "&lt;script&gt;" in html and "&quot;&gt;&lt;img" in html
    assert "<svg" in html and "<title>" in html
    bundle = r._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}


def test_rich_prints_markup_literally(ip: Any) -> None:
    r = _report(ip)
    text = r.to_text()
    assert "[bold]x[/bold]" in text  # not swallowed as rich markup
    assert "<script>alert(1)</script>" in text
    assert "onerror=alert(1)" in text  # the source line, verbatim


def test_html_sections(ip: Any) -> None:
    ip.run_cell("import torch\nw = torch.tensor([1., 2.], requires_grad=True)")
    ip.run_cell("%%autograd -o r\nloss = (w * w).sum()\nloss.backward()")
    ip.run_cell("%%autograd -o r\nloss = (w * w).sum()\nloss.backward()")
    html = ip.user_ns["r"].to_html()
    assert "⚠" in html and "w.grad accumulated" in html and "zero_grad()" in html
    assert "Backward graph" in html and "backward() calls" in html
    assert re.search(r"\.grad before.*this call added.*\.grad after", html)
    assert "[2, 4]" in html and "[4, 8]" in html


def test_nothing_report_renders() -> None:
    r = AutogradReport(title="%%autograd", nothing="Nothing to show: <b>")
    assert "Nothing to show: &lt;b&gt;" in to_html(r)
    assert "Nothing to show: <b>" in r.to_text()
    assert r.svg == "" and r.to_dot().startswith("digraph")


def test_many_leaves_are_one_row_per_module_with_problems_first() -> None:
    from torchmagic.autograd.report import BackwardCall, LeafGrad
    from torchmagic.autograd.values import NONE, Values

    def grad(norm: float, inf: int = 0) -> Values:
        return Values(f"shape (4,), norm {norm}", shape=(4,), norm=norm, nonzero=True, inf=inf, sized=True)

    leaves = tuple(
        LeafGrad(f"m{i // 10}.p{i}", (4,), "float32", NONE, grad(3.0, inf=int(i == 25)), grad(3.0, inf=int(i == 25)),
                 accumulated=(i == 41), group=f"m{i // 10}")
        for i in range(60)
    )
    call = BackwardCall(1, "backward", "loss", 3, "loss.backward()", leaves=leaves)
    t = leaf_rows(call)
    assert t.headers[0] == "module" and len(t.rows) == 6
    assert t.caption == "60 leaves, one row per module: its parameters (tensors), norms of their .grad; .grad was None before this call"
    assert [r[0] for r in t.rows[:2]] == ["m2", "m4"] and t.statuses[:2] == ["non-finite", "accumulated"]
    m0 = next(r for r in t.rows if r[0] == "m0")
    assert m0[1:] == ["40 (10)", "9.49", "9.49"]  # sqrt(10 * 3²); no "before" column: all None
    text = AutogradReport(title="%%autograd", calls=[call], calls_total=1).to_text()
    assert "⚠ non-finite" in text and "⚠ accumulated" in text and "m5" in text and "m0.p3" not in text
    few = BackwardCall(1, "backward", "loss", 3, "loss.backward()", leaves=leaves[:3])
    t = leaf_rows(few)
    assert t.headers == ["leaf", "shape", "this call added", ".grad after"]
    assert t.rows[0] == ["m0.p0", "(4,) float32", "norm 3", "norm 3"]


def test_columns_fit_the_terminal_and_keep_the_last_column_whole() -> None:
    """The untracked table's header and rows stay columns at 80 cells (the why column is last)."""
    from rich.cells import cell_len

    from torchmagic.autograd.render import _columns

    why = "written through .data: autograd does not see the change"
    lines = _columns(["line", "code", "from", "result", "why"],
                     [["4", "w2.data.mul_(2) + some_long_expression(x, y, z)", "w2", "", why]], width=60)
    texts = ["".join(str(part) if isinstance(part, str) else part[0] for part in ln.parts) for ln in lines]
    head, row = texts
    assert row.index(why) == head.index("why")  # the last column starts under its header
    assert why in row  # never cut
    assert cell_len(row) - cell_len(why) <= 80 - 24  # the columns before it leave it room
    assert "…" in row  # the long code cell was cut to make room

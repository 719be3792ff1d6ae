"""HTML and rich views of autograd reports: content, escaping, plain text."""

from __future__ import annotations

import re
from typing import Any

from torchmagic.autograd.graph import GNode, Graph
from torchmagic.autograd.render import graph_tree, to_html
from torchmagic.autograd.report import AutogradReport
from torchmagic.core.report import rich_to_text

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
    assert re.search(r"\.grad before.*\.grad after", html)
    assert "[2, 4]" in html and "[4, 8]" in html


def test_tree_shares_nodes_and_caps_lines() -> None:
    nodes = [GNode(id=0, kind="op", label="AddBackward0", names=("y",)),
             GNode(id=1, kind="op", label="ExpBackward0"),
             GNode(id=2, kind="leaf", label="x", shape=(2,), dtype="float32", grad="[1, 2]")]
    g = Graph(nodes=nodes, edges=[(1, 0), (1, 0), (2, 1)], roots=[0])
    text = rich_to_text(graph_tree(g))
    assert text.count("ExpBackward0") == 2 and "(shown above)" in text
    assert ".grad=[1, 2]" in text
    chain = [GNode(id=i, kind="op", label=f"Op{i}") for i in range(500)]
    big = Graph(nodes=chain, edges=[(i + 1, i) for i in range(499)], roots=[0])
    capped = rich_to_text(graph_tree(big, max_lines=50))
    assert "more nodes not listed" in capped and "Op49" in capped and "Op60" not in capped


def test_nothing_report_renders() -> None:
    r = AutogradReport(title="%%autograd", nothing="Nothing to show: <b>")
    assert "Nothing to show: &lt;b&gt;" in to_html(r)
    assert "Nothing to show: <b>" in r.to_text()
    assert r.svg == "" and r.to_dot().startswith("digraph")


def test_long_leaf_tables_are_capped_with_accumulated_first() -> None:
    from torchmagic.autograd.report import BackwardCall, LeafGrad
    from torchmagic.autograd.values import Values

    v = Values("[1]")
    leaves = tuple(
        LeafGrad(f"p{i}", (1,), "float32", v, v, "[0]", accumulated=(i in (40, 50)))
        for i in range(60)
    )
    call = BackwardCall(1, "backward", "loss", 3, "loss.backward()", leaves=leaves)
    r = AutogradReport(title="%%autograd", calls=[call], calls_total=1)
    text = r.to_text()
    assert "… and 36 more leaves (none accumulated)" in " ".join(text.split())
    assert "p40" in text and "p50" in text and "p0" in text and "p59" not in text
    html = to_html(r)
    assert html.count("<code>p") == 24 and "36 more leaves" in html

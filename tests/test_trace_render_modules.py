"""trace.render_modules: the module summary and tree, in the terminal and in HTML (no scripts, escaped)."""

from __future__ import annotations

from tests.models import CNN, TRANSFORMER
from tests.tracing import trace


def test_summary_first_then_tree_in_the_terminal(ip, capture):
    ip.run_cell(CNN)
    text = trace(ip, capture, "out = net(batch)").to_text()
    lines = text.splitlines()
    assert lines[1].split() == ["module", "type", "params", "time", "in", "→", "out"]
    assert lines[2].split()[:3] == ["net", "Net", "25,578"] and lines[2].endswith("(8, 3, 32, 32) → (8, 10)")
    assert lines[3].split()[:3] == ["conv1", "Conv2d", "448"]
    start = next(i for i, ln in enumerate(lines) if "│ out = net(batch)" in ln)
    tree = lines[start + 1:]
    assert tree[0].split()[:2] == ["net", "Net"]
    assert tree[1].split()[:3] == ["conv1", "Conv2d", "conv2d"]  # a one-op call is one line
    assert "weight, bias →" in tree[1]  # the module's own parameters by name only


def test_html_tree_is_details_without_scripts(ip, capture):
    ip.run_cell(TRANSFORMER)
    html = trace(ip, capture, "out = enc(src)").to_html()
    assert html.index('class="tm-table tm-modules"') < html.index('class="tm-table tm-trace"')  # summary first
    assert '<details class="tm-module" open><summary><code>enc</code>' in html
    assert "<code>layers.0 … layers.1 ×2</code>" in html and "each of the 2 instances" in html
    assert "<script" not in html and "onclick" not in html
    assert len(html) < 40_000


def test_user_named_modules_are_escaped(ip, capture):
    ip.run_cell("import torch\nm = torch.nn.Sequential()\nm.add_module('<b>x</b>', torch.nn.Linear(2, 2))")
    rep = trace(ip, capture, "y = m(torch.ones(1, 2))")
    html = rep.to_html()
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert "<b>x</b>  Linear" in rep.to_text()  # literal text in the terminal, never markup

"""The autograd SVG as Chromium draws it: text fits its box, no boxes overlap, titles present."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

CELL = """torch.manual_seed(0)
model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
x = torch.randn(8, 3)
a = torch.randn(3, requires_grad=True); b = torch.randn(3, requires_grad=True)
h1 = a * b; h2 = b.exp() + a
loss = ((model(x) - 1) ** 2).mean() + (h1 + h2).sin().sum() + h1.max()
loss.backward()
"""

GEOMETRY = """() => [...document.querySelectorAll('svg g')].filter(g => g.querySelector('rect')).map(g => {
  const r = g.querySelector('rect').getBoundingClientRect();
  return {rect: [r.left, r.top, r.right, r.bottom],
          texts: [...g.querySelectorAll('text')].map(t => { const b = t.getBoundingClientRect();
                   return [b.left, b.top, b.right, b.bottom, t.textContent]; }),
          title: (g.querySelector('title') || {}).textContent || ''};
})"""


def test_svg_geometry_in_chromium(ip: Any, tmp_path: Path, open_page: Any) -> None:
    ip.run_cell("import torch\nfrom torch import nn")
    res = ip.run_cell("%%autograd -o r\n" + CELL)
    assert res.error_in_exec is None
    page_file = tmp_path / "autograd.html"
    page_file.write_text(f"<html><body>{ip.user_ns['r'].to_html()}</body></html>", encoding="utf-8")
    page = open_page(page_file)  # the shared offline Chromium (fails instead of skipping under CI)
    nodes = page.evaluate(GEOMETRY)
    scripts = page.evaluate("() => document.querySelectorAll('script').length")
    assert scripts == 0
    assert len(nodes) > 15
    for node in nodes:
        left, top, right, bottom = node["rect"]
        assert right > left and bottom > top
        for tl, tt, tr, tb, text in node["texts"]:  # the label fits inside its box
            assert tl >= left - 0.5 and tr <= right + 0.5, (text, node["rect"], (tl, tr))
            assert tt >= top - 0.5 and tb <= bottom + 0.5, text
        assert node["title"]  # hover details
    rects = [n["rect"] for n in nodes]
    for i, a in enumerate(rects):
        for b in rects[i + 1:]:
            overlap = a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
            assert not overlap, (a, b)


TEXT_SCALE = """() => [...document.querySelectorAll('svg[aria-label="autograd graph"]')].map(svg => {
  const box = svg.getBoundingClientRect();
  const scale = box.width / svg.viewBox.baseVal.width;
  return {scale, width: box.width,
          sizes: [...svg.querySelectorAll('text')].map(t => parseFloat(getComputedStyle(t).fontSize) * scale)};
})"""
# JupyterLab's rendered-HTML rule that shrinks wide images and SVGs to the output's width
NOTEBOOK_CSS = "<style>.out svg, .out img { max-width: 100%; height: auto; }</style>"


@pytest.mark.parametrize("layers,d_model", [(2, 64), (12, 256)])
def test_folded_transformer_text_stays_11px_at_notebook_width(
    ip: Any, tmp_path: Path, open_page: Any, layers: int, d_model: int
) -> None:
    ip.run_cell("import torch\nfrom torch import nn")
    ip.run_cell(
        f"torch.manual_seed(0)\nenc_b = nn.TransformerEncoder(nn.TransformerEncoderLayer(d_model={d_model}, nhead=4, "
        f"dim_feedforward={2 * d_model}, batch_first=True), num_layers={layers})\nsrc_b = torch.randn(2, 6, {d_model})"
    )
    res = ip.run_cell("%%autograd -o rb\nloss_b = enc_b(src_b).pow(2).mean()\nloss_b.backward()")
    assert res.error_in_exec is None
    html = ip.user_ns["rb"].to_html()
    assert len(html.encode()) < 300_000
    page_file = tmp_path / "folded.html"
    page_file.write_text(f"<html><head>{NOTEBOOK_CSS}</head><body><div class='out' style='width:640px'>{html}"
                         "</div></body></html>", encoding="utf-8")
    page = open_page(page_file)
    page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")  # every drill-down
    svgs = page.evaluate(TEXT_SCALE)
    assert len(svgs) >= 4  # the graph and its drill-downs
    for svg in svgs:
        assert svg["scale"] == pytest.approx(1.0, rel=1e-3), svg["width"]  # never shrunk to fit
        assert min(svg["sizes"]) >= 11.0 - 0.01
    nodes = page.evaluate(GEOMETRY)
    for node in nodes:
        left, top, right, bottom = node["rect"]
        for tl, tt, tr, tb, text in node["texts"]:  # every label inside its box
            assert left - 0.5 <= tl and tr <= right + 0.5 and top - 0.5 <= tt and tb <= bottom + 0.5, text
    assert page.evaluate("() => document.querySelectorAll('script').length") == 0

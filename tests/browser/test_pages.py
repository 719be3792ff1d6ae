"""The executed examples as a reader sees them: JupyterLab's look, in Chromium.

Each executed example is exported with nbconvert's ``lab`` template in the
light and the dark JupyterLab theme and opened in headless Chromium.  For
every cell that calls a magic the test asserts that the report is on screen:
it has a non-zero box, its tables have rows, its images decoded, autograd
graphs have node boxes of non-zero size that do not overlap and are not
clipped, and every piece of text meets WCAG AA contrast against the colour
actually behind it (computed from the rendered styles).  Screenshots go to
``out/screenshots/`` (ignored by git).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from scripts import nbtools
from tests.browser.pagecheck import SCREENSHOTS, probe, report_problems

pytestmark = pytest.mark.browser

THEMES = ("light", "dark", "vscode-dark")
EXAMPLES = nbtools.examples()


def _executed(path: Path) -> Any:
    import nbformat

    missing = nbtools.missing_magics(nbformat.read(path, as_version=4))
    if missing and not os.environ.get("CI"):
        pytest.skip(f"this checkout has no {', '.join(missing)} yet")
    return nbtools.execute_cached(path)


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("path", EXAMPLES, ids=[nbtools.example_name(p) for p in EXAMPLES])
def test_example_page(path: Path, theme: str, open_page: Any) -> None:
    nb = _executed(path)
    html = nbtools.write_html(path, nb, theme)
    page = open_page(html)
    info = probe(page)
    if theme.endswith("dark"):
        assert info["page_lum"] < 0.1, f"the dark theme did not apply (page background {info['page_bg']})"
    else:
        assert info["page_lum"] > 0.8, f"the light theme did not apply (page background {info['page_bg']})"
    shots = SCREENSHOTS / nbtools.example_name(path)
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / f"page.{theme}.png"), full_page=True)

    problems: list[str] = []
    magic_cells = 0
    for i, cell in enumerate(nb.cells):
        uses = nbtools.magic_uses(cell.source) if cell.cell_type == "code" else []
        if not uses:
            continue
        magic_cells += 1
        sel = f'[id="cell-id={cell.id}"]'
        found = probe(page, sel)
        where = f"cell {i} ({cell.source.splitlines()[0]!r}, {theme})"
        if not found["found"]:
            problems.append(f"{where}: cell not in the page")
            continue
        reports = found["reports"]
        raises = nbtools.RAISES in cell.metadata.get("tags", [])
        if not reports and not raises:
            problems.append(f"{where}: no report on screen")
        for r in reports:
            problems += [f"{where}: {p}" for p in report_problems(r)]
        drawn = any(s["nodes"] for r in reports for s in r["svgs"])
        if any(name == "autograd" for _, name in uses) and not raises and not drawn:
            problems.append(f"{where}: no graph nodes drawn")
        if reports:
            page.locator(sel).screenshot(path=str(shots / f"cell{i:02d}.{theme}.png"))
    assert magic_cells, "the example calls no magic"
    assert not problems, "\n".join(problems)


# -- the checks themselves can fail --------------------------------------------------
def _synthetic(body: str, theme_css: str = "") -> str:
    from torchmagic.core.html import wrap

    return f"<html><head><style>{theme_css}</style></head><body>{wrap(body, 'probe')}</body></html>"


def test_probe_passes_a_good_report(open_page: Any) -> None:
    from torchmagic.core.html import kv_table

    page = open_page(_synthetic(kv_table([("shape", "(2, 3)"), ("dtype", "float32")])))
    reports = probe(page)["reports"]
    assert len(reports) == 1
    assert reports[0]["tables"][0]["rows"] == 2
    assert report_problems(reports[0]) == []


def test_probe_flags_low_contrast_and_empty_tables(open_page: Any) -> None:
    body = (
        '<p style="color:#9a9a9a">faint text</p>'
        '<table class="tm-table"><thead><tr><th>a</th></tr></thead><tbody></tbody></table>'
    )
    page = open_page(_synthetic(body, "body { background: #a0a0a0; }"))
    problems = report_problems(probe(page)["reports"][0])
    assert any("low contrast" in p and "faint text" in p for p in problems), problems
    assert any("table without rows" in p for p in problems), problems


def test_probe_flags_overlapping_and_clipped_nodes(open_page: Any) -> None:
    svg = (
        '<svg width="200" height="100" viewBox="0 0 200 100">'
        '<g class="node" id="a"><rect x="10" y="10" width="80" height="30" fill="#fff" stroke="#000"/>'
        '<text x="15" y="30" fill="#000" font-size="12">AddBackward0</text></g>'
        '<g class="node" id="b"><rect x="50" y="20" width="80" height="30" fill="#fff" stroke="#000"/>'
        '<text x="55" y="40" fill="#000" font-size="12">x</text></g>'
        '<g class="node" id="c"><rect x="150" y="70" width="80" height="60" fill="#fff" stroke="#000"/></g>'
        "</svg>"
    )
    page = open_page(_synthetic(svg))
    problems = report_problems(probe(page)["reports"][0])
    assert any("overlap" in p and "'a'" in p and "'b'" in p for p in problems), problems
    assert any("clipped" in p and "'c'" in p for p in problems), problems
    assert not any("'a'" in p and "'c'" in p and "overlap" in p for p in problems)


def test_probe_reads_svg_text_against_its_box(open_page: Any) -> None:
    svg = (
        '<svg width="200" height="60"><g class="node" id="n">'
        '<rect x="5" y="5" width="150" height="40" fill="#202020"/>'
        '<text x="10" y="30" fill="#303030" font-size="12">dark on dark</text></g></svg>'
    )
    page = open_page(_synthetic(svg))
    problems = report_problems(probe(page)["reports"][0])
    assert any("low contrast" in p and "dark on dark" in p for p in problems), problems


def test_probe_flags_text_out_of_its_box_and_reads_cjk_glyphs(open_page: Any) -> None:
    body = (
        '<p style="width:40px;white-space:nowrap">广播：形状从最右边的维度开始对齐</p>'
        '<table class="tm-table"><tbody><tr><td>张量</td><td>(2, 3)</td></tr></tbody></table>'
    )
    reports = probe(open_page(_synthetic(body)))["reports"]
    problems = report_problems(reports[0])
    assert any("out of its box" in p and "广播" in p for p in problems), problems
    assert not any("张量" in p for p in problems), problems
    assert reports[0]["glyphs"]["cjk"], "this machine's Chromium has no CJK font (apt-get install fonts-noto-cjk)"


"""Measure torchmagic reports in a rendered page and judge what a reader can see.

``probe(page)`` runs ``probe.js`` in a Playwright page and returns plain data
for every report (``.tm`` block): its box, its text samples with the WCAG
contrast against the colour actually behind them, its tables, images and
SVG graph nodes.  ``report_problems(report)`` turns that into readable
complaints.  Used by the browser tests and the docs build test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scripts import nbtools

PROBE = (Path(__file__).parent / "probe.js").read_text(encoding="utf-8")
SCREENSHOTS = nbtools.OUT / "screenshots"


def probe(page: Any, root: str | None = None) -> dict[str, Any]:
    """Measurements of every torchmagic report under the CSS selector ``root``."""
    result: dict[str, Any] = page.evaluate(PROBE, root)
    return result


MIN_RATIO = 4.5  # WCAG AA, normal text
MIN_RATIO_LARGE = 3.0  # WCAG AA, large text
MIN_FONT_PX = 9.0


def _overlap(a: dict[str, float], b: dict[str, float], tol: float = 0.5) -> bool:
    dx = min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"])
    dy = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
    return dx > tol and dy > tol


def _inside(inner: dict[str, float], outer: dict[str, float], tol: float = 1.5) -> bool:
    return (
        inner["x"] >= outer["x"] - tol
        and inner["y"] >= outer["y"] - tol
        and inner["x"] + inner["w"] <= outer["x"] + outer["w"] + tol
        and inner["y"] + inner["h"] <= outer["y"] + outer["h"] + tol
    )


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3000" <= ch <= "\u303f" or "\uff00" <= ch <= "\uffef"


def report_problems(report: dict[str, Any]) -> list[str]:
    """Everything that makes one measured report hard to see or read."""
    bad: list[str] = []
    box = report["box"]
    if not report["visible"] or box["w"] < 20 or box["h"] < 10:
        bad.append(f"report not visible: {box}")
    if not report["text"]:
        bad.append("report shows no text")
    for t in report["texts"]:
        need = MIN_RATIO_LARGE if t["large"] else MIN_RATIO
        if t["ratio"] < need:
            bad.append(
                f"low contrast {t['ratio']:.2f} < {need} for <{t['tag']}> {t['text']!r} "
                f"(colour {t['fill'] if t['svg'] else t['fg']} on {t['bg']})"
            )
        if t["size"] < MIN_FONT_PX:
            bad.append(f"text too small ({t['size']}px): {t['text']!r}")
    for tb in report["tables"]:
        if tb["rows"] < 1:
            bad.append(f"table without rows: {tb['cls']!r}")
        if tb["box"]["w"] <= 0 or tb["box"]["h"] <= 0:
            bad.append(f"table has no size: {tb['cls']!r}")
    for img in report["images"]:
        if not img["ok"] or img["box"]["w"] <= 0:
            bad.append(f"image not drawn: {img}")
    for sp in report["spills"]:
        bad.append(f"text runs {sp['over']}px out of its box: {sp['text']!r}")
    if not report["glyphs"]["cjk"] and any(_is_cjk(c) for c in report["text"]):
        bad.append(f"Chinese text drawn without CJK glyphs (font: {report['glyphs']['font']})")
    for svg in report["svgs"]:
        if svg["box"]["w"] <= 0 or svg["box"]["h"] <= 0:
            bad.append("svg has no size")
        nodes = svg["nodes"]
        for n in nodes:
            if n["box"]["w"] <= 0 or n["box"]["h"] <= 0:
                bad.append(f"graph node {n['id']!r} has no size")
            if not _inside(n["box"], svg["box"]):
                bad.append(f"graph node {n['id']!r} is clipped by the svg: {n['box']} not in {svg['box']}")
            for lab in n["labels"]:
                if lab["text"] and not _inside(lab["box"], n["box"], tol=2.0):
                    bad.append(f"label {lab['text']!r} spills out of node {n['id']!r}")
        for i, a in enumerate(nodes):
            for b in nodes[i + 1 :]:
                if _overlap(a["box"], b["box"]):
                    bad.append(f"graph nodes overlap: {a['id']!r} and {b['id']!r}")
    return bad

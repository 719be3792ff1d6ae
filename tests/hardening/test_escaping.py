"""Untrusted text: names, expressions, source lines, type names and error messages
carrying HTML/SVG/rich-markup payloads go through every magic and renderer.

Each report is shown the notebook way (``_repr_mimebundle_``), then the HTML is
parsed with ``html.parser`` (every element must be one torchmagic itself emits
for clean input, no ``on*`` attribute, no ``javascript:`` URL), every SVG with
``xml.etree`` (well-formed, SVG elements only), and the plain text (rendered by
rich) must contain the rich-markup payload literally.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from typing import Any

import pytest

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
SVG = "<svg onload=alert(1)>"
RICH = "[bold red]rich[/bold red][link=https://evil]x[/link]"
PAYLOADS = (SCRIPT, IMG, SVG, RICH)

SETUP = f"""
import torch
Evil = type({SVG + 'Tensor'!r}, (torch.Tensor,), {{}})
m = torch.nn.Sequential()
m.add_module({SCRIPT!r}, torch.nn.Linear(2, 2))
m.add_module({IMG!r}, torch.nn.Tanh())
m.add_module({RICH!r}, torch.nn.Linear(2, 2))
d = {{{SCRIPT!r}: torch.ones(2, requires_grad=True)}}
e = torch.ones(3).as_subclass(Evil)

def _fwd(ctx, t):
    return t * 2

def _bwd(ctx, g):
    return g * 2

Payload = type({IMG!r}, (torch.autograd.Function,), {{'forward': staticmethod(_fwd), 'backward': staticmethod(_bwd)}})
"""
BODY = f"""out = m(torch.ones(1, 2))   # {SCRIPT} {RICH}
w = d[{SCRIPT!r}] * 2
s = {IMG!r}
z = e + 1
p = Payload.apply(w)
loss = (out.sum() + p.sum())  # {SVG}
loss.backward()
"""
FAILS = {
    "shape error": f"q = d[{SCRIPT!r}] @ torch.ones(3)  # {RICH}",
    "user message": f"raise ValueError({(SCRIPT + IMG + RICH)!r})",
    "second backward": f"y = (d[{SCRIPT!r}] * 2).sum()  # {SVG}\ny.backward()\ny.backward()",
    "device mismatch": f"q = d[{SCRIPT!r}].to('meta') + torch.ones(2)  # {IMG}",
}
CELL_MAGICS = ["%%tensorinfo", "%%tensorinfo --deep", "%%tensorinfo --source", "%%autograd",
               "%%autograd --modules --jacobian", "%%device cpu", "%%device meta", ""]
LINE_MAGICS = ["%tensorinfo m", "%tensorinfo e", f"%tensorinfo d[{SCRIPT!r}]", "%tensorinfo",
               "%tensorinfo --image e", "%autograd loss", "%autograd --modules out", f"%autograd d[{SCRIPT!r}]",
               "%device m", "%device", "%device d"]
COUNTS = {"cell magics": len(CELL_MAGICS), "line magics": len(LINE_MAGICS), "failing cells": len(FAILS)}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.bad: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if name.lower().startswith("on"):
                self.bad.append(f"<{tag} {name}=...>")
            if (
                value
                and re.match(r"\s*(javascript|data|vbscript):", value, re.I)
                and name in ("href", "src", "xlink:href")
            ):
                self.bad.append(f"<{tag} {name}={value}>")


ALLOWED = {  # every element torchmagic emits for ordinary input (checked below to be enough)
    "div", "span", "table", "thead", "tbody", "tr", "td", "th", "caption", "details", "summary", "pre",
    "code", "b", "i", "em", "strong", "small", "ul", "ol", "li", "p", "br", "style", "svg", "g", "rect",
    "text", "path", "line", "title", "polyline", "polygon", "circle", "defs", "marker", "tspan", "img",
    "kbd", "sup", "sub", "hr", "h3", "h4", "col", "colgroup", "abbr", "mark", "s", "u", "section",
}


def _check_html(html: str, where: str) -> None:
    parser = _Tags()
    parser.feed(html)
    parser.close()
    assert "script" not in parser.tags, where
    assert not parser.bad, (where, parser.bad)
    assert parser.tags <= ALLOWED, (where, parser.tags - ALLOWED)
    if "img" in parser.tags:  # only torchmagic's own data: URI images (--image), never the payload's
        for src in re.findall(r"<img[^>]*\ssrc=\"([^\"]*)\"", html):
            assert src.startswith("data:image/png;base64,"), (where, src[:40])
    for svg in re.findall(r"<svg\b.*?</svg>", html, re.S):
        _check_svg(svg, where)


def _check_svg(svg: str, where: str) -> None:
    root = ET.fromstring(svg)  # raises on unescaped payloads: not well-formed
    for el in root.iter():
        tag = el.tag.split("}")[-1]
        assert tag not in ("script", "foreignObject", "iframe", "a"), (where, tag)
        assert el.tag.startswith("{http://www.w3.org/2000/svg}") or "}" not in el.tag, (where, el.tag)
        for attr in el.attrib:
            assert not attr.split("}")[-1].lower().startswith("on"), (where, attr)


def _bundles(cap: Any) -> list[dict[str, str]]:
    return [o.data for o in cap.outputs]


@pytest.fixture
def eip(hip: Any, monkeypatch: Any) -> Any:
    monkeypatch.setattr("torchmagic.core.report.in_kernel", lambda shell: True)
    res = hip.run_cell(SETUP)
    assert res.success, res.error_in_exec
    return hip


def _run(ip: Any, capture: Any, source: str) -> tuple[str, str]:
    with capture() as cap:
        ip.run_cell(source)
    bundles = _bundles(cap)
    assert bundles, (source, cap.stdout[-2000:], cap.stderr[-2000:])
    html = "\n".join(b.get("text/html", "") for b in bundles)
    text = "\n".join(b.get("text/plain", "") for b in bundles)
    assert "torchmagic:" not in cap.stderr, cap.stderr
    return html, text


@pytest.mark.parametrize("magic", CELL_MAGICS, ids=lambda m: m or "explainer only")
def test_cell_reports_escape_payloads(eip: Any, capture: Any, magic: str) -> None:
    sources = [f"{magic}\n{body}" for body in FAILS.values()]
    if magic:
        sources.insert(0, f"{magic}\n{BODY}")
    seen = 0
    for source in sources:
        with capture() as cap:
            eip.run_cell(source)
        for bundle in _bundles(cap):
            html, text = bundle.get("text/html", ""), bundle.get("text/plain", "")
            if not html:
                continue
            seen += 1
            _check_html(html, source)
            for payload in PAYLOADS:  # the payload is shown (escaped), not dropped or executed
                if payload in text:
                    assert payload not in html or payload == RICH, (source, payload)
    assert seen, "no HTML report was shown"


def test_payloads_reach_the_reports(eip: Any, capture: Any) -> None:
    """The checks above are not vacuous: the payloads do appear, as text."""
    html, text = _run(eip, capture, f"%%tensorinfo --source\n{BODY}")
    assert "&lt;script&gt;" in html and SCRIPT in text and "[bold r" in text  # long lines are cut
    html, text = _run(eip, capture, f"%%autograd\n{BODY}")
    assert "&lt;script&gt;" in html or "&lt;img" in html
    html, text = _run(eip, capture, "%device m")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "alert(1)" in text  # rich wraps cells


@pytest.mark.parametrize("magic", LINE_MAGICS)
def test_line_reports_escape_payloads(eip: Any, capture: Any, magic: str) -> None:
    eip.run_cell(BODY)
    html, _text = _run(eip, capture, magic)
    _check_html(html, magic)


def test_autograd_svg_is_well_formed_with_payloads(eip: Any, capture: Any) -> None:
    with capture():
        assert eip.run_cell(f"%%autograd -o rep\n{BODY}").success
    rep = eip.user_ns["rep"]
    svg = rep.svg
    assert svg and ("&lt;img" in svg or "&lt;script" in svg), svg[:500]
    _check_svg(svg, "rep.svg")
    dot = rep.to_dot()
    assert SCRIPT not in dot.replace("\\\"", '"') or "label" in dot  # dot is text for Graphviz, not HTML


def test_rich_output_prints_markup_literally(eip: Any, capture: Any) -> None:
    """In the terminal (rich), markup in user text is printed as typed, not interpreted."""
    import io

    from rich.console import Console

    with capture():
        eip.run_cell(f"%%tensorinfo -o r1\n{BODY}")
        eip.run_cell("%device -o r2 m")
        eip.run_cell("%tensorinfo -o r3 m")
        eip.run_cell(f"%%autograd --modules -o r4\n{BODY}")
    for name in ("r1", "r2", "r3", "r4"):
        buf = io.StringIO()
        Console(file=buf, width=300, force_terminal=True, color_system="truecolor").print(eip.user_ns[name])
        raw = buf.getvalue()
        plain = re.sub(r"\x1b\[[0-9;]*m|\x1b\]8;[^\x1b]*\x1b\\", "", raw)
        assert "[bold red]rich[/bold red]" in plain, (name, plain[:2000])
        assert "evil" not in re.findall(r"\x1b\]8;[^\x1b]*", raw).__str__(), name  # no hyperlink made


@pytest.mark.parametrize("raw", [f"<div>{SCRIPT}</div>", f'<td title="{IMG}">x</td>', f"<div>{SVG}</div>",
                                 "<iframe src=x></iframe>", '<a href="javascript:alert(1)">x</a>'])
def test_the_checker_catches_unescaped_payloads(raw: str) -> None:
    """The HTML/SVG checks fail on what an unescaped renderer would emit."""
    with pytest.raises((AssertionError, ET.ParseError)):
        _check_html(raw, "raw")

"""The SVG drawing: self-contained, no scripts, hover titles, escaped text."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from torchmagic.autograd.graph import GNode, Graph
from torchmagic.autograd.svg import graph_svg, node_size

NS = "{http://www.w3.org/2000/svg}"
EVIL = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "[bold]x[/bold]"]


def _graph() -> Graph:
    nodes = [
        GNode(id=0, kind="leaf", label=EVIL[0], shape=(2,), dtype="float32", grad=EVIL[1]),
        GNode(id=1, kind="const", label=EVIL[2], requires_grad=False),
        GNode(id=2, kind="op", label="MulBackward0", shape=(2,), dtype="float32", names=(EVIL[1],),
              saved=("other: (2,) float32",)),
        GNode(id=3, kind="op", label="SumBackward0", shape=(), dtype="float32", names=("loss",)),
    ]
    return Graph(nodes=nodes, edges=[(0, 2), (1, 2), (2, 3)], roots=[3], root_names=["loss"])


def test_svg_parses_has_titles_and_no_script() -> None:
    svg = graph_svg(_graph(), uid="t1")
    root = ET.fromstring(svg)  # well-formed XML, so every payload was escaped
    assert root.tag == f"{NS}svg"
    assert "<script" not in svg and "onerror=" not in svg.replace("onerror=alert", "")
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert EVIL[0] in texts  # shown literally, escaped in the markup
    titles = [t.text or "" for t in root.iter(f"{NS}title")]
    assert len(titles) == 4
    assert any("saved other: (2,) float32" in t for t in titles)
    assert any(f".grad: {EVIL[1]}" in t for t in titles)
    assert len(list(root.iter(f"{NS}path"))) == 3 + 1  # three edges + the arrow head
    assert not re.search(r"<img", svg)


def test_boxes_fit_their_text_and_root_is_marked() -> None:
    g = _graph()
    svg = graph_svg(g, uid="t2")
    root = ET.fromstring(svg)
    rects = list(root.iter(f"{NS}rect"))
    assert [r.get("class") for r in rects] == ["leaf", "const", "op", "op root"]
    for node, rect in zip(g.nodes, rects):
        w, h = node_size(node)
        assert float(rect.get("width", 0)) == w and float(rect.get("height", 0)) == h


def test_default_uid_is_deterministic_and_unique_per_graph() -> None:
    a = graph_svg(_graph())
    b = graph_svg(_graph())
    assert a == b
    ids = re.findall(r'<svg[^>]* id="([^"]+)"', a)
    assert ids and ids[0].startswith("tm-ag-")

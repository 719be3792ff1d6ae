"""Draw a :class:`Graph` as a small, self-contained SVG (no Graphviz, no script).

Every node is a rounded box with its op or name and its shape (a folded
module call: its name, type and shapes); hovering a box shows its details
through an SVG ``<title>``, which browsers display as a tooltip without any
JavaScript, so the picture keeps working in untrusted and exported notebooks.
All text is escaped.  Styling lives in one ``<style>`` block with classes,
which keeps large graphs small (a few hundred bytes per node).  The SVG has a
fixed size and ``max-width: none``: a notebook never shrinks it to fit, so
its text stays 11 px and a large picture scrolls instead.
"""

from __future__ import annotations

import hashlib

from rich.cells import cell_len

from torchmagic.autograd.graph import GNode, Graph
from torchmagic.autograd.layout import Layout, layout
from torchmagic.autograd.values import clip
from torchmagic.core.html import esc
from torchmagic.i18n import tr

__all__ = ["node_size", "draw", "graph_svg"]

CHAR_W = 6.6  # monospace 11px
LINE_H = 14.0
PAD_X = 8.0
MAX_CHARS = 60


def _clip(text: str) -> str:
    return clip(text, MAX_CHARS)


def _lines(node: GNode) -> list[str]:
    lines = [_clip(node.title)]
    if node.subtitle:
        lines.append(_clip(node.subtitle))
    return lines


def node_size(node: GNode) -> tuple[float, float]:
    """Box size that fits the node's text lines (a Chinese character is two monospace cells wide)."""
    lines = _lines(node)
    width = max(cell_len(s) for s in lines) * CHAR_W + 2 * PAD_X
    return (round(max(width, 40.0)), LINE_H * len(lines) + 8.0)


def _n(v: float) -> str:
    """Compact coordinates: integers where possible, one decimal otherwise."""
    text = f"{v:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _style(uid: str) -> str:
    return (
        f"<style>#{uid} text{{font:11px var(--jp-code-font-family,monospace);fill:#1f1f1f}}"
        f"#{uid} rect{{stroke:#6b7a90;stroke-width:1}}"
        f"#{uid} .op{{fill:#e8eef7}}#{uid} .leaf{{fill:#d7ecd9;stroke:#2e7d32}}"
        f"#{uid} .const{{fill:#eeeeee;stroke-dasharray:3 2}}"
        f"#{uid} .collapsed{{fill:#fff3cd;stroke:#b35900;stroke-dasharray:5 2}}"
        f"#{uid} .more{{fill:#ffffff;stroke-dasharray:2 2}}"
        f"#{uid} .module{{fill:#ede7f6;stroke:#5e35b1}}"
        f"#{uid} .nonfinite{{stroke:#b35900;stroke-width:2}}"
        f"#{uid} .origin{{stroke:#c62828;stroke-width:3}}"
        f"#{uid} .root{{stroke:#c62828;stroke-width:2}}"
        f"#{uid} .e{{fill:none;stroke:#8a94a6;stroke-width:1.2}}"
        f"#{uid} .s{{fill:#555}}</style>"
    )


def draw(graph: Graph, lay: Layout, uid: str = "") -> str:
    """SVG markup for ``graph`` positioned by ``lay``."""
    if not uid:
        digest = hashlib.blake2b(
            "|".join(n.label for n in graph.nodes[:64]).encode(), digest_size=4
        ).hexdigest()
        uid = f"tm-ag-{digest}-{len(graph.nodes)}"
    uid = esc(uid)
    width, height = _n(lay.width), _n(lay.height)
    label = esc(tr("autograd graph"))
    out = [
        (f'<svg xmlns="http://www.w3.org/2000/svg" id="{uid}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" style="max-width:none" role="img" aria-label="{label}">'),
        _style(uid),
        (f'<defs><marker id="{uid}-a" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0L8,4L0,8z" fill="#8a94a6"/></marker></defs>'),
        f'<g class="e" marker-end="url(#{uid}-a)">',
    ]
    for route in lay.routes:
        if len(route) < 2:
            continue
        d = "M" + "L".join(f"{_n(x)},{_n(y)}" for x, y in route)
        out.append(f'<path d="{d}"/>')
    out.append("</g>")
    roots = set(graph.roots)
    for node, box in zip(graph.nodes, lay.boxes):
        cls = node.kind + (" root" if node.id in roots else "") + (f" {node.flag}" if node.flag else "")
        title = esc("\n".join(node.details()))
        lines = _lines(node)
        x0 = box.x + PAD_X
        parts = [
            (f'<g><title>{title}</title><rect class="{cls}" x="{_n(box.x)}" y="{_n(box.y)}" '
            f'width="{_n(box.w)}" height="{_n(box.h)}" rx="4"/>')
        ]
        for k, text in enumerate(lines):
            y = box.y + 4 + LINE_H * (k + 1) - 3
            sub = ' class="s"' if k else ""
            parts.append(f'<text x="{_n(x0)}" y="{_n(y)}"{sub}>{esc(text)}</text>')
        parts.append("</g>")
        out.append("".join(parts))
    out.append("</svg>")
    return "\n".join(out)


def graph_svg(graph: Graph, uid: str = "") -> str:
    """Lay out and draw ``graph`` in one call."""
    lay = layout([node_size(n) for n in graph.nodes], graph.edges)
    return draw(graph, lay, uid)

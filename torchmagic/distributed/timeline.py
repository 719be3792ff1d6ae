"""The pipeline's micro-batches on one time axis: one row per stage, forward and backward boxes, idle gaps.

Pure layout of :class:`~torchmagic.distributed.report.PipelineFacts`: the
stages' clocks are the ranks' wall clocks (the same clock on one machine;
across machines as good as their synchronisation).  The bubble share of a
stage is the idle part of the span from the first micro-batch of any stage
to the last.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from torchmagic.core.html import esc
from torchmagic.distributed.pipeline import bubbles
from torchmagic.distributed.report import PipelineFacts, StageFacts

__all__ = ["span", "bubble_share", "svg", "rich_timeline"]

FILL = {"F": "#cfe3ff", "B": "#ffe0b2"}
STYLE = {"F": "black on #cfe3ff", "B": "black on #ffe0b2"}
WIDTH = 560.0
ROW_H = 22.0


def span(p: PipelineFacts) -> tuple[int, int]:
    starts = [e.start_ns for s in p.stages for e in s.events]
    ends = [e.end_ns for s in p.stages for e in s.events]
    return (min(starts), max(ends)) if starts else (0, 0)


def bubble_share(stage: StageFacts, start: int, end: int) -> float:
    """The idle fraction of ``stage`` between ``start`` and ``end``."""
    if end <= start:
        return 0.0
    gaps = bubbles([(e.start_ns, e.end_ns) for e in stage.events], start, end)
    return sum(b - a for a, b in gaps) / (end - start)


def svg(p: PipelineFacts) -> str:
    t0, t1 = span(p)
    total = max(t1 - t0, 1)
    left = 70.0
    stages = sorted(p.stages, key=lambda s: s.stage)
    h = ROW_H * len(stages) + 22
    parts = [
        (
            f'<svg class="tm-timeline" xmlns="http://www.w3.org/2000/svg" width="{left + WIDTH + 10:.0f}" '
            f'height="{h:.0f}" role="img" aria-label="micro-batches per pipeline stage over time">'
        )
    ]
    for i, s in enumerate(stages):
        y = 4 + i * ROW_H
        share = bubble_share(s, t0, t1)
        parts.append(
            f'<text x="2" y="{y + 14:.0f}" font-size="11" fill="currentColor">stage {s.stage} (r{s.rank})</text>'
            f'<rect x="{left:.0f}" y="{y:.0f}" width="{WIDTH:.0f}" height="{ROW_H - 4:.0f}" fill="none" '
            f'stroke="#8a94a6" stroke-dasharray="2 2"><title>{esc(f"idle {share:.0%} of the time")}</title></rect>'
        )
        for e in s.events:
            x = left + (e.start_ns - t0) / total * WIDTH
            w = max((e.end_ns - e.start_ns) / total * WIDTH, 1.5)
            label = f"{e.kind}{e.micro}"
            which = "forward" if e.kind == "F" else "backward"
            tip = f"{which} of micro-batch {e.micro}: {(e.end_ns - e.start_ns) / 1e6:.2f} ms"
            parts.append(
                f'<g class="node"><title>{esc(tip)}</title><rect x="{x:.1f}" y="{y:.0f}" width="{w:.1f}" '
                f'height="{ROW_H - 4:.0f}" fill="{FILL.get(e.kind, "#e8e8e8")}" stroke="#44546a"/>'
                + (
                    f'<text x="{x + w / 2:.1f}" y="{y + 13:.0f}" text-anchor="middle" font-size="10" '
                    f'fill="#1f1f1f">{esc(label)}</text>'
                    if w >= 18
                    else ""
                )
                + "</g>"
            )
    ms = total / 1e6
    parts.append(
        f'<text x="{left:.0f}" y="{h - 4:.0f}" font-size="10" fill="currentColor">0</text>'
        f'<text x="{left + WIDTH:.0f}" y="{h - 4:.0f}" font-size="10" text-anchor="end" '
        f'fill="currentColor">{ms:.1f} ms</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def rich_timeline(p: PipelineFacts, width: int = 60) -> Any:
    t0, t1 = span(p)
    total = max(t1 - t0, 1)
    out = Text()
    for s in sorted(p.stages, key=lambda s: s.stage):
        cells: list[tuple[str, str]] = [("·", "")] * width
        for e in s.events:
            a = int((e.start_ns - t0) / total * width)
            b = max(int((e.end_ns - t0) / total * width), a + 1)
            label = f"{e.kind}{e.micro}"
            for k in range(a, min(b, width)):
                ch = label[k - a] if k - a < len(label) else " "
                cells[k] = (ch, STYLE.get(e.kind, ""))
        out.append(f"stage {s.stage} r{s.rank} ")
        for ch, style in cells:
            out.append(ch, style=style)
        out.append(f"  idle {bubble_share(s, t0, t1):.0%}\n")
    out.append(f"{' ' * 11}0{' ' * (width - 8)}{total / 1e6:.1f} ms")
    return out

"""The pipeline's micro-batches on one time axis: one row per stage, forward and backward boxes, idle gaps.

Pure layout of :class:`~torchmagic.distributed.report.PipelineFacts`: the
stages' clocks are the ranks' wall clocks (the same clock on one machine;
across machines as good as their synchronisation).  The bubble share of a
stage is the idle part of the span from the first micro-batch of any stage
to the last.
"""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.text import Text

from torchmagic.core.html import esc
from torchmagic.distributed.pipeline import bubbles
from torchmagic.distributed.report import PipelineFacts, StageFacts
from torchmagic.i18n import tr

__all__ = ["span", "bubble_share", "svg", "rich_timeline", "draw"]

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
    aria = tr("micro-batches per pipeline stage over time")
    parts = [
        (
            f'<svg class="tm-timeline" xmlns="http://www.w3.org/2000/svg" width="{left + WIDTH + 10:.0f}" '
            f'height="{h:.0f}" role="img" aria-label="{esc(aria)}">'
        )
    ]
    for i, s in enumerate(stages):
        y = 4 + i * ROW_H
        share = bubble_share(s, t0, t1)
        name = tr("stage {stage} (r{rank})", stage=s.stage, rank=s.rank)
        idle = tr("idle {share} of the time", share=format(share, ".0%"))
        parts.append(
            f'<text x="2" y="{y + 14:.0f}" font-size="11" fill="currentColor">{esc(name)}</text>'
            f'<rect x="{left:.0f}" y="{y:.0f}" width="{WIDTH:.0f}" height="{ROW_H - 4:.0f}" fill="none" '
            f'stroke="#8a94a6" stroke-dasharray="2 2"><title>{esc(idle)}</title></rect>'
        )
        for e in s.events:
            x = left + (e.start_ns - t0) / total * WIDTH
            w = max((e.end_ns - e.start_ns) / total * WIDTH, 1.5)
            label = f"{e.kind}{e.micro}"
            took = f"{(e.end_ns - e.start_ns) / 1e6:.2f}"
            tip = (
                tr("forward of micro-batch {micro}: {ms} ms", micro=e.micro, ms=took)
                if e.kind == "F"
                else tr("backward of micro-batch {micro}: {ms} ms", micro=e.micro, ms=took)
            )
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
    """The timeline in characters: bars ``width`` cells wide, narrower where the terminal is (one line per stage)."""
    return _Timeline(p, width)


class _Timeline:
    """Drawn when the console's width is known, so that a stage's bar, name and idle share share one line."""

    def __init__(self, p: PipelineFacts, width: int) -> None:
        self.p, self.width = p, width

    def __rich_console__(self, console: Any, options: Any) -> Any:
        yield draw(self.p, self.width, options.max_width)


def draw(p: PipelineFacts, width: int = 60, max_width: int = 10_000) -> Text:
    """Bars of at most ``width`` cells, fitted with their labels into ``max_width`` cells (at least 16 of bar)."""
    t0, t1 = span(p)
    total = max(t1 - t0, 1)
    out = Text()
    stages = sorted(p.stages, key=lambda s: s.stage)
    names = [tr("stage {stage} r{rank}", stage=s.stage, rank=s.rank) for s in stages]
    idles = ["  " + tr("idle {share}", share=format(bubble_share(s, t0, t1), ".0%")) for s in stages]
    pad = max((cell_len(n) for n in names), default=0) + 1  # rows start together, in cells (CJK is 2 wide)
    width = max(min(width, max_width - pad - max((cell_len(i) for i in idles), default=0)), 16)
    for s, name, idle in zip(stages, names, idles):
        cells: list[tuple[str, str]] = [("·", "")] * width
        for e in s.events:
            a = int((e.start_ns - t0) / total * width)
            b = max(int((e.end_ns - t0) / total * width), a + 1)
            label = f"{e.kind}{e.micro}"
            for k in range(a, min(b, width)):
                ch = label[k - a] if k - a < len(label) else " "
                cells[k] = (ch, STYLE.get(e.kind, ""))
        out.append(name + " " * (pad - cell_len(name)))
        for ch, style in cells:
            out.append(ch, style=style)
        out.append(idle + "\n")
    out.append(f"{' ' * pad}0{' ' * (width - 8)}{total / 1e6:.1f} ms")
    return out

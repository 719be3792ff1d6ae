"""Draw a training loop's summary: the loss per step and the gradient flow per layer.

HTML gets small inline SVG sparklines (no script); the terminal gets a line
of block characters.  Gradient norms span decades, so their sparklines are
drawn on a log scale; the loss on a linear one.  Non-finite values break
the line and are marked.  Pure functions of the report's plain data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.cells import cell_len

from torchmagic.autograd.report import GradFlow, LayerFlow, LoopSummary
from torchmagic.autograd.values import clip, fmt_number, pad
from torchmagic.core.html import esc, table
from torchmagic.core.lines import Line
from torchmagic.i18n import N_, tr

__all__ = ["loop_html", "loop_lines", "spark_text", "spark_svg", "loop_title"]

BLOCKS = "▁▂▃▄▅▆▇█"
SPARK_CHARS = 32


def _points(values: Sequence[float], log: bool) -> list[float | None]:
    """Values scaled to 0..1 (None for a value that is not finite, or not positive on a log scale)."""
    def scaled(v: float) -> float | None:
        if not math.isfinite(v) or (log and v <= 0):
            return None
        return math.log10(v) if log else v

    mapped = [scaled(v) for v in values]
    good = [v for v in mapped if v is not None]
    if not good:
        return [None] * len(values)
    lo, hi = min(good), max(good)
    span = hi - lo
    return [None if v is None else ((v - lo) / span if span > 0 else 0.5) for v in mapped]


def _bucket(values: Sequence[float], n: int) -> list[float]:
    """At most ``n`` values: the mean of each run (a non-finite value in a run wins)."""
    if len(values) <= n:
        return list(values)
    out: list[float] = []
    for k in range(n):
        run = values[k * len(values) // n:(k + 1) * len(values) // n]
        bad = [v for v in run if not math.isfinite(v)]
        out.append(bad[0] if bad else sum(run) / len(run))
    return out


def spark_text(values: Sequence[float], log: bool = False, width: int = SPARK_CHARS) -> str:
    """``▇▆▅▄▃▂▁``: one block per (bucket of) value(s); ``!`` where a value is not finite."""
    points = _points(_bucket(values, width), log)
    return "".join("!" if p is None else BLOCKS[min(7, int(p * 7.999))] for p in points)


def spark_svg(values: Sequence[float], log: bool = False, width: int = 160, height: int = 28) -> str:
    """A polyline sparkline; a red dot where a value is not finite."""
    points = _points(_bucket(values, width // 2), log)
    if not points:
        return ""
    step = (width - 4) / max(1, len(points) - 1)
    runs: list[list[str]] = [[]]
    dots: list[str] = []
    for k, p in enumerate(points):
        x = 2 + k * step
        if p is None:
            dots.append(f'<circle cx="{x:.1f}" cy="{height / 2:.1f}" r="2.5" fill="#c62828"/>')
            runs.append([])
            continue
        runs[-1].append(f"{x:.1f},{2 + (1 - p) * (height - 4):.1f}")
    lines = "".join(
        f'<polyline points="{" ".join(r)}" fill="none" stroke="currentColor" stroke-width="1.5"/>'
        for r in runs if len(r) > 1
    )
    lone = "".join(f'<circle cx="{r[0].split(",")[0]}" cy="{r[0].split(",")[1]}" r="1.5" fill="currentColor"/>'
                   for r in runs if len(r) == 1)
    label = esc(tr("sparkline"))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'style="max-width:none;vertical-align:middle" role="img" aria-label="{label}">'
            f"{lines}{lone}{''.join(dots)}</svg>")


def loop_title(loop: LoopSummary) -> str:
    root = loop.root or tr("the loss")
    if loop.loop_line:
        text = tr("Training loop: {n} backward() calls on {root} (line {line}, in the loop at line {loop_line})",
                  n=loop.steps, root=root, line=loop.line, loop_line=loop.loop_line)
    else:
        text = tr("Training loop: {n} backward() calls on {root} (line {line})", n=loop.steps, root=root,
                  line=loop.line)
    if loop.optimizer_steps:
        text += tr("; {optimizers} stepped {n} times", optimizers=", ".join(loop.optimizers) or tr("an optimizer"),
                   n=loop.optimizer_steps)
    return text


def _loss_text(loop: LoopSummary) -> str:
    values = loop.losses
    if not values:
        return ""
    finite = [(v, s) for v, s in zip(values, loop.loss_steps) if math.isfinite(v)]
    root = loop.root or tr("loss")
    text = f"{root} {fmt_number(values[0])} → {fmt_number(values[-1])}"
    if finite:
        low, at = min(finite)
        text += tr(" (min {value} at step {step})", value=fmt_number(low), step=at)
    bad = [s for v, s in zip(values, loop.loss_steps) if not math.isfinite(v)]
    if bad:
        text += tr("; not finite from step {step}", step=bad[0])
    sampled = len(values) < loop.steps
    return text + (tr("; {n} of {total} steps sampled", n=len(values), total=loop.steps) if sampled else "")


_FLAGS = {  # LayerFlow.flag -> what a person reads
    "vanishing": N_("vanishing"),
    "exploding": N_("exploding"),
    "non-finite": N_("non-finite"),
    "no gradient": N_("no gradient"),
}


def _flag_text(layer: LayerFlow) -> str:
    if not layer.flag:
        return tr("ok")
    flag = tr(_FLAGS[layer.flag]) if layer.flag in _FLAGS else layer.flag
    return f"⚠ {flag}: {layer.why}"


def _ratio(layer: LayerFlow) -> str:
    return fmt_number(layer.ratios[-1], 2) if layer.ratios else "—"


def _flow_caption(flow: GradFlow, html: bool = False) -> str:
    text = tr("Gradient flow: each layer's gradient norm, first → last of {n} sampled steps", n=len(flow.steps))
    if flow.update_steps and html:
        text += tr("; update/weight = ‖Δw‖ / ‖w‖ on the last sampled optimizer step")
    return text


def loop_html(loop: LoopSummary) -> str:
    parts = [f'<div class="tm-title">{esc(loop_title(loop))}</div>']
    if loop.losses:
        parts.append(f"<div>{spark_svg(loop.losses)} <code>{esc(_loss_text(loop))}</code></div>")
    flow = loop.flow
    if flow is not None and flow.layers:
        rows = []
        for layer in flow.layers:
            cls = "tm-warn" if layer.flag else "tm-ok"
            rows.append([
                f"<code>{esc(layer.name)}</code>", str(layer.tensors),
                (f"{spark_svg(layer.norms, log=True, width=120, height=22)} "
                f"<code>{esc(fmt_number(layer.norms[0]))} → {esc(fmt_number(layer.norms[-1]))}</code>"),
                esc(_ratio(layer)), f'<span class="{cls}">{esc(_flag_text(layer))}</span>',
            ])
        parts.append(f'<div class="tm-muted">{esc(_flow_caption(flow, html=True))}</div>')
        headers = [tr("layer"), tr("tensors"), tr("gradient norm"), tr("update/weight"), ""]
        parts.append(table(headers, rows, escape=False))
    return "".join(parts)


def loop_lines(loop: LoopSummary) -> list[Line]:
    out = [Line((loop_title(loop), "bold"))]
    if loop.losses:
        out.append(Line("  ", (spark_text(loop.losses), "cyan"), "  ", _loss_text(loop)))
    flow = loop.flow
    if flow is not None and flow.layers:
        out.append(Line((tr("{caption}:", caption=_flow_caption(flow)), "dim")))
        width = min(max(cell_len(layer.name) for layer in flow.layers), 28)
        for layer in flow.layers:
            line = Line("  ", (pad(clip(layer.name, width), width), "bold"), f"  {fmt_number(layer.norms[0]):>9} → ",
                        f"{fmt_number(layer.norms[-1]):<9} ", (spark_text(layer.norms, log=True, width=16), "cyan"))
            if layer.ratios:
                line.add("  " + tr("update/weight") + f" {_ratio(layer)}", "dim")
            if layer.flag:
                line.add(f"  {_flag_text(layer)}", "yellow")
            out.append(line)
    return out

"""Draw which rank holds which rows/columns of a DTensor: SVG for notebooks, a character grid for terminals.

The global tensor is drawn as a grid of its first two dims (a vector is
one row; further dims are not split by the drawing and are said in words).
Each rank's block is a box in that rank's colour labelled ``r0``; blocks
held by several ranks (replicated) list them all; partial sums are drawn
dashed.  Colours are light fills with dark text, readable on any theme;
text outside the boxes uses the page's own colour.  Pure functions of
:class:`~torchmagic.distributed.report.DTensorFacts`.
"""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.text import Text

from torchmagic.core.html import esc
from torchmagic.core.meta import fmt_shape
from torchmagic.distributed.report import DTensorFacts, ShardBlock
from torchmagic.i18n import N_, tr

__all__ = [
    "RANK_FILLS",
    "RANK_STYLES",
    "svg",
    "rich_grid",
    "placements_text",
    "grouped_blocks",
    "section_html",
    "section_rich",
    "LEGEND",
]

LEGEND = N_("digits: the rank holding that part; *: several ranks (replicated); italic: partial sums")  # tr() at use

RANK_FILLS = ("#cfe3ff", "#ffe0b2", "#d7ecd9", "#f8d7e3", "#e6dcf5", "#fff3b0", "#d3f0f0", "#e8e8e8")
RANK_STYLES = (
    "black on #cfe3ff",
    "black on #ffe0b2",
    "black on #d7ecd9",
    "black on #f8d7e3",
    "black on #e6dcf5",
    "black on #fff3b0",
    "black on #d3f0f0",
    "black on #e8e8e8",
)
MAX_W, MAX_H = 260.0, 160.0


def placements_text(f: DTensorFacts) -> str:
    """'Shard(0) on mesh (2,)' — the placements per mesh dim."""
    places = ", ".join(p.label() for p in f.placements)
    dims = "×".join(map(str, f.mesh_shape))
    return tr("[{placements}] on a {mesh} mesh", placements=places, mesh=dims)


def _2d(shape: tuple[int, ...]) -> tuple[int, int]:
    if not shape:
        return 1, 1
    if len(shape) == 1:
        return 1, max(shape[0], 1)
    return max(shape[0], 1), max(shape[1], 1)


def _span(b: ShardBlock, ndim: int) -> tuple[int, int, int, int]:
    """(row0, rows, col0, cols) of a block in the 2-D view."""
    if ndim == 0:
        return 0, 1, 0, 1
    if ndim == 1:
        return 0, 1, b.offset[0], b.size[0]
    return b.offset[0], b.size[0], b.offset[1], b.size[1]


def grouped_blocks(f: DTensorFacts) -> list[tuple[tuple[int, ...], ShardBlock]]:
    """Blocks with the same offset and size (replicas) merged: [(ranks, block)]."""
    groups: dict[tuple[tuple[int, ...], tuple[int, ...]], list[ShardBlock]] = {}
    for b in f.blocks:
        groups.setdefault((b.offset, b.size), []).append(b)
    return [(tuple(x.rank for x in bs), bs[0]) for bs in groups.values()]


def svg(f: DTensorFacts) -> str:
    rows, cols = _2d(f.global_shape)
    scale = min(MAX_W / cols, MAX_H / rows, 24.0)
    w, h = max(cols * scale, 40.0), max(rows * scale, 18.0)
    sx, sy = w / cols, h / rows
    left, top = 34.0, 16.0
    aria = tr("{name}: which rank holds which block", name=f.name)
    parts = [
        (
            f'<svg class="tm-sharding" xmlns="http://www.w3.org/2000/svg" width="{left + w + 8:.0f}" '
            f'height="{top + h + 8:.0f}" role="img" '
            f'aria-label="{esc(aria)}">'
        ),
        f'<text x="{left:.0f}" y="11" font-size="10" fill="currentColor">{esc(_axis_label(f))}</text>',
    ]
    for ranks, b in grouped_blocks(f):
        r0, nr, c0, nc = _span(b, len(f.global_shape))
        if nr == 0 or nc == 0:
            continue
        x, y = left + c0 * sx, top + r0 * sy
        bw, bh = nc * sx, nr * sy
        fill = RANK_FILLS[ranks[0] % len(RANK_FILLS)]
        dash = ' stroke-dasharray="4 2"' if b.partial else ""
        short = "r" + ",".join(map(str, ranks))
        label = tr("{ranks} partial", ranks=short) if b.partial else short
        rows_, cols_ = f"{r0}–{r0 + nr - 1}", f"{c0}–{c0 + nc - 1}"
        tip = (
            tr("{block}: rows {rows}, cols {cols}", block=label, rows=rows_, cols=cols_)
            if len(f.global_shape) > 1
            else tr("{block}: rows {rows}", block=label, rows=rows_)
        )
        parts.append(
            f'<g class="node"><title>{esc(tip)}</title><rect x="{x:.1f}" y="{y:.1f}" width="{bw:.1f}" '
            f'height="{bh:.1f}" fill="{fill}" stroke="#44546a" stroke-width="1"{dash}/>'
        )
        if bw >= 18 and bh >= 12:
            size = 11 if bw >= 7 * cell_len(label) else 9
            parts.append(
                f'<text x="{x + bw / 2:.1f}" y="{y + bh / 2 + 4:.1f}" text-anchor="middle" font-size="{size}" '
                f'fill="#1f1f1f">{esc(label if bw >= 6 * cell_len(label) else "r" + str(ranks[0]))}</text>'
            )
        parts.append("</g>")
    parts.append(
        f'<text x="2" y="{top + 10:.0f}" font-size="10" fill="currentColor">{rows}</text>'
        if len(f.global_shape) > 1
        else ""
    )
    parts.append("</svg>")
    return "".join(parts)


def _axis_label(f: DTensorFacts) -> str:
    if len(f.global_shape) <= 1:
        n = f.global_shape[0] if f.global_shape else 1
        return tr("{n} elements", n=n)
    rows, cols = f.global_shape[0], f.global_shape[1]
    if len(f.global_shape) > 2:
        rest = ", ".join(map(str, f.global_shape[2:]))
        return tr("{rows} rows × {cols} cols (× {rest} not drawn)", rows=rows, cols=cols, rest=rest)
    return tr("{rows} rows × {cols} cols", rows=rows, cols=cols)


def rich_grid(f: DTensorFacts, max_rows: int = 8, max_cols: int = 32) -> Any:
    """The same picture in characters: one cell per (scaled) element, the rank's number in its colour."""
    rows, cols = _2d(f.global_shape)
    gr, gc = min(rows, max_rows), min(cols, max_cols)
    owner: list[list[tuple[tuple[int, ...], bool] | None]] = [[None] * gc for _ in range(gr)]
    for ranks, b in grouped_blocks(f):
        r0, nr, c0, nc = _span(b, len(f.global_shape))
        for i in range(gr):
            ri = i * rows // gr
            if not r0 <= ri < r0 + nr:
                continue
            for j in range(gc):
                cj = j * cols // gc
                if c0 <= cj < c0 + nc and owner[i][j] is None:
                    owner[i][j] = (ranks, b.partial)
    out = Text()
    for i in range(gr):
        for j in range(gc):
            cell = owner[i][j]
            if cell is None:
                out.append("·")
                continue
            ranks, partial = cell
            ch = "*" if len(ranks) > 1 else str(ranks[0] % 10)
            out.append(ch, style=RANK_STYLES[ranks[0] % len(RANK_STYLES)] + (" italic" if partial else ""))
        if i < gr - 1:
            out.append("\n")
    return out


def _locals(f: DTensorFacts) -> str:
    return ", ".join(f"r{b.rank}: {fmt_shape(b.size)}" for b in f.blocks[:8]) + (" …" if len(f.blocks) > 8 else "")


def section_html(f: DTensorFacts) -> str:
    """One DTensor: global vs local shape, mesh, placements and the drawing."""
    mesh = "×".join(map(str, f.mesh_shape))
    names = f" ({', '.join(d for d in f.mesh_dims if d)})" if any(f.mesh_dims) else ""
    global_ = tr("global {shape} {dtype}", shape=fmt_shape(f.global_shape), dtype=f.dtype)
    where = tr(
        "mesh {mesh} of ranks {ranks} on {device} · local shapes {locals}",
        mesh=mesh + names,
        ranks=list(f.mesh_ranks),
        device=f.device,
        locals=_locals(f),
    )
    return (
        '<div class="tm-dtensor" style="display:inline-block;vertical-align:top;margin:0 16px 8px 0">'
        f"<div><code>{esc(f.name)}</code> {esc(global_)} · {esc(placements_text(f))}</div>"
        f'<div class="tm-muted">{esc(where)}</div>{svg(f)}</div>'
    )


def section_rich(f: DTensorFacts) -> Any:
    from rich.console import Group

    head = Text(
        tr(
            "{name} global {shape} {dtype} · {placements} · local {locals}",
            name=f.name,
            shape=fmt_shape(f.global_shape),
            dtype=f.dtype,
            placements=placements_text(f),
            locals=_locals(f),
        )
    )
    return Group(head, rich_grid(f))

"""Draw an :class:`AutogradReport`: HTML (with the inline SVG graph) and terminal lines.

Pure functions of the report: no torch, no state.  Every user-derived string
goes through ``esc`` (HTML/SVG) or into a :class:`~torchmagic.core.lines.Line`
piece (never parsed as markup), so a tensor named ``<script>`` or ``[bold]``
prints literally.  The terminal view is built from padded lines rather than
rich tables: a report must not cost more than the cell it describes.  The
graph is drawn by :mod:`~torchmagic.autograd.render_graph`, a training
loop's summary by :mod:`~torchmagic.autograd.render_loop`.

An error the cell raised is not repeated here: its text is in the
traceback, right below the report.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torchmagic.autograd.render_graph import graph_html, graph_lines
from torchmagic.autograd.render_loop import loop_html, loop_lines
from torchmagic.autograd.values import clip, fmt_number, pad
from torchmagic.core.html import badge, details, esc, table, wrap
from torchmagic.core.lines import Block, Line
from torchmagic.core.meta import fmt_shape
from torchmagic.i18n import N_, tr, trn

if TYPE_CHECKING:
    from torchmagic.autograd.report import AutogradReport, BackwardCall, Jacobian, LeafGrad, Note

__all__ = ["to_html", "to_rich", "leaf_rows", "LeafTable", "FULL_CALLS", "GROUP_LEAVES"]

FULL_CALLS = 3  # backward calls shown with their full leaf table; later ones in one line
GROUP_LEAVES = 12  # calls with more leaves show one row per module
_BOX_WARN = ' style="border-left:3px solid var(--jp-warn-color1, #b35900);padding:2px 8px;margin:4px 0"'
_BOX_ERROR = ' style="border-left:3px solid var(--jp-error-color1, #c62828);padding:2px 8px;margin:4px 0"'
_STATUS = {"ok": N_("ok"), "accumulated": N_("⚠ accumulated"), "non-finite": N_("⚠ non-finite")}


def _status(status: str) -> str:
    return tr(_STATUS[status])


def _summary(report: AutogradReport) -> list[str]:
    parts: list[str] = []
    g = report.graph
    if g is not None and g.nodes:
        parts.append(trn("{n} graph node", "{n} graph nodes", g.total_nodes))
    if report.calls_total:
        parts.append(trn("{n} backward call", "{n} backward calls", report.calls_total))
    if report.accumulated:
        parts.append(tr("gradient accumulated"))
    if any(n.kind == "nonfinite" for n in report.notes):
        parts.append(tr("non-finite gradient"))
    if report.untracked:
        parts.append(tr("{n} untracked", n=len(report.untracked)))
    return parts


def _combined(values: Sequence[float]) -> float:
    return math.sqrt(sum(v * v for v in values))


@dataclass(frozen=True)
class LeafTable:
    """A call's leaf table, for both renderers: one row per leaf, or per module when there are many."""

    caption: str
    headers: list[str]
    rows: list[list[str]]
    statuses: list[str]


def _natural(name: str) -> list[tuple[int, object]]:
    """``layers.2`` before ``layers.10``: numbers compare as numbers."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name)]


def leaf_rows(call: BackwardCall) -> LeafTable:
    """Accumulated and non-finite leaves first; values when small, else norms; no "before" column when all None."""
    leaves = sorted(call.leaves, key=lambda leaf: leaf.status == "ok")
    if len(leaves) <= GROUP_LEAVES:
        caption = ""
        headers = [tr("leaf"), tr("shape"), tr(".grad before"), tr("this call added"), tr(".grad after")]
        rows = [[leaf.name, f"{fmt_shape(leaf.shape)} {leaf.dtype}", leaf.before.short, leaf.added.short,
                 leaf.after.short] for leaf in leaves]
        statuses = [leaf.status for leaf in leaves]
    else:
        groups: dict[str, list[LeafGrad]] = {}
        for leaf in call.leaves:
            groups.setdefault(leaf.group or leaf.name, []).append(leaf)
        rows, statuses = [], []
        for name, members in groups.items():
            def norm(pick: str, members: list[LeafGrad] = members) -> str:
                values = [getattr(m, pick) for m in members]
                if all(v.text == "None" for v in values):
                    return "None"
                return fmt_number(_combined([v.norm for v in values]), 3)

            elements = sum(math.prod(m.shape) for m in members)
            rows.append([name, f"{elements:,} ({len(members)})", norm("before"), norm("added"), norm("after")])
            bad = [m.status for m in members if m.status != "ok"]
            statuses.append("non-finite" if "non-finite" in bad else ("accumulated" if bad else "ok"))
        order = sorted(range(len(rows)), key=lambda k: (statuses[k] == "ok", _natural(rows[k][0])))
        rows, statuses = [rows[k] for k in order], [statuses[k] for k in order]
        caption = trn("{n} leaf, one row per module: its parameters (tensors), norms of their .grad",
                      "{n} leaves, one row per module: its parameters (tensors), norms of their .grad",
                      len(call.leaves))
        headers = [tr("module"), tr("parameters"), tr(".grad before"), tr("this call added"), tr(".grad after")]
    if rows and all(row[2] == "None" for row in rows):
        none = tr(".grad was None before this call")
        caption = tr("{caption}; {more}", caption=caption, more=none) if caption else none
        headers = headers[:2] + headers[3:]
        rows = [row[:2] + row[3:] for row in rows]
    return LeafTable(caption, headers, rows, statuses)


def _call_head(call: BackwardCall) -> str:
    loss = f" = {fmt_number(call.loss)}" if call.loss is not None else ""
    return tr("#{index} {kind} on {root}{value} {shape} {dtype}", index=call.index, kind=call.kind, root=call.root,
              value=loss, shape=fmt_shape(call.root_shape), dtype=call.root_dtype)


def _call_short(call: BackwardCall) -> str:
    return tr("#{index} {kind} on {root}", index=call.index, kind=call.kind, root=call.root)


def _raised(call: BackwardCall) -> str:
    return tr("raised {error} (the message is in the traceback below)", error=call.error)


def _call_meta(call: BackwardCall) -> str:
    meta = tr("gradient: {gradient}", gradient=call.gradient)
    return meta + (" · retain_graph=True" if call.retain_graph else "")


def _line_label(line: int) -> str:
    return tr("line {line}:", line=line)


def _fix_word() -> str:
    return tr("Fix:")


def _lead(label: str) -> str:
    """``label`` followed by what separates it from the text after it: a space, none after a full-width colon."""
    return label if label.endswith("：") else label + " "


def _times(note: Note) -> str:
    if note.count > 1 and note.kind != "accumulated":
        return tr(" (×{n} in this cell)", n=note.count)
    return ""


def _matches(jac: Jacobian) -> str:
    if jac.matches:
        return tr("v·J matches what backward() computed")
    return tr("v·J differs from what backward() computed")


# -- HTML -------------------------------------------------------------------------
def _call_html(call: BackwardCall) -> str:
    out = (f'<div class="tm-title">{esc(_call_head(call))} <span class="tm-muted">{esc(_line_label(call.line))} '
           f"<code>{esc(call.source)}</code></span></div>")
    nodes = trn("{n} node", "{n} nodes", call.graph_nodes)
    out += f'<div class="tm-muted">{esc(_call_meta(call))} · {esc(nodes)}</div>'
    if call.error:
        out += f'<div class="tm-error">{esc(_raised(call))}</div>'
    if call.leaves:
        t = leaf_rows(call)
        cells = [[f"<code>{esc(c)}</code>" if k != 1 else esc(c) for k, c in enumerate(row)]
                 + [f'<span class="{"tm-ok" if s == "ok" else "tm-warn"}">{esc(_status(s))}</span>']
                 for row, s in zip(t.rows, t.statuses)]
        if t.caption:
            out += f'<div class="tm-muted">{esc(t.caption)}</div>'
        out += table([*t.headers, ""], cells, escape=False)
    if call.results:
        out += table([tr("input"), tr("gradient returned")], [[n, v] for n, v in call.results])
    return out


def _jacobian_html(jac: Jacobian) -> str:
    title = esc(tr("Jacobian of {output} {shape}")).format(output=f"<code>{esc(jac.output)}</code>",
                                                         shape=esc(fmt_shape(jac.output_shape)))
    out = f'<div class="tm-title">{title}</div>'
    if jac.note:
        out += f'<div class="tm-muted">{esc(jac.note)}</div>'
    if not jac.matrix:
        return out
    rows = [[r, *(fmt_number(v) for v in row)] for r, row in zip(jac.rows, jac.matrix)]
    out += table([tr("J = ∂out/∂leaf"), *jac.columns], rows)
    out += table(["", *jac.rows], [["v (gradient=)", *(fmt_number(x) for x in jac.v)]])
    prod = [["v·J", *(fmt_number(x) for x in jac.vj)]]
    if jac.backward:
        prod.append([tr("backward() gave"), *(fmt_number(x) for x in jac.backward)])
    out += table(["", *jac.columns], prod)
    if jac.matches is not None:
        out += f'<div class="{"tm-ok" if jac.matches else "tm-error"}">{esc(_matches(jac))}</div>'
    return out


def _note_html(note: Note) -> str:
    warn = note.kind != "info"
    fix = f'<div class="tm-muted"><b>{esc(_fix_word())}</b> {esc(note.fix)}</div>' if note.fix else ""
    icon = "⚠ " if warn else ""
    return (f'<div{_BOX_WARN if warn else ""}><div class="{"tm-warn" if warn else "tm-muted"}">'
            f"{icon}{esc(note.message)}{esc(_times(note))}</div>{fix}</div>")


def _calls_html(report: AutogradReport) -> str:
    if report.loop is not None:
        n = len(report.calls)
        body = "".join(_call_html(c) for c in report.calls)
        first = tr("The first {n} of {total} backward() calls in detail", n=n, total=report.calls_total)
        inner = details(first, body) if n else ""
        return loop_html(report.loop) + inner
    shown, rest = report.calls[:FULL_CALLS], report.calls[FULL_CALLS:]
    body = "".join(_call_html(c) for c in shown)
    if rest:
        more = trn("{n} more recorded call", "{n} more recorded calls", len(rest))
        body += details(more, "".join(_call_html(c) for c in rest))
    return details(tr("backward() calls ({n})", n=report.calls_total), body, open_=True)


def to_html(report: AutogradReport) -> str:
    parts = [f'<div class="tm-title">{esc(report.title)} ', *(badge(s) for s in _summary(report)), "</div>"]
    if report.explanation is not None:
        ex = report.explanation
        fix = f"<div><b>{esc(_fix_word())}</b> {esc(ex.fix)}</div>"
        parts.append(f"<div{_BOX_ERROR}><div>{esc(ex.plain)}</div>{fix}</div>")
    parts.extend(_note_html(note) for note in report.notes)
    if report.nothing:
        parts.append(f'<div class="tm-muted">{esc(report.nothing)}</div>')
    g = report.graph
    if g is not None and g.nodes:
        parts.append(details(tr("Backward graph"), graph_html(g, report.drills), open_=True))
    if report.leaves:
        parts.append(table([tr("leaf"), ".grad"], report.leaves))
    if report.calls or report.loop is not None:
        parts.append(_calls_html(report))
    if report.untracked:
        rows = [[str(u.line), u.source, _untracked_word(u.kind), u.op, ", ".join(u.inputs), u.output or "",
                 str(u.count)] for u in report.untracked]
        headers = [tr("line"), tr("code"), tr("why"), tr("op"), tr("from"), tr("result"), tr("times")]
        parts.append(details(tr("Not tracked by autograd"), table(headers, rows), open_=True))
    for jac in report.jacobians:
        parts.append(details(tr("Jacobian and v·J"), _jacobian_html(jac), open_=True))
    return wrap("".join(parts), "autograd")


_UNTRACKED = {
    "no_grad": N_("under torch.no_grad(): result has no grad_fn"),
    "inference_mode": N_("under inference_mode(): an inference tensor"),
    "detach": N_(".detach(): graph cut here"),
    "data": N_("written through .data: autograd does not see the change"),
}


def _untracked_word(kind: str) -> str:
    return tr(_UNTRACKED[kind]) if kind in _UNTRACKED else kind


# -- terminal -----------------------------------------------------------------------
def _columns(headers: list[str], rows: list[list[str]], styles: Sequence[str] = (), indent: str = "  ",
             width: int = 40, total: int = 80) -> list[Line]:
    """Rows padded into columns, measured in terminal cells, that fit ``total`` cells.

    Cells longer than ``width`` are cut with …; when the columns before the
    last one leave the last fewer than 24 cells, the widest of them is cut
    further (the last column is never padded, so it may wrap in a narrow terminal).
    """
    from rich.cells import cell_len

    cut = [[clip(c, width) for c in row] for row in [headers, *rows]]
    widths = [max(cell_len(row[k]) for row in cut) for k in range(len(headers))]
    room = total - cell_len(indent) - 2 * (len(widths) - 1) - min(widths[-1], 24)
    while len(widths) > 1 and sum(widths[:-1]) > room and max(widths[:-1]) > 8:
        k = max(range(len(widths) - 1), key=lambda i: widths[i])
        widths[k] -= 1
    cut = [[clip(c, widths[k]) if k < len(widths) - 1 else c for k, c in enumerate(row)] for row in cut]
    out = [Line(indent, ("  ".join(pad(h, w) for h, w in zip(cut[0], widths)).rstrip(), "dim"))]
    for k, row in enumerate(cut[1:]):
        line = Line(indent)
        for j, (cell, w) in enumerate(zip(row, widths)):
            style = styles[k] if j == len(row) - 1 and k < len(styles) else ""
            line.add(pad(cell, w) if j < len(row) - 1 else cell, style)
            if j < len(row) - 1:
                line.add("  ")
        out.append(line)
    return out


def _call_lines(call: BackwardCall) -> list[Line]:
    out = [Line((_call_head(call), "bold"), ("  " + _lead(_line_label(call.line)), "dim"), (call.source, "dim"))]
    out.append(Line("  ", (_call_meta(call), "dim")))
    if call.error:
        out.append(Line("  ", (_raised(call), "red")))
    if call.leaves:
        t = leaf_rows(call)
        if t.caption:
            out.append(Line("  ", (t.caption, "dim")))
        styles = ["green" if s == "ok" else "yellow" for s in t.statuses]
        out.extend(_columns([*t.headers, ""], [[*r, _status(s)] for r, s in zip(t.rows, t.statuses)], styles,
                            width=30))
    if call.results:
        out.extend(_columns([tr("input"), tr("gradient returned")], [[n, v] for n, v in call.results]))
    return out


def _jacobian_lines(jac: Jacobian) -> list[Line]:
    out = [Line((tr("Jacobian of {output} {shape}", output=jac.output, shape=fmt_shape(jac.output_shape)), "bold"))]
    if jac.note:
        out.append(Line((jac.note, "dim")))
    if jac.matrix:
        rows = [[r, *(fmt_number(v) for v in row)] for r, row in zip(jac.rows, jac.matrix)]
        rows.append(["v·J", *(fmt_number(v) for v in jac.vj)])
        if jac.backward:
            rows.append(["backward()", *(fmt_number(v) for v in jac.backward)])
        out.extend(_columns(["J", *jac.columns], rows))
        out.append(Line(("v = " + ", ".join(fmt_number(x) for x in jac.v), "dim")))
        if jac.matches is not None:
            out.append(Line((_matches(jac), "green" if jac.matches else "red")))
    return out


def _note_lines(note: Note) -> list[Line]:
    warn = note.kind != "info"
    out = [Line((("⚠ " if warn else "") + note.message + _times(note), "yellow" if warn else "dim"))]
    if note.fix:
        out.append(Line(("  " + _lead(_fix_word()), "bold"), note.fix))
    return out


def to_rich(report: AutogradReport) -> Any:
    items = [Line((report.title, "bold"), ("  " + " · ".join(_summary(report)), "dim"))]
    if report.explanation is not None:
        ex = report.explanation
        items += [Line((ex.plain, "red")), Line((_lead(_fix_word()), "bold"), ex.fix)]
    for note in report.notes:
        items.extend(_note_lines(note))
    if report.nothing:
        items.append(Line((report.nothing, "dim")))
    g = report.graph
    if g is not None and g.nodes:
        from torchmagic.autograd.render_graph import graph_messages

        items.extend(Line((m, "dim")) for m in graph_messages(g))
        items.extend(graph_lines(g))
    if report.leaves:
        items.extend(_columns([tr("leaf"), ".grad"], [list(pair) for pair in report.leaves], width=80))
    if report.loop is not None:
        items.extend(loop_lines(report.loop))
        if report.calls:
            items.append(Line((tr("The first {n} of {total} backward() calls are kept in full in the report "
                                  "(-o NAME: NAME.calls).", n=len(report.calls), total=report.calls_total), "dim")))
    else:
        for call in report.calls[:FULL_CALLS]:
            items.extend(_call_lines(call))
        for call in report.calls[FULL_CALLS:]:
            flag = "  " + _status("accumulated") if any(leaf.accumulated for leaf in call.leaves) else ""
            items.append(Line(_call_short(call), ("  " + tr("line {line}", line=call.line), "dim"),
                              (flag, "yellow")))
    if report.untracked:
        items.append(Line((tr("not tracked by autograd"), "bold")))
        rows = [[str(u.line) + (f" ×{u.count}" if u.count > 1 else ""), u.source, ", ".join(u.inputs), u.output,
                 _untracked_word(u.kind)] for u in report.untracked]
        items.extend(_columns([tr("line"), tr("code"), tr("from"), tr("result"), tr("why")], rows, width=60))
    for jac in report.jacobians:
        items.extend(_jacobian_lines(jac))
    return Block(items)

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
from torchmagic.autograd.values import fmt_number
from torchmagic.core.html import badge, details, esc, table, wrap
from torchmagic.core.lines import Block, Line
from torchmagic.core.meta import fmt_shape

if TYPE_CHECKING:
    from torchmagic.autograd.report import AutogradReport, BackwardCall, Jacobian, LeafGrad, Note

__all__ = ["to_html", "to_rich", "leaf_rows", "LeafTable", "FULL_CALLS", "GROUP_LEAVES"]

FULL_CALLS = 3  # backward calls shown with their full leaf table; later ones in one line
GROUP_LEAVES = 12  # calls with more leaves show one row per module
_BOX_WARN = ' style="border-left:3px solid var(--jp-warn-color1, #b35900);padding:2px 8px;margin:4px 0"'
_BOX_ERROR = ' style="border-left:3px solid var(--jp-error-color1, #c62828);padding:2px 8px;margin:4px 0"'
_STATUS = {"ok": "ok", "accumulated": "⚠ accumulated", "non-finite": "⚠ non-finite"}


def _summary(report: AutogradReport) -> list[str]:
    parts: list[str] = []
    g = report.graph
    if g is not None and g.nodes:
        parts.append(f"{g.total_nodes} graph nodes")
    if report.calls_total:
        parts.append(f"{report.calls_total} backward call{'s' if report.calls_total != 1 else ''}")
    if report.accumulated:
        parts.append("gradient accumulated")
    if any(n.kind == "nonfinite" for n in report.notes):
        parts.append("non-finite gradient")
    if report.untracked:
        parts.append(f"{len(report.untracked)} untracked")
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
        headers = ["leaf", "shape", ".grad before", "this call added", ".grad after"]
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
        caption = f"{len(call.leaves)} leaves, one row per module: its parameters (tensors), norms of their .grad"
        headers = ["module", "parameters", ".grad before", "this call added", ".grad after"]
    if rows and all(row[2] == "None" for row in rows):
        caption += ("; " if caption else "") + ".grad was None before this call"
        headers = headers[:2] + headers[3:]
        rows = [row[:2] + row[3:] for row in rows]
    return LeafTable(caption, headers, rows, statuses)


def _call_head(call: BackwardCall) -> str:
    loss = f" = {fmt_number(call.loss)}" if call.loss is not None else ""
    return f"#{call.index} {call.kind} on {call.root}{loss} {fmt_shape(call.root_shape)} {call.root_dtype}"


def _raised(call: BackwardCall) -> str:
    return f"raised {call.error} (the message is in the traceback below)"


# -- HTML -------------------------------------------------------------------------
def _call_html(call: BackwardCall) -> str:
    out = (f'<div class="tm-title">{esc(_call_head(call))} <span class="tm-muted">line {call.line}: '
           f"<code>{esc(call.source)}</code></span></div>")
    meta = f"gradient: {call.gradient}" + (" · retain_graph=True" if call.retain_graph else "")
    out += f'<div class="tm-muted">{esc(meta)} · {call.graph_nodes} nodes</div>'
    if call.error:
        out += f'<div class="tm-error">{esc(_raised(call))}</div>'
    if call.leaves:
        t = leaf_rows(call)
        cells = [[f"<code>{esc(c)}</code>" if k != 1 else esc(c) for k, c in enumerate(row)]
                 + [f'<span class="{"tm-ok" if s == "ok" else "tm-warn"}">{esc(_STATUS[s])}</span>']
                 for row, s in zip(t.rows, t.statuses)]
        if t.caption:
            out += f'<div class="tm-muted">{esc(t.caption)}</div>'
        out += table([*t.headers, ""], cells, escape=False)
    if call.results:
        out += table(["input", "gradient returned"], [[n, v] for n, v in call.results])
    return out


def _jacobian_html(jac: Jacobian) -> str:
    out = f'<div class="tm-title">Jacobian of <code>{esc(jac.output)}</code> {esc(fmt_shape(jac.output_shape))}</div>'
    if jac.note:
        out += f'<div class="tm-muted">{esc(jac.note)}</div>'
    if not jac.matrix:
        return out
    rows = [[r, *(fmt_number(v) for v in row)] for r, row in zip(jac.rows, jac.matrix)]
    out += table(["J = ∂out/∂leaf", *jac.columns], rows)
    out += table(["", *jac.rows], [["v (gradient=)", *(fmt_number(x) for x in jac.v)]])
    prod = [["v·J", *(fmt_number(x) for x in jac.vj)]]
    if jac.backward:
        prod.append(["backward() gave", *(fmt_number(x) for x in jac.backward)])
    out += table(["", *jac.columns], prod)
    if jac.matches is not None:
        cls, word = ("tm-ok", "v·J matches what backward() computed") if jac.matches else (
            "tm-error", "v·J differs from what backward() computed")
        out += f'<div class="{cls}">{esc(word)}</div>'
    return out


def _note_html(note: Note) -> str:
    warn = note.kind != "info"
    times = f" (×{note.count} in this cell)" if note.count > 1 and note.kind != "accumulated" else ""
    fix = f'<div class="tm-muted"><b>Fix:</b> {esc(note.fix)}</div>' if note.fix else ""
    icon = "⚠ " if warn else ""
    return (f'<div{_BOX_WARN if warn else ""}><div class="{"tm-warn" if warn else "tm-muted"}">'
            f"{icon}{esc(note.message)}{esc(times)}</div>{fix}</div>")


def _calls_html(report: AutogradReport) -> str:
    if report.loop is not None:
        n = len(report.calls)
        body = "".join(_call_html(c) for c in report.calls)
        inner = details(f"The first {n} of {report.calls_total} backward() calls in detail", body) if n else ""
        return loop_html(report.loop) + inner
    shown, rest = report.calls[:FULL_CALLS], report.calls[FULL_CALLS:]
    body = "".join(_call_html(c) for c in shown)
    if rest:
        body += details(f"{len(rest)} more recorded call(s)", "".join(_call_html(c) for c in rest))
    return details(f"backward() calls ({report.calls_total})", body, open_=True)


def to_html(report: AutogradReport) -> str:
    parts = [f'<div class="tm-title">{esc(report.title)} ', *(badge(s) for s in _summary(report)), "</div>"]
    if report.explanation is not None:
        ex = report.explanation
        parts.append(f"<div{_BOX_ERROR}><div>{esc(ex.plain)}</div><div><b>Fix:</b> {esc(ex.fix)}</div></div>")
    parts.extend(_note_html(note) for note in report.notes)
    if report.nothing:
        parts.append(f'<div class="tm-muted">{esc(report.nothing)}</div>')
    g = report.graph
    if g is not None and g.nodes:
        parts.append(details("Backward graph", graph_html(g, report.drills), open_=True))
    if report.leaves:
        parts.append(table(["leaf", ".grad"], report.leaves))
    if report.calls or report.loop is not None:
        parts.append(_calls_html(report))
    if report.untracked:
        rows = [[str(u.line), u.source, _untracked_word(u.kind), u.op, ", ".join(u.inputs), u.output or "",
                 str(u.count)] for u in report.untracked]
        parts.append(details("Not tracked by autograd",
                             table(["line", "code", "why", "op", "from", "result", "times"], rows), open_=True))
    for jac in report.jacobians:
        parts.append(details("Jacobian and v·J", _jacobian_html(jac), open_=True))
    return wrap("".join(parts), "autograd")


def _untracked_word(kind: str) -> str:
    return {
        "no_grad": "under torch.no_grad(): result has no grad_fn",
        "inference_mode": "under inference_mode(): an inference tensor",
        "detach": ".detach(): graph cut here",
        "data": "written through .data: autograd does not see the change",
    }.get(kind, kind)


# -- terminal -----------------------------------------------------------------------
def _columns(headers: list[str], rows: list[list[str]], styles: Sequence[str] = (), indent: str = "  ",
             width: int = 40) -> list[Line]:
    """Rows padded into columns (cells longer than ``width`` are cut with …)."""
    cut = [[c if len(c) <= width else c[: width - 1] + "…" for c in row] for row in [headers, *rows]]
    widths = [max(len(row[k]) for row in cut) for k in range(len(headers))]
    out = [Line(indent, ("  ".join(h.ljust(w) for h, w in zip(cut[0], widths)).rstrip(), "dim"))]
    for k, row in enumerate(cut[1:]):
        line = Line(indent)
        for j, (cell, w) in enumerate(zip(row, widths)):
            style = styles[k] if j == len(row) - 1 and k < len(styles) else ""
            line.add(cell.ljust(w) if j < len(row) - 1 else cell, style)
            if j < len(row) - 1:
                line.add("  ")
        out.append(line)
    return out


def _call_lines(call: BackwardCall) -> list[Line]:
    out = [Line((_call_head(call), "bold"), (f"  line {call.line}: ", "dim"), (call.source, "dim"))]
    meta = f"gradient: {call.gradient}" + (" · retain_graph=True" if call.retain_graph else "")
    out.append(Line("  ", (meta, "dim")))
    if call.error:
        out.append(Line("  ", (_raised(call), "red")))
    if call.leaves:
        t = leaf_rows(call)
        if t.caption:
            out.append(Line("  ", (t.caption, "dim")))
        styles = ["green" if s == "ok" else "yellow" for s in t.statuses]
        out.extend(_columns([*t.headers, ""], [[*r, _STATUS[s]] for r, s in zip(t.rows, t.statuses)], styles,
                            width=30))
    if call.results:
        out.extend(_columns(["input", "gradient returned"], [[n, v] for n, v in call.results]))
    return out


def _jacobian_lines(jac: Jacobian) -> list[Line]:
    out = [Line(("Jacobian of ", "bold"), (jac.output, "bold cyan"), f" {fmt_shape(jac.output_shape)}")]
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
            out.append(Line(("v·J matches what backward() computed", "green") if jac.matches
                            else ("v·J differs from what backward() computed", "red")))
    return out


def _note_lines(note: Note) -> list[Line]:
    warn = note.kind != "info"
    times = f" (×{note.count} in this cell)" if note.count > 1 and note.kind != "accumulated" else ""
    out = [Line((("⚠ " if warn else "") + note.message + times, "yellow" if warn else "dim"))]
    if note.fix:
        out.append(Line(("  Fix: ", "bold"), note.fix))
    return out


def to_rich(report: AutogradReport) -> Any:
    items = [Line((report.title, "bold"), ("  " + " · ".join(_summary(report)), "dim"))]
    if report.explanation is not None:
        ex = report.explanation
        items += [Line((ex.plain, "red")), Line(("Fix: ", "bold"), ex.fix)]
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
        items.extend(_columns(["leaf", ".grad"], [list(pair) for pair in report.leaves], width=80))
    if report.loop is not None:
        items.extend(loop_lines(report.loop))
        if report.calls:
            items.append(Line(((f"The first {len(report.calls)} of {report.calls_total} backward() calls are kept "
                               "in full in the report (-o NAME: NAME.calls)."), "dim")))
    else:
        for call in report.calls[:FULL_CALLS]:
            items.extend(_call_lines(call))
        for call in report.calls[FULL_CALLS:]:
            flag = "  ⚠ accumulated" if any(leaf.accumulated for leaf in call.leaves) else ""
            items.append(Line(f"#{call.index} {call.kind} on {call.root}", (f"  line {call.line}", "dim"),
                              (flag, "yellow")))
    if report.untracked:
        items.append(Line(("not tracked by autograd", "bold")))
        rows = [[str(u.line), u.source, _untracked_word(u.kind), ", ".join(u.inputs), u.output,
                 f"×{u.count}" if u.count > 1 else ""] for u in report.untracked]
        items.extend(_columns(["line", "code", "why", "from", "result", ""], rows, width=60))
    for jac in report.jacobians:
        items.extend(_jacobian_lines(jac))
    return Block(items)

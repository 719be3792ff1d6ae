"""Draw a cell trace: one row per op site, shapes in and out, what happened to memory.

HTML for notebooks (a table, broadcasting diagrams inline, the annotated
source in a collapsible section) and rich for terminals (the same table; the
annotated source with ``--source``).  Layout only: every value comes from the
report, and every user-derived string is escaped or wrapped as literal text.
"""

from __future__ import annotations

from torchmagic.core.broadcast import Alignment
from torchmagic.core.html import badge, details, esc, wrap
from torchmagic.core.lines import Block, Line
from torchmagic.core.meta import fmt_shape
from torchmagic.errors.render import (
    alignment_html,
    alignment_lines,
    explanation_html,
    explanation_lines,
    lines_to_text,
)
from torchmagic.errors.report import Operand
from torchmagic.trace.report import INPLACE, SAME, VIEW, AnnotatedLine, OpRow, TraceReport, Variant

__all__ = ["to_html", "to_rich", "annotated_text", "is_scalar_broadcast"]

_EFFECT_TEXT = {VIEW: "view", INPLACE: "in-place", SAME: "same tensor", "new": "new", "": "", "error": "failed"}
_EFFECT_STYLE = {VIEW: "cyan", INPLACE: "yellow", SAME: "dim", "new": "dim", "": "", "error": "bold red"}


def annotated_text(lines: list[AnnotatedLine]) -> str:
    """The cell with ``# shapes`` comments aligned in one column (plain text, copyable)."""
    width = max((len(a.text) for a in lines if a.comment), default=0)
    out = []
    for a in lines:
        out.append(f"{a.text.ljust(width)}  # {a.comment}" if a.comment else a.text)
    return "\n".join(out)


def is_scalar_broadcast(al: Alignment) -> bool:
    """Only Python numbers / 0-d tensors are stretched: a one-line note, not a diagram."""
    return len({o.shape for o in al.operands if o.shape}) <= 1


def _code(row: OpRow) -> str:
    return row.expression or row.source


# -- HTML ------------------------------------------------------------------------------
def _ops_html(ops: tuple[Operand, ...]) -> str:
    return "<br>".join(f"<code>{esc(o.label)}</code> <span class=\"tm-muted\">{esc(o.short())}</span>"
                       for o in ops if o.kind != "value")


def _notes_html(var: Variant, row: OpRow, first: bool) -> str:
    parts = []
    effect = _EFFECT_TEXT.get(var.effect, var.effect)
    if effect:
        cls = {VIEW: "tm-accent", INPLACE: "tm-warn", "error": "tm-error"}.get(var.effect, "tm-muted")
        parts.append(badge(effect, cls))
    parts.extend(f"<span>{esc(n)}</span>" for n in var.notes)
    if var.broadcast is not None:
        if is_scalar_broadcast(var.broadcast):
            parts.append('<span class="tm-muted">scalar broadcast</span>')
        else:
            parts.append(details("broadcast", alignment_html(var.broadcast), open_=True))
    if first:
        parts.extend(f'<div class="tm-warn">⚠ {esc(w)}</div>' for w in row.warnings)
        if row.children:
            kids = ", ".join(f"{name} ×{n}" if n > 1 else name for name, n in row.children)
            if row.children_other:
                kids += f", … {row.children_other} more"
            parts.append(details(f"aten ops ({sum(n for _, n in row.children)})", f"<code>{esc(kids)}</code>"))
    return " ".join(parts)


def _rows_html(report: TraceReport) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("line", "code", "op", "inputs", "output", "notes", "×"))
    body = []
    for row in report.rows:
        variants = row.variants or [Variant((), ())]
        for k, var in enumerate(variants):
            if k == 0:
                code = f"<code>{esc(_code(row))}</code>"
                if row.via:
                    code += ' <span class="tm-muted">(inside)</span>'
                lead = f"<td>{esc(row.line)}</td><td>{code}</td><td><b>{esc(row.op)}</b></td>"
            else:
                lead = '<td></td><td></td><td class="tm-muted">″</td>'
            count = str(var.count) if row.variants else str(row.count)
            body.append(
                f"<tr>{lead}<td>{_ops_html(var.inputs)}</td><td>{_ops_html(var.outputs)}</td>"
                f"<td>{_notes_html(var, row, k == 0)}</td><td>{esc(count)}</td></tr>"
            )
        if row.other_count:
            body.append(f'<tr><td></td><td></td><td class="tm-muted" colspan="5">… {esc(row.other_count)} more '
                        "with other shapes</td></tr>")
    return f'<table class="tm-table tm-trace"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def to_html(report: TraceReport) -> str:
    parts = [f'<div class="tm-title">%%tensorinfo <span class="tm-muted">{esc(report.summary())}</span></div>']
    if report.error is not None:
        parts.append(explanation_html(report.error))
    if report.deep_note:
        parts.append(f'<div class="tm-muted">--deep: {esc(report.deep_note)}</div>')
    source = f"<pre>{esc(annotated_text(report.annotated))}</pre>"
    if report.view == "source":
        parts.append(source)
    else:
        if report.rows:
            parts.append(_rows_html(report))
        else:
            parts.append('<div class="tm-muted">no torch operations ran on this cell\'s lines</div>')
        if report.annotated:
            parts.append(details("annotated source", source))
    return wrap("".join(parts), "trace")


# -- rich -----------------------------------------------------------------------------
def _short(o: Operand, default_dtype: str) -> str:
    """``(2, 3)``, plus the dtype when it is not the default and the device when not the CPU."""
    if o.kind == "scalar":
        return "scalar"
    text = fmt_shape(o.shape or ())
    if o.dtype and o.dtype != default_dtype:
        text += f" {o.dtype}"
    if o.device and o.device != "cpu":
        text += f" {o.device}"
    return text


def _shapes_rich(var: Variant, row: OpRow, default_dtype: str) -> Line:
    out = Line()
    ins = [o for o in var.inputs if o.kind != "value"]
    for i, o in enumerate(ins):
        if i:
            out.add(", ")
        if o.kind == "scalar":
            out.add(o.label)
        else:
            out.add(o.label, "bold")
            out.add(" ")
            out.add(_short(o, default_dtype), "cyan")
    if var.outputs:
        out.add(" → " if ins else "→ ")
        for i, o in enumerate(var.outputs):
            if i:
                out.add(", ")
            if o.named:
                out.add(o.label, "bold")
                out.add(" ")
            out.add(_short(o, default_dtype), "cyan")
    elif var.effect == "error":
        out.add(" → ✗", "bold red")
    return out


def _notes_rich(var: Variant, row: OpRow, first: bool) -> Line:
    out = Line()
    effect = _EFFECT_TEXT.get(var.effect, var.effect)
    if effect and effect != "new":
        out.add(effect, _EFFECT_STYLE.get(var.effect, ""))
    for n in var.notes:
        out.add("  " if out.parts else "")
        out.add(n)
    if var.broadcast is not None and is_scalar_broadcast(var.broadcast):
        out.add("  " if out.parts else "")
        out.add("scalar broadcast", "dim")
    if first and row.children:
        kids = ", ".join(f"{name} ×{n}" if n > 1 else name for name, n in row.children)
        if row.children_other:
            kids += f", … {row.children_other} more"
        out.add("  " if out.parts else "")
        out.add(f"[{kids}]", "dim")
    return out


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _line_group(rows: list[OpRow], default_dtype: str) -> list[Line]:
    """One source line's ops as padded text lines (rich Tables cost ~1 ms each to measure)."""
    first = rows[0]
    items: list[Line] = [Line((f"{first.line:>3} │ ", "dim"), first.source)]
    w_op = min(max(len(r.op) for r in rows), 18)
    w_code = min(max(len(r.expression) + (9 if r.via else 0) for r in rows), 34)
    for row in rows:
        variants = row.variants or [Variant((), ())]
        for k, var in enumerate(variants):
            line = Line("    ")
            if k == 0:
                line.add(_fit(row.op, w_op).ljust(w_op), "bold")
                code = row.expression + (" (inside)" if row.via else "")
                line.add("  ")
                line.add(_fit(code, w_code).ljust(w_code), "italic")
            else:
                line.add("″".ljust(w_op), "dim")
                line.add(" " * (w_code + 2))
            line.add("  ")
            line.add(_shapes_rich(var, row, default_dtype))
            notes = _notes_rich(var, row, k == 0)
            if notes.parts:
                line.add("  ")
                line.add(notes)
            count = var.count if row.variants else row.count
            if count > 1:
                line.add(f"  ×{count}", "magenta")
            items.append(line)
            if var.broadcast is not None and not is_scalar_broadcast(var.broadcast):
                items.extend(Line("      ", al) for al in alignment_lines(var.broadcast))
        if row.other_count:
            items.append(Line((f"    {' ' * w_op}  … {row.other_count} more with other shapes", "dim")))
        for w in row.warnings:
            items.append(Line("      ", ("⚠ ", "yellow"), (w, "yellow")))
    return items


def to_rich(report: TraceReport) -> Block:
    items: list[Line] = [Line(("%%tensorinfo ", "bold"), (report.summary(), "dim"))]
    if report.error is not None:
        items.extend(explanation_lines(report.error))
    if report.deep_note:
        items.append(Line((f"--deep: {report.deep_note}", "dim")))
    if report.view == "source":
        items.append(Line(annotated_text(report.annotated)))
    elif report.rows:
        groups: list[list[OpRow]] = []
        for row in report.rows:
            if groups and groups[-1][0].line == row.line:
                groups[-1].append(row)
            else:
                groups.append([row])
        for group in groups:
            items.extend(_line_group(group, report.default_dtype))
    else:
        items.append(Line(("no torch operations ran on this cell's lines", "dim")))
    return lines_to_text(items)

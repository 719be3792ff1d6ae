"""Draw a cell trace: one row per op site, shapes in and out, what happened to memory.

HTML for notebooks (a table, broadcasting diagrams inline, the module tree
as nested ``<details>`` inside it, the annotated source in a collapsible
section) and rich for terminals (the same rows grouped by line, the module
tree as an indented block; the annotated source with ``--source``).  The
module summary table comes first (:mod:`torchmagic.trace.render_modules`).
Layout only: every value comes from the report, and every user-derived
string is escaped or wrapped as literal text.
"""

from __future__ import annotations

from torchmagic.core.html import details, esc, wrap
from torchmagic.core.lines import Block, Line
from torchmagic.errors.render import explanation_html, explanation_lines, lines_to_text
from torchmagic.i18n import tr
from torchmagic.trace.render_modules import module_lines, module_tree_html, summary_html, summary_lines
from torchmagic.trace.render_nan import nan_html, nan_lines
from torchmagic.trace.render_ops import HEADERS, headers, is_scalar_broadcast, op_lines, op_trs
from torchmagic.trace.report import AnnotatedLine, OpRow, TraceReport

__all__ = ["to_html", "to_rich", "annotated_text", "is_scalar_broadcast"]


def annotated_text(lines: list[AnnotatedLine]) -> str:
    """The cell with ``# shapes`` comments aligned in one column (plain text, copyable)."""
    width = max((len(a.text) for a in lines if a.comment), default=0)
    out = []
    for a in lines:
        out.append(f"{a.text.ljust(width)}  # {a.comment}" if a.comment else a.text)
    return "\n".join(out)


def _rows_html(report: TraceReport) -> str:
    head = headers(HEADERS)
    body: list[str] = []
    for kind, i in report.order or [("op", r.index) for r in report.rows]:
        if kind == "op":
            row = report.rows[i]
            body.extend(op_trs(row, esc(row.line)))
        else:
            m = report.modules[i]
            if not m.folded:
                body.append(f'<tr><td>{esc(m.line)}</td><td colspan="{len(HEADERS) - 1}">'
                            f"{module_tree_html(report, m, 0)}</td></tr>")
    return f'<table class="tm-table tm-trace"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def to_html(report: TraceReport) -> str:
    parts = [f'<div class="tm-title">%%tensorinfo <span class="tm-muted">{esc(report.summary())}</span></div>']
    if report.nan is not None:
        parts.append(nan_html(report.nan))
    parts.extend(f'<div class="tm-warn">⚠ {esc(_note(line, note))}</div>' for line, note in report.notes)
    if report.error is not None:
        parts.append(explanation_html(report.error))
    if report.deep_note:
        parts.append(f'<div class="tm-muted">--deep: {esc(report.deep_note)}</div>')
    source = f"<pre>{esc(annotated_text(report.annotated))}</pre>"
    if report.view == "source":
        parts.append(source)
    else:
        if report.modules:
            parts.append(summary_html(report))
        if report.rows or report.modules:
            parts.append(_rows_html(report))
        else:
            parts.append(f'<div class="tm-muted">{esc(_no_ops())}</div>')
        if report.annotated:
            parts.append(details(tr("annotated source"), source))
    return wrap("".join(parts), "trace")


def _note(line: int, note: str) -> str:
    return tr("line {line}: {note}", line=line, note=note)


def _no_ops() -> str:
    return tr("no torch operations ran on this cell's lines")


# -- rich -----------------------------------------------------------------------------
def _by_line(report: TraceReport) -> list[Line]:
    """The cell's own items in order, under a header per source line."""
    items: list[Line] = []
    current = -1
    pending: list[OpRow] = []

    def flush() -> None:
        if pending:
            items.extend(op_lines(pending, report.default_dtype))
            pending.clear()

    for kind, i in report.order or [("op", r.index) for r in report.rows]:
        row = report.rows[i] if kind == "op" else None
        m = report.modules[i] if kind == "module" else None
        if m is not None and m.folded:
            continue
        line = row.line if row is not None else m.line  # type: ignore[union-attr]
        if line != current:
            flush()
            source = row.source if row is not None else _source_of(report, line)
            items.append(Line((f"{line:>3} │ ", "dim"), source))
            current = line
        if row is not None:
            pending.append(row)
        else:
            flush()
            items.extend(module_lines(report, m, "    "))  # type: ignore[arg-type]
    flush()
    return items


def _source_of(report: TraceReport, line: int) -> str:
    return next((a.text.strip() for a in report.annotated if a.line == line), "")


def to_rich(report: TraceReport) -> Block:
    items: list[Line] = [Line(("%%tensorinfo ", "bold"), (report.summary(), "dim"))]
    if report.nan is not None:
        items.extend(nan_lines(report.nan))
    items.extend(Line(("⚠ ", "yellow"), (_note(line, note), "yellow")) for line, note in report.notes)
    if report.error is not None:
        items.extend(explanation_lines(report.error))
    if report.deep_note:
        items.append(Line((f"--deep: {report.deep_note}", "dim")))
    if report.view == "source":
        items.append(Line(annotated_text(report.annotated)))
    elif report.rows or report.modules:
        if report.modules:
            items.extend(summary_lines(report))
        items.extend(_by_line(report))
    else:
        items.append(Line((_no_ops(), "dim")))
    return lines_to_text(items)

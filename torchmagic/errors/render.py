"""Draw an error explanation and a broadcasting diagram (HTML and rich).

Shared by the trace renderer (an error inside ``%%tensorinfo``) and the
default explainer shown under any failing cell.  Pure layout of report data;
every user-derived string is escaped (HTML) or wrapped as literal text (rich).
"""

from __future__ import annotations

from rich.cells import cell_len

from torchmagic.core.broadcast import ADDED, CLASH, STRETCH, Alignment
from torchmagic.core.html import esc, wrap
from torchmagic.core.lines import Block, Line
from torchmagic.core.meta import fmt_shape
from torchmagic.errors.report import ErrorReport, Explanation, Operand
from torchmagic.i18n import N_, tr

__all__ = [
    "to_html", "to_rich", "explanation_html", "explanation_rich", "explanation_lines",
    "alignment_html", "alignment_rich", "alignment_lines", "lines_to_text",
]

LEGEND = N_("1→n: size 1 stretched · ·→n: dim added on the left · ✗: sizes clash")  # tr() at use


def _cells(al: Alignment) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(label, shape text, [(cell text, mark)]) per operand, then the result row."""
    rows = []
    result = al.result
    for op in al.operands:
        cells = []
        for d, (size, mark) in enumerate(zip(op.padded, op.marks)):
            target = result[d] if result is not None else None
            if mark == ADDED:
                cells.append((f"·→{target}" if target is not None else "·", mark))
            elif mark == STRETCH:
                cells.append((f"1→{target}", mark))
            elif mark == CLASH:
                cells.append((f"{size}✗", mark))
            else:
                cells.append((str(size), mark))
        rows.append((op.label, fmt_shape(op.shape), cells))
    if result is not None:
        rows.append((tr("result"), fmt_shape(result), [(str(s), "") for s in result]))
    else:
        rows.append((tr("result"), tr("error"), [("✗" if d in al.clashes else "", CLASH) for d in range(al.rank)]))
    return rows


def alignment_html(al: Alignment) -> str:
    """The diagram as a small table: one row per operand, one column per output dim."""
    head = "".join(f"<th>{d - al.rank}</th>" for d in range(al.rank))
    body = []
    cls = {CLASH: "tm-error", STRETCH: "tm-accent", ADDED: "tm-muted"}
    for label, shape, cells in _cells(al):
        tds = "".join(f'<td class="{cls.get(m, "")}" style="text-align:right">{esc(c)}</td>' for c, m in cells)
        body.append(f"<tr><th><code>{esc(label)}</code> <span class=\"tm-muted\">{esc(shape)}</span></th>{tds}</tr>")
    dim, legend = esc(tr("dim")), esc(tr(LEGEND))
    return (
        f'<table class="tm-table tm-broadcast"><thead><tr><th>{dim}</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table><div class=\"tm-muted\">{legend}</div>"
    )


def lines_to_text(lines: list[Line], indent: int = 0) -> Block:
    """One renderable for many lines: rich prints it in one pass, wrapping only lines too wide."""
    if indent:
        lines = [Line(" " * indent, line) for line in lines]
    return Block(lines)


def alignment_lines(al: Alignment) -> list[Line]:
    """The diagram as padded text lines: operands right-aligned, one column per dim.

    Widths are terminal cells (``cell_len``): a translated label such as 结果 takes two per character.
    """
    rows = _cells(al)
    dim = tr("dim")
    heads = [f"{label} {shape}" for label, shape, _ in rows]
    w_head = max(cell_len(h) for h in [*heads, dim])
    widths = [max([len(str(d - al.rank))] + [cell_len(cells[d][0]) for _, _, cells in rows]) for d in range(al.rank)]
    styles = {CLASH: "bold red", STRETCH: "cyan", ADDED: "dim"}
    lines = [Line((dim + " " * (w_head - cell_len(dim))
                   + "".join("  " + str(d - al.rank).rjust(w) for d, w in enumerate(widths)), "dim"))]
    for (label, shape, cells), head in zip(rows, heads):
        line = Line((label, "bold"), " ", (shape, "dim"), " " * (w_head - cell_len(head)))
        for (text, mark), w in zip(cells, widths):
            line.add("  ")
            line.add(" " * (w - cell_len(text)) + text, styles.get(mark, ""))
        lines.append(line)
    lines.append(Line((tr(LEGEND), "dim")))
    return lines


def alignment_rich(al: Alignment) -> Block:
    return lines_to_text(alignment_lines(al))


def _short(o: Operand) -> str:
    """An operand in an explanation: its shape and dtype, and whether it is contiguous when it is not."""
    return o.short() if o.contiguous else tr("{operand}, not contiguous", operand=o.short())


def _where(e: Explanation) -> str:
    if e.line is None:
        return ""
    return tr("line {line}: {source}", line=e.line, source=e.source)


def explanation_html(e: Explanation) -> str:
    parts = [f'<div class="tm-title tm-error">{esc(e.title)}</div>']
    if e.line is not None:
        code = f"<code>{esc(e.source)}</code>"
        where = tr("line {line}: {source}", line=esc(e.line), source=code)
        parts.append(f"<div>{where}</div>")
    if e.operands:
        items = "".join(f"<li><code>{esc(o.label)}</code>: {esc(_short(o))}</li>" for o in e.operands)
        parts.append(f"<ul>{items}</ul>")
    if e.broadcast is not None:
        parts.append(alignment_html(e.broadcast))
    for d in e.details:
        parts.append(f'<div class="tm-muted">{esc(d)}</div>')
    if e.hint:
        hint = tr("hint: {hint}", hint=esc(e.hint))
        parts.append(f'<div class="tm-ok">{hint}</div>')
    parts.append(f'<div class="tm-muted">{esc(e.exc_type)}: {esc(e.message)}</div>')
    return f'<div class="tm-explanation">{"".join(parts)}</div>'


def explanation_lines(e: Explanation) -> list[Line]:
    items: list[Line] = [Line((e.title, "bold red"))]
    if e.line is not None:
        items.append(Line(_where(e)))
    for o in e.operands:
        items.append(Line("  ", (o.label, "bold"), ": ", _short(o)))
    if e.broadcast is not None:
        items.extend(alignment_lines(e.broadcast))
    for d in e.details:
        items.append(Line((d, "dim")))
    if e.hint:
        items.append(Line((tr("hint: {hint}", hint=e.hint), "green")))
    items.append(Line((f"{e.exc_type}: {e.message}", "dim")))
    return items


def explanation_rich(e: Explanation) -> Block:
    return lines_to_text(explanation_lines(e))


def to_html(report: ErrorReport) -> str:
    heading = esc(tr("torchmagic explains"))
    heading = f'<div class="tm-muted">{heading}</div>'
    return wrap(heading + explanation_html(report.explanation), "error")


def to_rich(report: ErrorReport) -> Block:
    return lines_to_text([Line((tr("torchmagic explains"), "dim")), *explanation_lines(report.explanation)])

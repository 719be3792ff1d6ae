"""Draw an error explanation and a broadcasting diagram (HTML and rich).

Shared by the trace renderer (an error inside ``%%tensorinfo``) and the
default explainer shown under any failing cell.  Pure layout of report data;
every user-derived string is escaped (HTML) or wrapped as literal text (rich).
"""

from __future__ import annotations

from torchmagic.core.broadcast import ADDED, CLASH, STRETCH, Alignment
from torchmagic.core.html import esc, wrap
from torchmagic.core.lines import Block, Line
from torchmagic.core.meta import fmt_shape
from torchmagic.errors.report import ErrorReport, Explanation, Operand

__all__ = [
    "to_html", "to_rich", "explanation_html", "explanation_rich", "explanation_lines",
    "alignment_html", "alignment_rich", "alignment_lines", "lines_to_text",
]

LEGEND = "1→n: size 1 stretched · ·→n: dim added on the left · ✗: sizes clash"


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
        rows.append(("result", fmt_shape(result), [(str(s), "") for s in result]))
    else:
        rows.append(("result", "error", [("✗" if d in al.clashes else "", CLASH) for d in range(al.rank)]))
    return rows


def alignment_html(al: Alignment) -> str:
    """The diagram as a small table: one row per operand, one column per output dim."""
    head = "".join(f"<th>{d - al.rank}</th>" for d in range(al.rank))
    body = []
    cls = {CLASH: "tm-error", STRETCH: "tm-accent", ADDED: "tm-muted"}
    for label, shape, cells in _cells(al):
        tds = "".join(f'<td class="{cls.get(m, "")}" style="text-align:right">{esc(c)}</td>' for c, m in cells)
        body.append(f"<tr><th><code>{esc(label)}</code> <span class=\"tm-muted\">{esc(shape)}</span></th>{tds}</tr>")
    return (
        f'<table class="tm-table tm-broadcast"><thead><tr><th>dim</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table><div class=\"tm-muted\">{esc(LEGEND)}</div>"
    )


def lines_to_text(lines: list[Line], indent: int = 0) -> Block:
    """One renderable for many lines: rich prints it in one pass, wrapping only lines too wide."""
    if indent:
        lines = [Line(" " * indent, line) for line in lines]
    return Block(lines)


def alignment_lines(al: Alignment) -> list[Line]:
    """The diagram as padded text lines: operands right-aligned, one column per dim."""
    rows = _cells(al)
    heads = [f"{label} {shape}" for label, shape, _ in rows]
    w_head = max(len(h) for h in [*heads, "dim"])
    widths = [max([len(str(d - al.rank))] + [len(cells[d][0]) for _, _, cells in rows]) for d in range(al.rank)]
    styles = {CLASH: "bold red", STRETCH: "cyan", ADDED: "dim"}
    lines = [Line(("dim".ljust(w_head) + "".join("  " + str(d - al.rank).rjust(w) for d, w in enumerate(widths)),
                   "dim"))]
    for (label, shape, cells), head in zip(rows, heads):
        line = Line((label, "bold"), " ", (shape, "dim"), " " * (w_head - len(head)))
        for (text, mark), w in zip(cells, widths):
            line.add("  ")
            line.add(text.rjust(w), styles.get(mark, ""))
        lines.append(line)
    lines.append(Line((LEGEND, "dim")))
    return lines


def alignment_rich(al: Alignment) -> Block:
    return lines_to_text(alignment_lines(al))


def _short(o: Operand) -> str:
    """An operand in an explanation: its shape and dtype, and whether it is contiguous when it is not."""
    return o.short() + ("" if o.contiguous else ", not contiguous")


def _where(e: Explanation) -> str:
    if e.line is None:
        return ""
    return f"line {e.line}: {e.source}"


def explanation_html(e: Explanation) -> str:
    parts = [f'<div class="tm-title tm-error">{esc(e.title)}</div>']
    if e.line is not None:
        parts.append(f'<div>line {esc(e.line)}: <code>{esc(e.source)}</code></div>')
    if e.operands:
        items = "".join(f"<li><code>{esc(o.label)}</code>: {esc(_short(o))}</li>" for o in e.operands)
        parts.append(f"<ul>{items}</ul>")
    if e.broadcast is not None:
        parts.append(alignment_html(e.broadcast))
    for d in e.details:
        parts.append(f'<div class="tm-muted">{esc(d)}</div>')
    if e.hint:
        parts.append(f'<div class="tm-ok">hint: {esc(e.hint)}</div>')
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
        items.append(Line(("hint: ", "green"), (e.hint, "green")))
    items.append(Line((f"{e.exc_type}: {e.message}", "dim")))
    return items


def explanation_rich(e: Explanation) -> Block:
    return lines_to_text(explanation_lines(e))


def to_html(report: ErrorReport) -> str:
    return wrap('<div class="tm-muted">torchmagic explains</div>' + explanation_html(report.explanation), "error")


def to_rich(report: ErrorReport) -> Block:
    return lines_to_text([Line(("torchmagic explains", "dim")), *explanation_lines(report.explanation)])

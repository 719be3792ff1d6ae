r"""One op row of a trace, drawn: the pieces the flat table and the module tree share.

HTML table rows (:func:`op_trs`) and padded terminal lines (:func:`op_lines`)
for :class:`~torchmagic.trace.report.OpRow`\ s: op, code, operands with
shapes, the effect on memory, notes, broadcasting, warnings, ``--deep``'s
aten ops.  Inside a module, operand names are shown relative to it
(``weight`` inside ``net.conv1``).  Every user-derived string is escaped
(HTML) or literal text (rich).
"""

from __future__ import annotations

from rich.cells import cell_len, set_cell_size

from torchmagic.core.broadcast import Alignment
from torchmagic.core.html import badge, details, esc
from torchmagic.core.lines import Line
from torchmagic.core.meta import fmt_shape
from torchmagic.errors.render import alignment_html, alignment_lines
from torchmagic.errors.report import Operand
from torchmagic.i18n import N_, tr
from torchmagic.trace.report import INPLACE, SAME, VIEW, OpRow, Variant

__all__ = ["HEADERS", "op_trs", "op_lines", "is_scalar_broadcast", "relative", "fit", "headers"]

# labels marked here, translated where they are drawn (tr at render time)
_EFFECT_TEXT = {VIEW: N_("view"), INPLACE: N_("in-place"), SAME: N_("same tensor"), "new": N_("new"), "": "",
                "error": N_("failed")}
_EFFECT_STYLE = {VIEW: "cyan", INPLACE: "yellow", SAME: "dim", "new": "dim", "": "", "error": "bold red"}
HEADERS = (N_("line"), N_("code"), N_("op"), N_("inputs"), N_("output"), N_("notes"), "×")


def headers(names: tuple[str, ...]) -> str:
    """Table header cells, translated (``''`` and ``×`` stay as they are)."""
    return "".join(f"<th>{esc(tr(h)) if h not in ('', '×') else h}</th>" for h in names)


def fit(text: str, width: int, right: bool = False) -> str:
    """``text`` cut (with ``…``) or padded to ``width`` terminal cells: Chinese characters take two."""
    if cell_len(text) > width:
        text = set_cell_size(text, width - 1) + "…"
    return " " * (width - cell_len(text)) + text if right else set_cell_size(text, width)


def _effect(effect: str) -> str:
    text = _EFFECT_TEXT.get(effect, effect)
    return tr(text) if text else ""


def _inside() -> str:
    return tr("(inside)")


def is_scalar_broadcast(al: Alignment) -> bool:
    """Only Python numbers / 0-d tensors are stretched: a one-line note, not a diagram."""
    return len({o.shape for o in al.operands if o.shape}) <= 1


def relative(label: str, prefix: str) -> str:
    """A name read from inside module ``prefix``: ``weight`` for ``net.conv1.weight`` inside ``net.conv1``.

    The path the two share is dropped (``enc.layers.0.norm1 →`` inside
    ``enc.layers.0.linear1`` is ``norm1 →``); at least the last part stays.
    """
    if not prefix or "." not in label:
        return label
    parts, mine = label.split("."), prefix.split(".")
    k = 0
    while k < len(mine) and k < len(parts) - 1 and parts[k] == mine[k]:
        k += 1
    return ".".join(parts[k:]) if k else label


def _code(row: OpRow) -> str:
    if row.module >= 0:
        return row.inner
    return row.expression or row.source


def _children_text(row: OpRow) -> str:
    kids = ", ".join(f"{name} ×{n}" if n > 1 else name for name, n in row.children)
    if row.children_other:
        kids += ", " + tr("… {n} more", n=row.children_other)
    return kids


# -- HTML ------------------------------------------------------------------------------
def _ops_html(ops: tuple[Operand, ...], prefix: str) -> str:
    return "<br>".join(f"<code>{esc(relative(o.label, prefix))}</code> <span class=\"tm-muted\">{esc(o.short())}</span>"
                       for o in ops if o.kind != "value")


def _notes_html(var: Variant, row: OpRow, first: bool) -> str:
    parts = []
    effect = _effect(var.effect)
    if effect:
        cls = {VIEW: "tm-accent", INPLACE: "tm-warn", "error": "tm-error"}.get(var.effect, "tm-muted")
        parts.append(badge(effect, cls))
    parts.extend(f"<span>{esc(n)}</span>" for n in var.notes)
    if var.broadcast is not None:
        if is_scalar_broadcast(var.broadcast):
            label = tr("scalar broadcast")  # outside the f-string: pybabel never extracts a tr() inside one
            parts.append(f'<span class="tm-muted">{esc(label)}</span>')
        else:
            parts.append(details(tr("broadcast"), alignment_html(var.broadcast), open_=True))
    if first:
        nan = _nan_note(row)
        if nan:
            parts.append(badge(nan, "tm-error"))
        parts.extend(f'<div class="tm-warn">⚠ {esc(w)}</div>' for w in row.warnings)
        if row.children:
            total = sum(n for _, n in row.children)
            parts.append(details(tr("aten ops ({n})", n=total), f"<code>{esc(_children_text(row))}</code>"))
    return " ".join(parts)


def op_trs(row: OpRow, lead: str, prefix: str = "") -> list[str]:
    """The table rows of one op row (one per shape variant); ``lead`` is the first cell's HTML."""
    out = []
    variants = row.variants or [Variant((), ())]
    for k, var in enumerate(variants):
        if k == 0:
            code = f"<code>{esc(_code(row))}</code>"
            if row.via and row.module < 0:
                code += f' <span class="tm-muted">{esc(_inside())}</span>'
            cells = f"<td>{lead}</td><td>{code}</td><td><b>{esc(row.op)}</b></td>"
        else:
            cells = '<td></td><td></td><td class="tm-muted">″</td>'
        count = str(var.count) if row.variants else str(row.count)
        out.append(
            f"<tr>{cells}<td>{_ops_html(var.inputs, prefix)}</td><td>{_ops_html(var.outputs, prefix)}</td>"
            f"<td>{_notes_html(var, row, k == 0)}</td><td>{esc(count)}</td></tr>"
        )
    if row.other_count:
        out.append(f'<tr><td></td><td></td><td class="tm-muted" colspan="5">{esc(_others(row.other_count))}</td></tr>')
    return out


def _others(n: int) -> str:
    return tr("… {n} more with other shapes", n=n)


# -- rich -------------------------------------------------------------------------------
def _short(o: Operand, default_dtype: str) -> str:
    """``(2, 3)``, plus the dtype when it is not the default and the device when not the CPU."""
    if o.kind == "scalar":
        return tr("scalar")
    text = fmt_shape(o.shape or ())
    if o.dtype and o.dtype != default_dtype:
        text += f" {o.dtype}"
    if o.device and o.device != "cpu":
        text += f" {o.device}"
    return text


def _shapes_rich(var: Variant, default_dtype: str, prefix: str) -> Line:
    out = Line()
    ins = [o for o in var.inputs if o.kind != "value"]
    for i, o in enumerate(ins):
        if i:
            out.add(", ")
        if o.kind == "scalar":
            out.add(o.label)
            continue
        label = relative(o.label, prefix)
        out.add(label, "bold")
        if o.named and label != o.label and o.requires_grad:
            continue  # the module's own parameter: its name says enough here (shapes: HTML, %tensorinfo)
        out.add(" ")
        out.add(_short(o, default_dtype), "cyan")
    if var.outputs:
        out.add(" → " if ins else "→ ")
        for i, o in enumerate(var.outputs):
            if i:
                out.add(", ")
            if o.named:
                out.add(relative(o.label, prefix), "bold")
                out.add(" ")
            out.add(_short(o, default_dtype), "cyan")
    elif var.effect == "error":
        out.add(" → ✗", "bold red")
    return out


def _notes_rich(var: Variant, row: OpRow, first: bool) -> Line:
    out = Line()
    effect = _effect(var.effect) if var.effect != "new" else ""
    if effect:
        out.add(effect, _EFFECT_STYLE.get(var.effect, ""))
    for n in var.notes:
        out.add("  " if out.parts else "")
        out.add(n)
    if var.broadcast is not None and is_scalar_broadcast(var.broadcast):
        out.add("  " if out.parts else "")
        out.add(tr("scalar broadcast"), "dim")
    nan = _nan_note(row) if first else ""
    if nan:
        out.add("  " if out.parts else "")
        out.add(nan, "bold red")
    if first and row.children:
        out.add("  " if out.parts else "")
        out.add(f"[{_children_text(row)}]", "dim")
    return out


def _nan_note(row: OpRow) -> str:
    """``'NaN/Inf start here'`` on the origin row, ``'NaN/Inf ×3'`` on rows that carried them."""
    if row.nan_origin:
        return tr("NaN/Inf start here")
    if row.nonfinite:
        return "NaN/Inf" + (f" ×{row.nonfinite}" if row.nonfinite != row.count else "")
    return ""


def op_lines(rows: list[OpRow], default_dtype: str, indent: str = "    ", prefix: str = "") -> list[Line]:
    """Rows as padded text lines, op and code in aligned columns (rich Tables cost ~1 ms each to measure)."""
    items: list[Line] = []
    inside = " " + _inside()
    w_op = min(max(cell_len(r.op) for r in rows), 18)
    w_code = min(max(cell_len(_code(r)) + (cell_len(inside) if r.via and r.module < 0 else 0) for r in rows), 34)
    for row in rows:
        variants = row.variants or [Variant((), ())]
        for k, var in enumerate(variants):
            line = Line(indent)
            if k == 0:
                line.add(fit(row.op, w_op), "bold")
                code = _code(row) + (inside if row.via and row.module < 0 else "")
                if w_code:
                    line.add("  ")
                    line.add(fit(code, w_code), "italic")
            else:
                line.add(fit("″", w_op), "dim")
                line.add(" " * (w_code + 2) if w_code else "")
            line.add("  ")
            line.add(_shapes_rich(var, default_dtype, prefix))
            notes = _notes_rich(var, row, k == 0)
            if notes.parts:
                line.add("  ")
                line.add(notes)
            count = var.count if row.variants else row.count
            if count > 1:
                line.add(f"  ×{count}", "magenta")
            items.append(line)
            if var.broadcast is not None and not is_scalar_broadcast(var.broadcast):
                items.extend(Line(indent + "  ", al) for al in alignment_lines(var.broadcast))
        if row.other_count:
            items.append(Line((f"{indent}{' ' * w_op}  {_others(row.other_count)}", "dim")))
        for w in row.warnings:
            items.append(Line(indent + "  ", ("⚠ ", "yellow"), (w, "yellow")))
    return items



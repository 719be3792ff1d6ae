"""Draw ``%tensorinfo`` reports: HTML for notebooks, rich for terminals.

Pure functions of the report: no torch, no computing.  Every string that came
from the user (names, expressions, reprs) goes through ``esc`` or ``txt``.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from torchmagic.core.html import badge, esc, kv_table, table, wrap
from torchmagic.core.meta import fmt_shape, human_bytes
from torchmagic.core.term import join, txt
from torchmagic.tensors.report import (
    ArrayReport,
    Histogram,
    InfoReport,
    ModuleReport,
    NamespaceReport,
    Picture,
    Stats,
    SummaryRow,
    TensorReport,
    ValueReport,
)

__all__ = ["to_html", "to_rich", "spark", "flags", "summary_line", "summary_html", "summary_values"]

BLOCKS = " ▁▂▃▄▅▆▇█"


def _num(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def spark(counts: list[int]) -> str:
    """Unicode-block histogram: one character per bin, height by count."""
    top = max(counts) if counts else 0
    if top == 0:
        return ""
    return "".join(BLOCKS[0 if c == 0 else max(1, round(c / top * 8))] for c in counts)


def _tensor_pairs(r: TensorReport) -> list[tuple[str, str]]:
    """(label, plain value) rows shared by both renderers, in reading order."""
    grad_state = "requires grad" if r.requires_grad else "no grad"
    if r.requires_grad:
        grad_state += ", leaf" if r.is_leaf else f", made by {r.grad_fn}"
    rows = [
        ("rank", f"{r.rank} ({r.rank_word})"),
        ("shape", fmt_shape(r.shape)),
        ("dtype", r.dtype),
        ("device", r.device),
        ("autograd", grad_state),
        (".grad", r.grad or "None"),
        ("elements", f"{r.numel:,}"),
        ("memory", f"{human_bytes(r.nbytes)} ({r.element_size} bytes each)"),
    ]
    if r.strides is not None:
        layout = f"strides {fmt_shape(r.strides)}, " + ("contiguous" if r.contiguous else "not contiguous")
        if r.storage_offset:
            layout += f", storage offset {r.storage_offset}"
        rows.append(("layout", layout))
    else:
        rows.append(("layout", r.layout))
    if r.pinned is not None:
        rows.append(("pinned", "yes" if r.pinned else "no"))
    if r.type_name != "Tensor":
        rows.append(("type", r.type_name))
    return rows


_SPECIAL = ("NaN", "+Inf", "−Inf")


def _stats_pairs(s: Stats) -> list[tuple[str, str]]:
    pairs = [("min", _num(s.minimum)), ("max", _num(s.maximum)), ("mean", _num(s.mean)),
             ("std", _num(s.std)), ("zeros", f"{s.zeros:,}")]
    pairs += [(what, f"{n:,}") for what, n in zip(_SPECIAL, (s.nans, s.posinf, s.neginf)) if n]
    return pairs


def flags(s: Stats | None) -> list[str]:
    """``['1 NaN', '1 −Inf']``: the non-finite values, for title lines (highlighted)."""
    if s is None:
        return []
    return [f"{n:,} {what}" for n, what in zip((s.nans, s.posinf, s.neginf), _SPECIAL) if n]


# -- HTML ---------------------------------------------------------------------


def _hist_svg(h: Histogram) -> str:
    width, height = 4 * max(len(h.counts), 1) + 2, 36
    top = max(h.counts) or 1
    bars = []
    for i, c in enumerate(h.counts):
        bh = 0 if c == 0 else max(1.0, c / top * (height - 2))
        bars.append(
            f'<rect x="{1 + 4 * i}" y="{height - bh:.1f}" width="3" height="{bh:.1f}"><title>{c:,}</title></rect>'
        )
    return (f'<svg class="tm-hist" width="{width * 2}" height="{height}" viewBox="0 0 {width} {height}" '
            f'preserveAspectRatio="none" style="fill: var(--jp-brand-color1, #1565c0)">{"".join(bars)}</svg>'
            f'<div class="tm-muted">{_num(h.low)} … {_num(h.high)}</div>')


def _picture_html(p: Picture) -> str:
    imgs = "".join(
        f'<img alt="frame {i}" src="data:image/png;base64,{png}" '
        'style="image-rendering: pixelated; min-width: 48px; max-width: 160px; margin: 2px; border: 1px solid #8884">'
        for i, png in enumerate(p.pngs)
    )
    more = f" (first {p.shown} of {p.total} shown)" if p.shown < p.total else ""
    return (
        f'<div class="tm-picture"><div>{esc(p.layout)}{esc(more)}</div><div>{imgs}</div>'
        f'<div class="tm-muted">{esc(p.mapping)}</div></div>'
    )


def _flag_badges(s: Stats | None) -> str:
    return "".join(f'<b class="tm-error">{badge(f, "tm-error")}</b>' for f in flags(s))


def _stat_html(key: str, value: str) -> str:
    return f'<b class="tm-error">{esc(value)}</b>' if key in _SPECIAL else esc(value)


def _tensor_html(r: TensorReport) -> str:
    parts = [(f'<div class="tm-title"><code>{esc(r.name)}</code> {badge(r.rank_word)}'
             f'{badge(fmt_shape(r.shape))}{badge(r.dtype)}{badge(r.device)}{_flag_badges(r.stats)}</div>')]
    facts = kv_table((k, esc(v)) for k, v in _tensor_pairs(r))
    side = ""
    if r.stats is not None:
        side = f'<div class="tm-muted">statistics of {esc(r.stats.of)}</div>'
        side += kv_table((k, _stat_html(k, v)) for k, v in _stats_pairs(r.stats))
        if r.stats.note:
            side += f'<div class="tm-muted">{esc(r.stats.note)}</div>'
    if r.histogram is not None:
        side += _hist_svg(r.histogram)
    parts.append(f'<div style="display:flex; gap:16px; flex-wrap:wrap"><div>{facts}</div><div>{side}</div></div>')
    for line in r.sharing:
        parts.append(f'<div class="tm-warn">sharing: {esc(line)}</div>')
    if r.preview:
        parts.append(
            f'<div class="tm-muted">values of <code>{esc(r.preview_of)}</code></div><pre>{esc(r.preview)}</pre>'
        )
    if r.picture is not None:
        parts.append(_picture_html(r.picture))
    for note in r.notes:
        parts.append(f'<div class="tm-muted">{esc(note)}</div>')
    if r.dtensor is not None:
        from torchmagic.distributed.sharding import section_html

        parts.append(section_html(r.dtensor))
    return '<div class="tm-item">' + "".join(parts) + "</div>"


def _array_html(r: ArrayReport) -> str:
    pairs = [("shape", fmt_shape(r.shape)), ("dtype", r.dtype), ("memory", human_bytes(r.nbytes)),
             ("to torch", r.from_numpy)]
    if r.tensor_copy:
        pairs.append(("copy", r.tensor_copy))
    body = kv_table((k, esc(v)) for k, v in pairs)
    body += "".join(f'<div class="tm-warn">sharing: {esc(s)}</div>' for s in r.sharing)
    if r.preview:
        body += f"<pre>{esc(r.preview)}</pre>"
    title = f'<div class="tm-title"><code>{esc(r.name)}</code> {badge("NumPy array")}</div>'
    return f'<div class="tm-item">{title}{body}</div>'


def _value_html(r: ValueReport) -> str:
    cls = "" if r.ok else "tm-warn"
    return (f'<div class="tm-item"><div class="tm-title"><code>{esc(r.name)}</code> {badge(r.type_name)}</div>'
            f"<pre>{esc(r.value)}</pre><div class=\"{cls}\">{esc(r.as_tensor)}</div></div>")


def _module_rows(r: ModuleReport) -> list[list[str]]:
    return [[p.name, p.kind, fmt_shape(p.shape), p.dtype, p.device, "yes" if p.requires_grad else "no",
             f"{p.numel:,}", human_bytes(p.nbytes)] for p in r.rows]


_MODULE_HEAD = ["name", "kind", "shape", "dtype", "device", "trainable", "elements", "memory"]


def _module_summary(r: ModuleReport) -> str:
    tensors = f" in {r.param_tensors} tensor{'s' if r.param_tensors != 1 else ''}" if r.param_tensors else ""
    return (f"{r.total_params:,} parameters{tensors} ({r.trainable_params:,} trainable), "
            f"{human_bytes(r.total_bytes)} with buffers, on {', '.join(r.devices) or 'no device'}")


def _module_html(r: ModuleReport) -> str:
    return (f'<div class="tm-item"><div class="tm-title"><code>{esc(r.name)}</code> {badge(r.type_name)}</div>'
            f'<div class="tm-muted"><code>{esc(r.summary)}</code></div>'
            f"{table(_MODULE_HEAD, _module_rows(r))}<div>{esc(_module_summary(r))}</div></div>")


def summary_values(row: SummaryRow) -> str:
    """``[-2.1, 1.9] μ=0.12 σ=1.1``: range, mean and std of the finite values (``~``: of a sample)."""
    st = row.stats
    if st is None:
        return row.note
    if (st.note and st.mean is None) or isinstance(st.minimum, bool):
        return st.note
    text = f"[{_num(st.minimum)}, {_num(st.maximum)}] μ={_num(st.mean)} σ={_num(st.std)}"
    return ("~" if st.sampled else "") + text


def _what(row: SummaryRow) -> str:
    """``Tensor (2, 3) float32 cpu``: kind, shape, dtype and device."""
    shape = fmt_shape(row.shape) if row.shape is not None else ""
    return " ".join(p for p in (row.kind, shape, row.dtype, row.device) if p)


def summary_line(row: SummaryRow) -> str:
    """The whole row in one line (the display hook's): ``Tensor (2, 3) float32 cpu · [0, 5] μ=2.5 σ=1.87``."""
    parts = [_what(row), row.grad, summary_values(row), ", ".join(flags(row.stats))]
    return " · ".join(p for p in parts if p)


def _namespace_rows(r: NamespaceReport) -> list[list[str]]:
    return [[row.name, row.kind, fmt_shape(row.shape) if row.shape is not None else "", row.dtype, row.device,
             row.grad, human_bytes(row.nbytes), summary_values(row)] for row in r.rows]


_NS_HEAD = ["name", "type", "shape", "dtype", "device", "grad", "memory", "values (finite: range, mean, std)",
            "NaN/Inf"]


def _namespace_footer(r: NamespaceReport) -> str:
    if r.asked:
        text = f"{len(r.rows)} item{'s' if len(r.rows) != 1 else ''}, {human_bytes(r.total_bytes)} in all"
    else:
        text = f"{len(r.rows) + r.hidden} tensors/arrays/modules, {human_bytes(r.total_bytes)} in all"
        text += f" ({r.hidden} smallest not listed)" if r.hidden else ""
    if any(row.stats is not None and row.stats.sampled for row in r.rows):
        text += "; ~: statistics of a strided sample"
    problems: dict[str, int] = {}
    for row in r.rows:
        if row.problem:
            problems[row.problem] = problems.get(row.problem, 0) + 1
    for problem, n in problems.items():
        text += f"\nvalues not read ({n}): {problem}"
    return text


def _namespace_html(r: NamespaceReport) -> str:
    rows = [[esc(c) for c in cells] + [_flag_badges(row.stats)] for cells, row in zip(_namespace_rows(r), r.rows)]
    return table(_NS_HEAD, rows, escape=False) + f"<div>{esc(_namespace_footer(r))}</div>"


def summary_html(row: SummaryRow) -> str:
    """:func:`summary_line` as HTML, the NaN/Inf counts highlighted (the display hook's)."""
    text = summary_line(row)
    marks = ", ".join(flags(row.stats))
    if marks:
        text = text[: -len(marks)]
    return f'<div class="tm-title tm-mono">{esc(text)}{_flag_badges(row.stats)}</div>'


def _item_html(r: Any) -> str:
    return str(_view(r, html=True))


def to_html(report: Any) -> str:
    if isinstance(report, InfoReport):
        return wrap("".join(_item_html(i) for i in report.items), "tensorinfo")
    if isinstance(report, NamespaceReport):
        if not report.rows:
            return wrap('<div class="tm-muted">No tensors, arrays or modules in the namespace yet.</div>',
                        "namespace")
        return wrap(_namespace_html(report), "namespace")
    return wrap(_item_html(report), "tensorinfo")


# -- rich ---------------------------------------------------------------------


def _kv(pairs: list[tuple[str, str]]) -> Table:
    t = Table.grid(padding=(0, 1))
    t.add_column(style="bold")
    t.add_column()
    for k, v in pairs:
        style = "bold red" if k in _SPECIAL else ""
        t.add_row(txt(k, style), txt(v, style))
    return t


def _thumb(rows: list[list[tuple[int, int, int]]]) -> Text:
    """Two pixel rows per character: the upper half block in fg, the lower in bg."""
    out = Text()
    for y in range(0, len(rows), 2):
        top = rows[y]
        bottom = rows[y + 1] if y + 1 < len(rows) else None
        for x, (r, g, b) in enumerate(top):
            style = f"rgb({r},{g},{b})"
            if bottom is not None:
                br, bg, bb = bottom[x]
                style += f" on rgb({br},{bg},{bb})"
            out.append("▀", style=style)
        out.append("\n")
    return out


def _tensor_rich(r: TensorReport) -> Panel:
    title = join(txt(r.name, "bold cyan"), f"  {r.rank_word} {fmt_shape(r.shape)} {r.dtype} {r.device}",
                 *(txt(f"  {f}", "bold red") for f in flags(r.stats)))
    grid = Table.grid(padding=(0, 4))
    grid.add_column()
    grid.add_column()
    right: list[Any] = []
    if r.stats is not None:
        right.append(txt(f"statistics of {r.stats.of}", "dim"))
        right.append(_kv(_stats_pairs(r.stats)))
        if r.stats.note:
            right.append(txt(r.stats.note, "dim"))
    if r.histogram is not None:
        right.append(
            join(txt(spark(r.histogram.counts), "blue"), f"  {_num(r.histogram.low)} … {_num(r.histogram.high)}")
        )
    grid.add_row(_kv(_tensor_pairs(r)), Group(*right) if right else "")
    body: list[Any] = [grid]
    body += [txt(f"sharing: {s}", "yellow") for s in r.sharing]
    if r.preview:
        body.append(join(txt("values of ", "dim"), txt(r.preview_of, "dim")))
        body.append(txt(r.preview))
    if r.picture is not None:
        p = r.picture
        more = f" (first {p.shown} of {p.total} shown)" if p.shown < p.total else ""
        body.append(txt(p.layout + more))
        body += [_thumb(t) for t in p.thumbs[:4]]
        body.append(txt(p.mapping, "dim"))
    body += [txt(n, "dim") for n in r.notes]
    if r.dtensor is not None:
        from torchmagic.distributed.sharding import section_rich

        body.append(section_rich(r.dtensor))
    return Panel(Group(*body), title=title, title_align="left", expand=False)


def _array_rich(r: ArrayReport) -> Panel:
    pairs = [("shape", fmt_shape(r.shape)), ("dtype", r.dtype), ("memory", human_bytes(r.nbytes)),
             ("to torch", r.from_numpy)]
    if r.tensor_copy:
        pairs.append(("copy", r.tensor_copy))
    body: list[Any] = [_kv(pairs)] + [txt(f"sharing: {s}", "yellow") for s in r.sharing]
    if r.preview:
        body.append(txt(r.preview))
    return Panel(Group(*body), title=join(txt(r.name, "bold cyan"), "  NumPy array"), title_align="left", expand=False)


def _value_rich(r: ValueReport) -> Panel:
    body = Group(txt(r.value), txt(r.as_tensor, "" if r.ok else "yellow"))
    return Panel(body, title=join(txt(r.name, "bold cyan"), f"  {r.type_name}"), title_align="left", expand=False)


def _table(headers: list[str], rows: list[list[str]]) -> Table:
    t = Table(show_header=True, header_style="bold", box=None, padding=(0, 1))
    for h in headers:
        t.add_column(h)
    for row in rows:
        t.add_row(*(txt(c) for c in row))
    return t


def _module_rich(r: ModuleReport) -> Panel:
    body = Group(txt(r.summary, "dim"), _table(_MODULE_HEAD, _module_rows(r)), txt(_module_summary(r)))
    return Panel(body, title=join(txt(r.name, "bold cyan"), f"  {r.type_name}"), title_align="left", expand=False)


def _summary_lines(r: NamespaceReport) -> list[Text]:
    """One line per row, its fields aligned in columns (a table would wrap each row over many lines)."""
    cells = [[row.name, _what(row), row.grad, human_bytes(row.nbytes), summary_values(row)] for row in r.rows]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    lines = []
    for row, (name, what, grad, memory, values) in zip(r.rows, cells):
        line = Text()
        line.append(txt(name.ljust(widths[0]), "bold cyan"))
        line.append(txt("  " + what.ljust(widths[1])))
        if widths[2]:
            line.append(txt("  " + grad.ljust(widths[2]), "dim"))
        line.append(txt("  " + memory.rjust(widths[3]) + "  " + values))
        marks = flags(row.stats)
        if marks:
            line.append(txt("  " + ", ".join(marks), "bold red"))
        lines.append(line)
    return lines


def _item_rich(r: Any) -> Any:
    return _view(r, html=False)


def _view(r: Any, html: bool) -> Any:
    """One item of a report in HTML or rich, by the kind of report it is."""
    views: dict[type, tuple[Any, Any]] = {
        TensorReport: (_tensor_html, _tensor_rich),
        ArrayReport: (_array_html, _array_rich),
        ModuleReport: (_module_html, _module_rich),
        ValueReport: (_value_html, _value_rich),
    }
    for kind, (to_html_, to_rich_) in views.items():
        if isinstance(r, kind):
            return to_html_(r) if html else to_rich_(r)
    raise TypeError(f"no {'HTML' if html else 'rich'} renderer for {type(r).__name__}")


def to_rich(report: Any) -> Any:
    if isinstance(report, InfoReport):
        return Group(*(_item_rich(i) for i in report.items))
    if isinstance(report, NamespaceReport):
        if not report.rows:
            return txt("No tensors, arrays or modules in the namespace yet.", "dim")
        return Group(*_summary_lines(report), txt(_namespace_footer(report), "dim"))
    return _item_rich(report)

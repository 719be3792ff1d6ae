"""Draw ``%tensorinfo`` reports: HTML for notebooks, rich for terminals.

Pure functions of the report: no torch, no computing.  Every string that came
from the user (names, expressions, reprs) goes through ``esc`` or ``txt``.
"""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from torchmagic.core.html import badge, esc, kv_table, table, tr_html, wrap
from torchmagic.core.meta import fmt_shape, human_bytes
from torchmagic.core.term import join, txt
from torchmagic.i18n import N_, tr, trn
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
_EMPTY = N_("No tensors, arrays or modules in the namespace yet.")
_VALUES_OF = N_("values of {name}")
_ARRAY = N_("NumPy array")


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


def listing(items: list[str]) -> str:
    """Items of a list joined by the language's comma (``a, b`` / ``a，b``)."""
    return tr(", ").join(items)


def _in_context(message: str) -> str:
    """``"context|word"`` translated, or ``word``: for a word other areas translate in another sense
    (a tensor's rank, 阶, is not a process's rank in torch.distributed)."""
    text = tr(message)
    return text.split("|", 1)[1] if text == message else text


def _statistics_of(s: Stats) -> str:
    return tr("statistics of {what}", what=s.of)


def _sharing(line: str) -> str:
    return tr("sharing: {what}", what=line)


def _yes(flag: bool | None) -> str:
    return tr("yes") if flag else tr("no")


def _grad_state(r: TensorReport) -> str:
    if not r.requires_grad:
        return tr("no grad")
    return tr("requires grad, leaf") if r.is_leaf else tr("requires grad, made by {node}", node=r.grad_fn)


def _layout(r: TensorReport) -> str:
    if r.strides is None:
        return r.layout
    strides = fmt_shape(r.strides)
    parts = [tr("strides {strides}", strides=strides), tr("contiguous") if r.contiguous else tr("not contiguous")]
    if r.storage_offset:
        parts.append(tr("storage offset {offset}", offset=r.storage_offset))
    return listing(parts)


def _tensor_pairs(r: TensorReport) -> list[tuple[str, str]]:
    """(label, plain value) rows shared by both renderers, in reading order."""
    rows = [
        (_in_context(N_("tensor|rank")), f"{r.rank} ({r.rank_word})"),
        (tr("shape"), fmt_shape(r.shape)),
        (tr("dtype"), r.dtype),
        (tr("device"), r.device),
        (tr("autograd"), _grad_state(r)),
        (".grad", r.grad or "None"),
        (tr("elements"), f"{r.numel:,}"),
        (tr("memory"), tr("{size} ({n} bytes each)", size=human_bytes(r.nbytes), n=r.element_size)),
        (tr("layout"), _layout(r)),
    ]
    if r.pinned is not None:
        rows.append((tr("pinned"), _yes(r.pinned)))
    if r.type_name != "Tensor":
        rows.append((tr("type"), r.type_name))
    return rows


_SPECIAL = ("NaN", "+Inf", "−Inf")


def _stats_pairs(s: Stats) -> list[tuple[str, str]]:
    pairs = [(tr("min"), _num(s.minimum)), (tr("max"), _num(s.maximum)), (tr("mean"), _num(s.mean)),
             (tr("std"), _num(s.std)), (tr("zeros"), f"{s.zeros:,}")]
    pairs += [(what, f"{n:,}") for what, n in zip(_SPECIAL, (s.nans, s.posinf, s.neginf)) if n]
    return pairs


def flags(s: Stats | None) -> list[str]:
    """``['1 NaN', '1 −Inf']``: the non-finite values, for title lines (highlighted)."""
    if s is None:
        return []
    return [tr("{count} {value}", count=format(n, ","), value=what)
            for n, what in zip((s.nans, s.posinf, s.neginf), _SPECIAL) if n]


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


def _picture_head(p: Picture) -> str:
    """The layout line, with how many frames are shown when not all are."""
    if p.shown < p.total:
        return tr("{layout} (first {shown} of {total} shown)", layout=p.layout, shown=p.shown, total=p.total)
    return p.layout


def _picture_html(p: Picture) -> str:
    frame = tr("frame {i}")  # not inside the f-string: message extraction does not look there
    imgs = "".join(
        f'<img alt="{esc(frame.format(i=i))}" src="data:image/png;base64,{png}" '
        'style="image-rendering: pixelated; min-width: 48px; max-width: 160px; margin: 2px; border: 1px solid #8884">'
        for i, png in enumerate(p.pngs)
    )
    return (
        f'<div class="tm-picture"><div>{esc(_picture_head(p))}</div><div>{imgs}</div>'
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
        side = f'<div class="tm-muted">{esc(_statistics_of(r.stats))}</div>'
        side += kv_table((k, _stat_html(k, v)) for k, v in _stats_pairs(r.stats))
        if r.stats.note:
            side += f'<div class="tm-muted">{esc(r.stats.note)}</div>'
    if r.histogram is not None:
        side += _hist_svg(r.histogram)
    parts.append(f'<div style="display:flex; gap:16px; flex-wrap:wrap"><div>{facts}</div><div>{side}</div></div>')
    for line in r.sharing:
        parts.append(f'<div class="tm-warn">{esc(_sharing(line))}</div>')
    if r.preview:
        parts.append(
            f'<div class="tm-muted">{tr_html(_VALUES_OF, name=f"<code>{esc(r.preview_of)}</code>")}</div>'
            f"<pre>{esc(r.preview)}</pre>"
        )
    if r.picture is not None:
        parts.append(_picture_html(r.picture))
    for note in r.notes:
        parts.append(f'<div class="tm-muted">{esc(note)}</div>')
    if r.dtensor is not None:
        from torchmagic.distributed.sharding import section_html

        parts.append(section_html(r.dtensor))
    return '<div class="tm-item">' + "".join(parts) + "</div>"


def _array_pairs(r: ArrayReport) -> list[tuple[str, str]]:
    pairs = [(tr("shape"), fmt_shape(r.shape)), (tr("dtype"), r.dtype), (tr("memory"), human_bytes(r.nbytes)),
             (tr("to torch"), r.from_numpy)]
    if r.tensor_copy:
        pairs.append((tr("copy"), r.tensor_copy))
    return pairs


def _array_html(r: ArrayReport) -> str:
    body = kv_table((k, esc(v)) for k, v in _array_pairs(r))
    body += "".join(f'<div class="tm-warn">{esc(_sharing(s))}</div>' for s in r.sharing)
    if r.preview:
        body += f"<pre>{esc(r.preview)}</pre>"
    title = f'<div class="tm-title"><code>{esc(r.name)}</code> {badge(tr(_ARRAY))}</div>'
    return f'<div class="tm-item">{title}{body}</div>'


def _value_html(r: ValueReport) -> str:
    cls = "" if r.ok else "tm-warn"
    return (f'<div class="tm-item"><div class="tm-title"><code>{esc(r.name)}</code> {badge(r.type_name)}</div>'
            f"<pre>{esc(r.value)}</pre><div class=\"{cls}\">{esc(r.as_tensor)}</div></div>")


def _module_rows(r: ModuleReport) -> list[list[str]]:
    return [[p.name, tr(p.kind), fmt_shape(p.shape), p.dtype, p.device, _yes(p.requires_grad),
             f"{p.numel:,}", human_bytes(p.nbytes)] for p in r.rows]


_MODULE_HEAD = [N_("name"), N_("kind"), N_("shape"), N_("dtype"), N_("device"), N_("trainable"), N_("elements"),
                N_("memory")]


def heads(names: list[str]) -> list[str]:
    """Table headers in the current language (the lists are marked with ``N_``)."""
    return [tr(h) for h in names]


def _module_summary(r: ModuleReport) -> str:
    fields = {"total": f"{r.total_params:,}", "trainable": f"{r.trainable_params:,}",
              "size": human_bytes(r.total_bytes), "devices": ", ".join(r.devices) or tr("no device")}
    if not r.param_tensors:
        return tr("{total} parameters ({trainable} trainable), {size} with buffers, on {devices}", **fields)
    return trn("{total} parameters in {n} tensor ({trainable} trainable), {size} with buffers, on {devices}",
               "{total} parameters in {n} tensors ({trainable} trainable), {size} with buffers, on {devices}",
               r.param_tensors, **fields)


def _module_html(r: ModuleReport) -> str:
    return (f'<div class="tm-item"><div class="tm-title"><code>{esc(r.name)}</code> {badge(r.type_name)}</div>'
            f'<div class="tm-muted"><code>{esc(r.summary)}</code></div>'
            f"{table(heads(_MODULE_HEAD), _module_rows(r))}<div>{esc(_module_summary(r))}</div></div>")


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
    parts = [_what(row), row.grad, summary_values(row), listing(flags(row.stats))]
    return " · ".join(p for p in parts if p)


def _namespace_rows(r: NamespaceReport) -> list[list[str]]:
    return [[row.name, row.kind, fmt_shape(row.shape) if row.shape is not None else "", row.dtype, row.device,
             row.grad, human_bytes(row.nbytes), summary_values(row)] for row in r.rows]


_NS_HEAD = [N_("name"), N_("type"), N_("shape"), N_("dtype"), N_("device"), N_("grad"), N_("memory"),
            N_("values (finite: range, mean, std)"), "NaN/Inf"]


def _namespace_footer(r: NamespaceReport) -> str:
    size = human_bytes(r.total_bytes)
    if r.asked:
        text = trn("{n} item, {size} in all", "{n} items, {size} in all", len(r.rows), size=size)
    elif r.hidden:
        text = tr("{count} tensors/arrays/modules, {size} in all ({hidden} smallest not listed)",
                  count=len(r.rows) + r.hidden, size=size, hidden=r.hidden)
    else:
        text = tr("{count} tensors/arrays/modules, {size} in all", count=len(r.rows), size=size)
    if any(row.stats is not None and row.stats.sampled for row in r.rows):
        text = tr("{listing}; ~: statistics of a strided sample", listing=text)
    problems: dict[str, int] = {}
    for row in r.rows:
        if row.problem:
            problems[row.problem] = problems.get(row.problem, 0) + 1
    for problem, n in problems.items():
        text += "\n" + tr("values not read ({n}): {problem}", n=n, problem=problem)
    return text


def _namespace_html(r: NamespaceReport) -> str:
    rows = [[esc(c) for c in cells] + [_flag_badges(row.stats)] for cells, row in zip(_namespace_rows(r), r.rows)]
    return table(heads(_NS_HEAD), rows, escape=False) + f"<div>{esc(_namespace_footer(r))}</div>"


def summary_html(row: SummaryRow) -> str:
    """:func:`summary_line` as HTML, the NaN/Inf counts highlighted (the display hook's)."""
    text = summary_line(row)
    marks = listing(flags(row.stats))
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
            return wrap(f'<div class="tm-muted">{esc(tr(_EMPTY))}</div>', "namespace")
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
        right.append(txt(_statistics_of(r.stats), "dim"))
        right.append(_kv(_stats_pairs(r.stats)))
        if r.stats.note:
            right.append(txt(r.stats.note, "dim"))
    if r.histogram is not None:
        right.append(
            join(txt(spark(r.histogram.counts), "blue"), f"  {_num(r.histogram.low)} … {_num(r.histogram.high)}")
        )
    grid.add_row(_kv(_tensor_pairs(r)), Group(*right) if right else "")
    body: list[Any] = [grid]
    body += [txt(_sharing(s), "yellow") for s in r.sharing]
    if r.preview:
        body.append(txt(tr(_VALUES_OF, name=r.preview_of), "dim"))
        body.append(txt(r.preview))
    if r.picture is not None:
        p = r.picture
        body.append(txt(_picture_head(p)))
        body += [_thumb(t) for t in p.thumbs[:4]]
        body.append(txt(p.mapping, "dim"))
    body += [txt(n, "dim") for n in r.notes]
    if r.dtensor is not None:
        from torchmagic.distributed.sharding import section_rich

        body.append(section_rich(r.dtensor))
    return Panel(Group(*body), title=title, title_align="left", expand=False)


def _array_rich(r: ArrayReport) -> Panel:
    body: list[Any] = [_kv(_array_pairs(r))] + [txt(_sharing(s), "yellow") for s in r.sharing]
    if r.preview:
        body.append(txt(r.preview))
    title = join(txt(r.name, "bold cyan"), "  " + tr(_ARRAY))
    return Panel(Group(*body), title=title, title_align="left", expand=False)


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
    body = Group(txt(r.summary, "dim"), _table(heads(_MODULE_HEAD), _module_rows(r)), txt(_module_summary(r)))
    return Panel(body, title=join(txt(r.name, "bold cyan"), f"  {r.type_name}"), title_align="left", expand=False)


def _pad(text: str, width: int, right: bool = False) -> str:
    """``text`` padded to ``width`` terminal cells (a Chinese character takes two)."""
    space = " " * max(width - cell_len(text), 0)
    return space + text if right else text + space


def _summary_lines(r: NamespaceReport) -> list[Text]:
    """One line per row, its fields aligned in columns (a table would wrap each row over many lines)."""
    cells = [[row.name, _what(row), row.grad, human_bytes(row.nbytes), summary_values(row)] for row in r.rows]
    widths = [max(cell_len(c[i]) for c in cells) for i in range(4)]
    lines = []
    for row, (name, what, grad, memory, values) in zip(r.rows, cells):
        line = Text()
        line.append(txt(_pad(name, widths[0]), "bold cyan"))
        line.append(txt("  " + _pad(what, widths[1])))
        if widths[2]:
            line.append(txt("  " + _pad(grad, widths[2]), "dim"))
        line.append(txt("  " + _pad(memory, widths[3], right=True) + "  " + values))
        marks = flags(row.stats)
        if marks:
            line.append(txt("  " + listing(marks), "bold red"))
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
            return txt(tr(_EMPTY), "dim")
        return Group(*_summary_lines(report), txt(_namespace_footer(report), "dim"))
    return _item_rich(report)

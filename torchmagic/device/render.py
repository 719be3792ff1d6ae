"""``%%device`` report -> HTML and rich.  Pure functions of the report.

Order of sections, the same in both views: notice, timing (first run, then
repeats), comparison, slowest ops, memory, transfers, sync points, device
mismatch.  Every cell line, op name and tensor name is user-derived text and
goes through ``esc`` (HTML) or ``txt`` (rich).
"""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from torchmagic.core.html import badge, details, esc, table, tr_html, wrap
from torchmagic.core.meta import fmt_shape, human_bytes
from torchmagic.core.term import txt
from torchmagic.device.report import CreatedTensor, DeviceReport, DeviceRun, ModuleStat
from torchmagic.i18n import N_, tr, trn

__all__ = ["to_html", "to_rich", "fmt_ms", "signed_bytes"]


def fmt_ms(ms: float | None) -> str:
    """``0.0123`` -> ``'12.3 µs'``; ``1234`` -> ``'1.23 s'``."""
    if ms is None:
        return "–"
    if ms >= 1000:
        return f"{ms / 1000:.3g} s"
    if ms >= 1:
        return f"{ms:.3g} ms" if ms < 100 else f"{ms:.0f} ms"
    return f"{ms * 1000:.3g} µs"


def signed_bytes(n: int) -> str:
    return ("+" if n > 0 else "−" if n < 0 else "") + human_bytes(abs(n))


def _title(report: DeviceReport) -> str:
    devices = " vs ".join(r.device for r in report.runs) or "?"
    if report.compare:
        return trn("%%device compared on {devices}: the cell ran once",
                   "%%device compared on {devices}: the cell ran {n} times", report.cell_runs, devices=devices)
    return trn("%%device on {devices}: the cell ran once", "%%device on {devices}: the cell ran {n} times",
               report.cell_runs, devices=devices)


def _heads(names: list[str]) -> list[str]:
    """Table headers in the current language (the lists are marked with ``N_``)."""
    return [tr(h) for h in names]


def _items(parts: list[str]) -> str:
    """Clauses joined by the language's comma."""
    return tr(", ").join(parts)


def _timing_lines(run: DeviceRun) -> list[tuple[str, str]]:
    """(label, text) lines about time; shared by both views.  Labels are English keys (``error`` is
    styled): each view shows ``tr(label)``."""
    out: list[tuple[str, str]] = []
    if run.first is not None:
        t = run.first
        label = N_("warm-up run") if run.repeats is not None else N_("time")
        if t.device_ms is None:
            parts = [tr("wall {time}", time=fmt_ms(t.wall_ms))]
        else:
            parts = [
                tr("wall {time} (until the device finished)", time=fmt_ms(t.wall_ms)),
                tr("device {time} (events)", time=fmt_ms(t.device_ms)),
                tr("Python returned after {time} (kernels run asynchronously: that alone would be launch time)",
                   time=fmt_ms(t.host_ms)),
            ]
        text = _items(parts)
        if run.first_recorded:
            text = tr("{timing}; recorded run (ops, transfers, memory): torchmagic's recording took ≥ {time} of it",
                      timing=text, time=fmt_ms(run.recording_ms))
        out.append((label, text))
    if run.repeats is not None:
        r = run.repeats
        fields = {"mean": fmt_ms(r.mean_ms), "std": fmt_ms(r.std_ms), "repeats": r.repeats, "best": fmt_ms(r.best_ms),
                  "clock": tr("device time") if r.kind == "device" else tr("wall time")}
        if r.kind == "device":
            text = trn("{mean} ± {std} per loop ({clock}, mean ± std of {repeats} repeats × {n} loop; best {best}; "
                       "wall best {wall})",
                       "{mean} ± {std} per loop ({clock}, mean ± std of {repeats} repeats × {n} loops; best {best}; "
                       "wall best {wall})", r.loops, wall=fmt_ms(min(r.wall_per_loop_ms)), **fields)
        else:
            text = trn("{mean} ± {std} per loop ({clock}, mean ± std of {repeats} repeats × {n} loop; best {best})",
                       "{mean} ± {std} per loop ({clock}, mean ± std of {repeats} repeats × {n} loops; best {best})",
                       r.loops, **fields)
        out.append((N_("repeats"), text))
    if run.error:
        out.append((N_("error"), run.error))
    return out


def _memory_line(run: DeviceRun) -> str:
    m = run.memory
    if m is None:
        return ""
    src = (
        tr("CUDA allocator")
        if m.source == "allocator"
        else tr("outputs of the cell's torch calls, tracked: a lower bound, temporaries inside one op "
                "and gradients made by backward are not seen")
    )
    return tr("on {device}: peak {peak}, net {net} ({source})", device=m.device, peak=signed_bytes(m.peak_bytes),
              net=signed_bytes(m.net_bytes), source=src)


def _compare_rows(report: DeviceReport) -> list[list[str]]:
    rows = []
    for run in report.runs:
        first = run.first
        speed = report.speedup(run)
        rows.append(
            [
                run.device,
                fmt_ms(first.wall_ms if first else None),
                fmt_ms(first.device_ms if first else None),
                fmt_ms(min(run.repeats.wall_per_loop_ms)) if run.repeats else "–",
                tr("1× (baseline)") if run is report.runs[0] else (f"{speed:.2f}×" if speed else "–"),
            ]
        )
    return rows


_COMPARE_HEAD = [N_("device"), N_("first run (wall)"), N_("device time"), N_("best per loop (wall)"), N_("speedup")]
_OPS_HEAD = [N_("op"), N_("input shapes"), N_("count"), N_("total"), N_("mean")]
_MEM_HEAD = [N_("line"), N_("made by"), N_("tensor"), N_("size"), N_("after the cell")]
_MOD_HEAD = [N_("module"), N_("type"), N_("calls"), N_("forward"), N_("backward"), N_("new tensors"), N_("kept"),
             N_("gradients"), N_("parameters"), N_("output")]
# the terminal's narrower table: the columns that answer "which layer costs what"
_MOD_HEAD_TERM = [N_("module"), N_("type"), N_("forward"), N_("backward"), N_("kept"), N_("parameters")]
_NBSP = "\u00a0"
_LARGEST = N_("largest tensors created")
_MISMATCH = N_("device mismatch")
_MEMORY = N_("memory")
_NO_COPIES = N_("no copies across devices")
_XFER_HEAD = [N_("line"), N_("direction"), N_("from → to"), N_("op"), N_("count"), N_("bytes"), N_("shape")]
_SYNC_HEAD = [N_("line"), N_("op"), N_("device"), N_("count"), N_("why it waits")]
_OPERAND_HEAD = [N_("operand"), N_("shape"), N_("dtype"), N_("device")]


def _ops_rows(run: DeviceRun) -> list[list[str]]:
    return [
        [
            s.op,
            s.shapes,
            str(s.count),
            fmt_ms(s.total_ms),
            fmt_ms(s.mean_ms) if s.timed == s.count else tr("{time} ({n} timed)", time=fmt_ms(s.mean_ms), n=s.timed),
        ]
        for s in run.ops
    ]


def _after(t: CreatedTensor) -> str:
    """What became of them: the user's names, alive without a name, freed."""
    one = t.count == 1
    parts = list(t.names)
    if t.unnamed:
        parts.append(tr("alive (no name)") if one else tr("{n} alive (no name)", n=t.unnamed))
    if t.freed:
        parts.append(tr("freed") if one else tr("{n} freed", n=t.freed))
    return _items(parts)


def _mem_rows(run: DeviceRun) -> list[list[str]]:
    if run.memory is None:
        return []
    return [
        [
            f"{t.line}: {t.source}" if t.line else "–",
            tr("{op} in {module}", op=t.op, module=t.module) if t.module else t.op,
            f"{fmt_shape(t.shape)} {t.dtype}" + ("" if t.device == run.device else f" {t.device}"),
            human_bytes(t.nbytes) + ("" if t.count == 1 else f" ×{t.count}"),
            _after(t),
        ]
        for t in run.memory.largest
    ]


def _mem_note(run: DeviceRun) -> str:
    """The footnote of the largest-tensors table, when it needs one."""
    if run.memory is None or not any(t.unnamed for t in run.memory.largest):
        return ""
    return tr("alive (no name): still in memory after the cell, but not under a name of yours: autograd keeps "
              "activations for backward, or an object (a list, a module) holds it")


def _module_name(m: ModuleStat) -> str:
    """Indented by depth; ``×12`` for folded layers; the calls when a module ran more than once."""
    text = _NBSP * 2 * m.depth + (m.name or m.path)
    if m.instances > 1:
        text += f" ×{m.instances}"
    if m.calls > m.instances:
        text = tr("{module} ({n} calls)", module=text, n=m.calls)
    return text


def _module_row(m: ModuleStat, full: bool = True) -> list[str]:
    backward = fmt_ms(m.backward_ms) if m.backward_ms is not None else "–"
    if not full:
        return [_module_name(m), m.type_name, fmt_ms(m.forward_ms), backward, human_bytes(m.kept_bytes),
                f"{m.params:,}"]
    return [
        _module_name(m),
        m.type_name,
        str(m.calls),
        fmt_ms(m.forward_ms),
        backward,
        human_bytes(m.allocated_bytes),
        human_bytes(m.kept_bytes),
        human_bytes(m.grad_bytes) if m.backward_ms is not None else "–",
        f"{m.params:,}",
        m.out_shape,
    ]


def _modules_caption(run: DeviceRun) -> str:
    clock = tr("device time from events") if run.op_time_kind == "device" else tr("host clock, recording taken out")
    shown = len(run.modules_unfolded)
    if run.modules_total > shown:
        return tr("Modules: time and memory per nn.Module, children included ({clock}; the first {shown} of "
                  "{total} modules)", clock=clock, shown=shown, total=run.modules_total)
    return tr("Modules: time and memory per nn.Module, children included ({clock})", clock=clock)


def _modules_note(run: DeviceRun) -> str:
    what = tr("new tensors: made by its forward; kept: of those, still alive when forward returned (its output "
              "and what autograd saved for backward); gradients: made by its backward steps; parameters: elements")
    if len(run.modules) < len(run.modules_unfolded):
        return tr("{columns}; repeated layers are folded into one row (×N, sums)", columns=what)
    return what


def _xfer_rows(run: DeviceRun) -> list[list[str]]:
    return [
        [
            f"{x.line}: {x.source}" if x.line else "–",
            tr(x.direction),
            f"{x.src} → {x.dst}",
            x.op,
            str(x.count),
            human_bytes(x.nbytes),
            f"{fmt_shape(x.shape)} {x.dtype}",
        ]
        for x in run.transfers
    ]


def _sync_rows(run: DeviceRun) -> list[list[str]]:
    return [[f"{s.line}: {s.source}" if s.line else "–", s.op, s.device, str(s.count), tr(s.why)] for s in run.syncs]


def _ops_caption(run: DeviceRun) -> str:
    clock = tr("device time from events per op") if run.op_time_kind == "device" else tr("host clock per op")
    return tr("Slowest ops ({n} torch calls in the recorded run; {clock})", n=run.op_count, clock=clock)


def _xfer_caption(run: DeviceRun) -> str:
    return trn("Transfers: {n} copy across devices, {size}", "Transfers: {n} copies across devices, {size}",
               run.transfer_count, size=human_bytes(run.transfer_bytes))


def _sync_caption(run: DeviceRun) -> str:
    return tr("Sync points: {n} line(s) make Python wait for the device", n=len(run.syncs))


def _operand_rows(run: DeviceRun) -> list[list[str]]:
    assert run.mismatch is not None
    return [[o.name, fmt_shape(o.shape), o.dtype, o.device] for o in run.mismatch.operands]


# -- HTML ------------------------------------------------------------------------------------


def _run_html(run: DeviceRun, with_device: bool) -> str:
    parts: list[str] = []
    if with_device:
        parts.append(f'<div class="tm-title">{esc(run.device)}</div>')
    if run.notice:
        parts.append(f'<div class="tm-warn">⚠ {esc(run.notice)}</div>')
    for label, text in _timing_lines(run):
        cls = "tm-error" if label == "error" else ""
        line = tr_html(N_("{label}: {text}"), label=f"<b>{esc(tr(label))}</b>", text=esc(text))
        parts.append(f'<div class="{cls}">{line}</div>')
    if run.mismatch is not None:
        mm = run.mismatch
        head = tr_html(N_("{mismatch} at line {line}: {source} ({op})"),
                       mismatch=f"<b>{esc(tr(_MISMATCH))}</b>", line=str(mm.line),
                       source=f"<code>{esc(mm.source)}</code>", op=esc(mm.op))
        parts.append(
            f'<div class="tm-error">{head}</div>' + table(_heads(_OPERAND_HEAD), _operand_rows(run))
            + f"<div>{esc(mm.hint)}</div>"
        )
    if run.ops:
        parts.append(f'<div class="tm-title">{esc(_ops_caption(run))}</div>'
                     + table(_heads(_OPS_HEAD), _ops_rows(run)))
    if run.modules:
        parts.append(_modules_html(run))
    if run.memory is not None:
        parts.append(f"<div><b>{esc(tr(_MEMORY))}</b> {esc(_memory_line(run))}</div>")
        if run.memory.largest:
            parts.append(f'<div class="tm-muted">{esc(tr(_LARGEST))}</div>'
                         + table(_heads(_MEM_HEAD), _mem_rows(run)))
            if _mem_note(run):
                parts.append(f'<div class="tm-muted">{esc(_mem_note(run))}</div>')
    if run.transfers:
        parts.append(f'<div class="tm-title">{esc(_xfer_caption(run))}</div>'
                     + table(_heads(_XFER_HEAD), _xfer_rows(run)))
    elif run.first is not None:
        parts.append(f'<div class="tm-muted">{esc(tr(_NO_COPIES))}</div>')
    if run.syncs:
        parts.append(f'<div class="tm-title tm-warn">{esc(_sync_caption(run))}</div>'
                     + table(_heads(_SYNC_HEAD), _sync_rows(run)))
    return "".join(parts)


def _modules_html(run: DeviceRun) -> str:
    out = f'<div class="tm-title">{esc(_modules_caption(run))}</div>'
    out += table(_heads(_MOD_HEAD), [_module_row(m) for m in run.modules])
    out += f'<div class="tm-muted">{esc(_modules_note(run))}</div>'
    if len(run.modules) < len(run.modules_unfolded):
        out += details(tr("every module ({n} rows)", n=len(run.modules_unfolded)),
                       table(_heads(_MOD_HEAD), [_module_row(m) for m in run.modules_unfolded]))
    return out


def to_html(report: DeviceReport) -> str:
    body = [f'<div class="tm-title">{esc(_title(report))}</div>']
    if report.compare and len(report.runs) > 1:
        body.append(table(_heads(_COMPARE_HEAD), _compare_rows(report)))
    many = len(report.runs) > 1
    for run in report.runs:
        body.append(_run_html(run, with_device=many))
    if any(r.repeats is not None for r in report.runs):
        repeated, word = tr("the cell ran several times; its side effects happened each time"), tr("repeated")
        body.append(f'<div class="tm-muted">{badge(word)} {esc(repeated)}</div>')
    return wrap("".join(body), "device")


# -- rich ------------------------------------------------------------------------------------


def _rich_table(title: str, head: list[str], rows: list[list[str]], style: str = "") -> Table:
    t = Table(title=txt(title, style or "bold"), title_justify="left", show_edge=False, pad_edge=False)
    for h in _heads(head):
        t.add_column(txt(h))
    for row in rows:
        t.add_row(*[txt(c) for c in row])
    return t


def _run_rich(run: DeviceRun, with_device: bool) -> list[Any]:
    items: list[Any] = []
    if with_device:
        items.append(txt(run.device, "bold underline"))
    if run.notice:
        items.append(txt(f"⚠ {run.notice}", "bold yellow"))
    for label, text in _timing_lines(run):
        line = Text()
        line.append(txt(tr("{label}:", label=tr(label)) + " ", "bold red" if label == "error" else "bold"))
        line.append(txt(text))
        items.append(line)
    if run.mismatch is not None:
        mm = run.mismatch
        items.append(txt(tr("{mismatch} at line {line}: {source} ({op})", mismatch=tr(_MISMATCH), line=mm.line,
                            source=mm.source, op=mm.op), "bold red"))
        items.append(_rich_table(tr("operands"), _OPERAND_HEAD, _operand_rows(run)))
        items.append(txt(mm.hint))
    if run.ops:
        items.append(_rich_table(_ops_caption(run), _OPS_HEAD, _ops_rows(run)))
    if run.modules:
        rows = [_module_row(m, full=False) for m in run.modules]
        items.append(_rich_table(_modules_caption(run), _MOD_HEAD_TERM, rows))
        items.append(txt(_modules_note(run), "dim"))
    if run.memory is not None:
        items.append(Text.assemble(txt(tr(_MEMORY) + " ", "bold"), txt(_memory_line(run))))
        if run.memory.largest:
            items.append(_rich_table(tr(_LARGEST), _MEM_HEAD, _mem_rows(run), "dim"))
            if _mem_note(run):
                items.append(txt(_mem_note(run), "dim"))
    if run.transfers:
        items.append(_rich_table(_xfer_caption(run), _XFER_HEAD, _xfer_rows(run)))
    elif run.first is not None:
        items.append(txt(tr(_NO_COPIES), "dim"))
    if run.syncs:
        items.append(_rich_table(_sync_caption(run), _SYNC_HEAD, _sync_rows(run), "bold yellow"))
    return items


def to_rich(report: DeviceReport) -> Any:
    items: list[Any] = [txt(_title(report), "bold")]
    if report.compare and len(report.runs) > 1:
        items.append(_rich_table(tr("comparison"), _COMPARE_HEAD, _compare_rows(report)))
    many = len(report.runs) > 1
    for run in report.runs:
        items.extend(_run_rich(run, with_device=many))
    if any(r.repeats is not None for r in report.runs):
        items.append(txt(tr("(repeated: the cell ran several times; its side effects happened each time)"), "dim"))
    return Group(*items)

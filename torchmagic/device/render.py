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

from torchmagic.core.html import badge, details, esc, table, wrap
from torchmagic.core.meta import fmt_shape, human_bytes
from torchmagic.core.term import txt
from torchmagic.device.report import CreatedTensor, DeviceReport, DeviceRun, ModuleStat

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
    runs = report.cell_runs
    ran = "once" if runs == 1 else f"{runs} times"
    what = "compared on" if report.compare else "on"
    return f"%%device {what} {devices}: the cell ran {ran}"


def _timing_lines(run: DeviceRun) -> list[tuple[str, str]]:
    """(label, text) lines about time; shared by both views."""
    out: list[tuple[str, str]] = []
    if run.first is not None:
        t = run.first
        label = "warm-up run" if run.repeats is not None else "time"
        parts = [f"wall {fmt_ms(t.wall_ms)}"]
        if t.device_ms is not None:
            parts[0] += " (until the device finished)"
            parts.append(f"device {fmt_ms(t.device_ms)} (events)")
            parts.append(
                f"Python returned after {fmt_ms(t.host_ms)} (kernels run asynchronously: "
                f"that alone would be launch time)"
            )
        text = ", ".join(parts)
        if run.first_recorded:
            text += (
                f"; recorded run (ops, transfers, memory): torchmagic's recording "
                f"took ≥ {fmt_ms(run.recording_ms)} of it"
            )
        out.append((label, text))
    if run.repeats is not None:
        r = run.repeats
        clock = "device time" if r.kind == "device" else "wall time"
        loops = "loop" if r.loops == 1 else "loops"
        text = (
            f"{fmt_ms(r.mean_ms)} ± {fmt_ms(r.std_ms)} per loop ({clock}, mean ± std of "
            f"{r.repeats} repeats × {r.loops} {loops}; best {fmt_ms(r.best_ms)}"
        )
        if r.kind == "device":
            text += f"; wall best {fmt_ms(min(r.wall_per_loop_ms))}"
        out.append(("repeats", text + ")"))
    if run.error:
        out.append(("error", run.error))
    return out


def _memory_line(run: DeviceRun) -> str:
    m = run.memory
    if m is None:
        return ""
    src = (
        "CUDA allocator"
        if m.source == "allocator"
        else "outputs of the cell's torch calls, tracked: a lower bound, temporaries inside one op "
        "and gradients made by backward are not seen"
    )
    return f"on {m.device}: peak {signed_bytes(m.peak_bytes)}, net {signed_bytes(m.net_bytes)} ({src})"


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
                "1× (baseline)" if run is report.runs[0] else (f"{speed:.2f}×" if speed else "–"),
            ]
        )
    return rows


_COMPARE_HEAD = ["device", "first run (wall)", "device time", "best per loop (wall)", "speedup"]
_OPS_HEAD = ["op", "input shapes", "count", "total", "mean"]
_MEM_HEAD = ["line", "made by", "tensor", "size", "after the cell"]
_MOD_HEAD = ["module", "type", "calls", "forward", "backward", "new tensors", "kept", "gradients", "parameters",
             "output"]
# the terminal's narrower table: the columns that answer "which layer costs what"
_MOD_HEAD_TERM = ["module", "type", "forward", "backward", "kept", "parameters"]
_NBSP = "\u00a0"
_XFER_HEAD = ["line", "direction", "from → to", "op", "count", "bytes", "shape"]
_SYNC_HEAD = ["line", "op", "device", "count", "why it waits"]


def _ops_rows(run: DeviceRun) -> list[list[str]]:
    return [
        [
            s.op,
            s.shapes,
            str(s.count),
            fmt_ms(s.total_ms),
            fmt_ms(s.mean_ms) + ("" if s.timed == s.count else f" ({s.timed} timed)"),
        ]
        for s in run.ops
    ]


def _after(t: CreatedTensor) -> str:
    """What became of them: the user's names, alive without a name, freed."""
    one = t.count == 1
    parts = list(t.names)
    if t.unnamed:
        parts.append("alive (no name)" if one else f"{t.unnamed} alive (no name)")
    if t.freed:
        parts.append("freed" if one else f"{t.freed} freed")
    return ", ".join(parts)


def _mem_rows(run: DeviceRun) -> list[list[str]]:
    if run.memory is None:
        return []
    return [
        [
            f"{t.line}: {t.source}" if t.line else "–",
            t.op + (f" in {t.module}" if t.module else ""),
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
    return ("alive (no name): still in memory after the cell, but not under a name of yours: autograd keeps "
            "activations for backward, or an object (a list, a module) holds it")


def _module_name(m: ModuleStat) -> str:
    """Indented by depth; ``×12`` for folded layers; the calls when a module ran more than once."""
    text = _NBSP * 2 * m.depth + (m.name or m.path)
    if m.instances > 1:
        text += f" ×{m.instances}"
    if m.calls > m.instances:
        text += f" ({m.calls} calls)"
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
    clock = "device time from events" if run.op_time_kind == "device" else "host clock, recording taken out"
    shown = len(run.modules_unfolded)
    more = f"; the first {shown} of {run.modules_total} modules" if run.modules_total > shown else ""
    return f"Modules: time and memory per nn.Module, children included ({clock}{more})"


def _modules_note(run: DeviceRun) -> str:
    folded = len(run.modules) < len(run.modules_unfolded)
    what = ("new tensors: made by its forward; kept: of those, still alive when forward returned (its output "
            "and what autograd saved for backward); gradients: made by its backward steps; parameters: elements")
    return what + ("; repeated layers are folded into one row (×N, sums)" if folded else "")


def _xfer_rows(run: DeviceRun) -> list[list[str]]:
    return [
        [
            f"{x.line}: {x.source}" if x.line else "–",
            x.direction,
            f"{x.src} → {x.dst}",
            x.op,
            str(x.count),
            human_bytes(x.nbytes),
            f"{fmt_shape(x.shape)} {x.dtype}",
        ]
        for x in run.transfers
    ]


def _sync_rows(run: DeviceRun) -> list[list[str]]:
    return [[f"{s.line}: {s.source}" if s.line else "–", s.op, s.device, str(s.count), s.why] for s in run.syncs]


def _ops_caption(run: DeviceRun) -> str:
    clock = "device time from events per op" if run.op_time_kind == "device" else "host clock per op"
    return f"Slowest ops ({run.op_count} torch calls in the recorded run; {clock})"


def _xfer_caption(run: DeviceRun) -> str:
    copies = f"{run.transfer_count} cop{'y' if run.transfer_count == 1 else 'ies'}"
    return f"Transfers: {copies} across devices, {human_bytes(run.transfer_bytes)}"


# -- HTML ------------------------------------------------------------------------------------


def _run_html(run: DeviceRun, with_device: bool) -> str:
    parts: list[str] = []
    if with_device:
        parts.append(f'<div class="tm-title">{esc(run.device)}</div>')
    if run.notice:
        parts.append(f'<div class="tm-warn">⚠ {esc(run.notice)}</div>')
    for label, text in _timing_lines(run):
        cls = "tm-error" if label == "error" else ""
        parts.append(f'<div class="{cls}"><b>{esc(label)}</b>: {esc(text)}</div>')
    if run.mismatch is not None:
        mm = run.mismatch
        rows = [[o.name, fmt_shape(o.shape), o.dtype, o.device] for o in mm.operands]
        parts.append(
            f'<div class="tm-error"><b>device mismatch</b> at line {mm.line}: <code>{esc(mm.source)}</code> '
            f"({esc(mm.op)})</div>" + table(["operand", "shape", "dtype", "device"], rows)
            + f"<div>{esc(mm.hint)}</div>"
        )
    if run.ops:
        parts.append(f'<div class="tm-title">{esc(_ops_caption(run))}</div>' + table(_OPS_HEAD, _ops_rows(run)))
    if run.modules:
        parts.append(_modules_html(run))
    if run.memory is not None:
        parts.append(f"<div><b>memory</b> {esc(_memory_line(run))}</div>")
        if run.memory.largest:
            parts.append('<div class="tm-muted">largest tensors created</div>' + table(_MEM_HEAD, _mem_rows(run)))
            if _mem_note(run):
                parts.append(f'<div class="tm-muted">{esc(_mem_note(run))}</div>')
    if run.transfers:
        parts.append(f'<div class="tm-title">{esc(_xfer_caption(run))}</div>' + table(_XFER_HEAD, _xfer_rows(run)))
    elif run.first is not None:
        parts.append('<div class="tm-muted">no copies across devices</div>')
    if run.syncs:
        parts.append(
            f'<div class="tm-title tm-warn">Sync points: {len(run.syncs)} line(s) make Python wait for the device</div>'
            + table(_SYNC_HEAD, _sync_rows(run))
        )
    return "".join(parts)


def _modules_html(run: DeviceRun) -> str:
    out = f'<div class="tm-title">{esc(_modules_caption(run))}</div>'
    out += table(_MOD_HEAD, [_module_row(m) for m in run.modules])
    out += f'<div class="tm-muted">{esc(_modules_note(run))}</div>'
    if len(run.modules) < len(run.modules_unfolded):
        out += details(f"every module ({len(run.modules_unfolded)} rows)",
                       table(_MOD_HEAD, [_module_row(m) for m in run.modules_unfolded]))
    return out


def to_html(report: DeviceReport) -> str:
    body = [f'<div class="tm-title">{esc(_title(report))}</div>']
    if report.compare and len(report.runs) > 1:
        body.append(table(_COMPARE_HEAD, _compare_rows(report)))
    many = len(report.runs) > 1
    for run in report.runs:
        body.append(_run_html(run, with_device=many))
    if any(r.repeats is not None for r in report.runs):
        repeated = "the cell ran several times; its side effects happened each time"
        body.append(f'<div class="tm-muted">{badge("repeated")} {repeated}</div>')
    return wrap("".join(body), "device")


# -- rich ------------------------------------------------------------------------------------


def _rich_table(title: str, head: list[str], rows: list[list[str]], style: str = "") -> Table:
    t = Table(title=txt(title, style or "bold"), title_justify="left", show_edge=False, pad_edge=False)
    for h in head:
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
        line.append(txt(f"{label}: ", "bold red" if label == "error" else "bold"))
        line.append(txt(text))
        items.append(line)
    if run.mismatch is not None:
        mm = run.mismatch
        items.append(txt(f"device mismatch at line {mm.line}: {mm.source} ({mm.op})", "bold red"))
        items.append(
            _rich_table("operands", ["operand", "shape", "dtype", "device"],
                        [[o.name, fmt_shape(o.shape), o.dtype, o.device] for o in mm.operands])
        )
        items.append(txt(mm.hint))
    if run.ops:
        items.append(_rich_table(_ops_caption(run), _OPS_HEAD, _ops_rows(run)))
    if run.modules:
        rows = [_module_row(m, full=False) for m in run.modules]
        items.append(_rich_table(_modules_caption(run), _MOD_HEAD_TERM, rows))
        items.append(txt(_modules_note(run), "dim"))
    if run.memory is not None:
        items.append(Text.assemble(txt("memory ", "bold"), txt(_memory_line(run))))
        if run.memory.largest:
            items.append(_rich_table("largest tensors created", _MEM_HEAD, _mem_rows(run), "dim"))
            if _mem_note(run):
                items.append(txt(_mem_note(run), "dim"))
    if run.transfers:
        items.append(_rich_table(_xfer_caption(run), _XFER_HEAD, _xfer_rows(run)))
    elif run.first is not None:
        items.append(txt("no copies across devices", "dim"))
    if run.syncs:
        items.append(
            _rich_table(
                f"Sync points: {len(run.syncs)} line(s) make Python wait for the device",
                _SYNC_HEAD,
                _sync_rows(run),
                "bold yellow",
            )
        )
    return items


def to_rich(report: DeviceReport) -> Any:
    items: list[Any] = [txt(_title(report), "bold")]
    if report.compare and len(report.runs) > 1:
        items.append(_rich_table("comparison", _COMPARE_HEAD, _compare_rows(report)))
    many = len(report.runs) > 1
    for run in report.runs:
        items.extend(_run_rich(run, with_device=many))
    if any(r.repeats is not None for r in report.runs):
        items.append(txt("(repeated: the cell ran several times; its side effects happened each time)", "dim"))
    return Group(*items)

"""``%device`` and ``%device model`` reports -> HTML and rich.  Pure functions."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table

from torchmagic.core.html import esc, kv_table, table, wrap
from torchmagic.core.meta import human_bytes
from torchmagic.core.term import txt
from torchmagic.device.report import DeviceInfoReport, ModelMapReport, PlacementRow
from torchmagic.i18n import N_, tr, trn

__all__ = ["to_html", "to_rich"]

_SETTINGS = N_("settings")
_DEV_HEAD = [N_("device"), N_("what"), N_("capability"), N_("memory total"), N_("free"), N_("allocated"),
             N_("reserved")]


def _b(n: int | None) -> str:
    return "–" if n is None else human_bytes(n)


def _dev_rows(report: DeviceInfoReport) -> list[list[str]]:
    return [
        [
            d.name,
            d.description,
            d.capability or "–",
            _b(d.total_bytes),
            _b(d.free_bytes),
            _b(d.allocated_bytes),
            _b(d.reserved_bytes),
        ]
        for d in report.devices
    ]


def _what(report: ModelMapReport) -> tuple[str, str]:
    """What the two counts are called: a module's parameters and buffers, or plain tensors' elements."""
    return (
        (tr("parameters"), tr("buffers"))
        if report.kind not in ("Tensor", "Parameter", "dict", "list", "tuple")
        else (tr("elements"), "–")
    )


def _count(elements: int, tensors: int) -> str:
    """``'220 in 2 tensors'``: elements, and the tensors holding them."""
    if not tensors:
        return "0"
    return trn("{count} in {n} tensor", "{count} in {n} tensors", tensors, count=format(elements, ","))


def _place_row(row: PlacementRow, with_kind: bool) -> list[str]:
    cells = [row.name]
    if with_kind:
        cells += [row.kind, ", ".join(row.devices)]
    cells += [
        _count(row.params, row.param_tensors),
        human_bytes(row.param_bytes),
        _count(row.buffers, row.buffer_tensors),
        human_bytes(row.buffer_bytes),
        human_bytes(row.grad_bytes),
    ]
    return cells


def _layer_head(report: ModelMapReport) -> list[str]:
    p, b = _what(report)
    return [tr("module"), tr("type"), tr("device"), p, tr("bytes"), b, tr("bytes"), tr("grads bytes")]


def _device_head(report: ModelMapReport) -> list[str]:
    p, b = _what(report)
    return [tr("device"), p, tr("bytes"), b, tr("bytes"), tr("grads bytes")]


def _model_title(report: ModelMapReport) -> str:
    return tr("%device {name}: where the {kind}'s tensors live", name=report.name, kind=report.kind)


def _layers_caption(report: ModelMapReport) -> str:
    shown = len(report.layers)
    if report.layers_total > shown:
        return tr("per module (first {shown} of {total})", shown=shown, total=report.layers_total)
    return tr("per module")


def to_html(report: DeviceInfoReport | ModelMapReport) -> str:
    if isinstance(report, ModelMapReport):
        parts = [f'<div class="tm-title">{esc(_model_title(report))}</div>']
        parts += [f'<div class="tm-warn">⚠ {esc(n)}</div>' for n in report.notes]
        parts.append(table(_device_head(report), [_place_row(r, False) for r in report.per_device]))
        if report.layers:
            parts.append(f'<div class="tm-muted">{esc(_layers_caption(report))}</div>')
            parts.append(table(_layer_head(report), [_place_row(r, True) for r in report.layers]))
        return wrap("".join(parts), "device-model")
    body = f'<div class="tm-title">{esc(_info_title(report))}</div>'
    body += table([tr(h) for h in _DEV_HEAD], _dev_rows(report))
    body += f'<div class="tm-title">{esc(tr(_SETTINGS))}</div>'
    body += kv_table((tr(k), f"<code>{esc(v)}</code>") for k, v in report.settings)
    return wrap(body, "device-info")


def _info_title(report: DeviceInfoReport) -> str:
    return tr("torch {version}: devices", version=report.torch_version)


def _rich_table(head: list[str], rows: list[list[str]], title: str = "") -> Table:
    t = Table(title=txt(title, "bold") if title else None, title_justify="left", show_edge=False, pad_edge=False)
    for h in head:
        t.add_column(txt(h))
    for row in rows:
        t.add_row(*[txt(c) for c in row])
    return t


def to_rich(report: DeviceInfoReport | ModelMapReport) -> Any:
    if isinstance(report, ModelMapReport):
        items: list[Any] = [txt(_model_title(report), "bold")]
        items += [txt(f"⚠ {n}", "yellow") for n in report.notes]
        items.append(
            _rich_table(_device_head(report), [_place_row(r, False) for r in report.per_device], tr("per device"))
        )
        if report.layers:
            items.append(
                _rich_table(_layer_head(report), [_place_row(r, True) for r in report.layers], _layers_caption(report))
            )
        return Group(*items)
    settings = Table(show_header=False, show_edge=False, pad_edge=False)
    settings.add_column()
    settings.add_column()
    for k, v in report.settings:
        settings.add_row(txt(tr(k)), txt(v))
    return Group(
        txt(_info_title(report), "bold"),
        _rich_table([tr(h) for h in _DEV_HEAD], _dev_rows(report)),
        txt(tr(_SETTINGS), "bold"),
        settings,
    )

"""Draw where NaN/±Inf started: one line, shown first in a trace and under a cell by the NaN watch.

Pure layout of :class:`~torchmagic.trace.report.NanOrigin`; every
user-derived string is escaped (HTML) or literal text (rich).
"""

from __future__ import annotations

from torchmagic.core.html import esc, wrap
from torchmagic.core.lines import Block, Line
from torchmagic.errors.render import lines_to_text
from torchmagic.i18n import tr, trn
from torchmagic.trace.report import NanOrigin, NanReport, NanWatchState

__all__ = ["nan_html", "nan_lines", "to_html", "to_rich"]


def nan_html(origin: NanOrigin) -> str:
    """A highlighted line: where the first NaN/±Inf came from, and why."""
    parts = [f'<div class="tm-error"><b>NaN/Inf</b> {esc(origin.sentence())}</div>']
    if origin.note:
        parts.append(f'<div class="tm-muted">{esc(origin.note)}</div>')
    return "".join(parts)


def nan_lines(origin: NanOrigin) -> list[Line]:
    out = [Line(("NaN/Inf ", "bold red"), (origin.sentence(), "red"))]
    if origin.note:
        out.append(Line((origin.note, "dim")))
    return out


def _carried(report: NanReport) -> str:
    n = report.carried
    return trn("{n} later op gave non-finite values too", "{n} later ops gave non-finite values too", n) if n else ""


def _title() -> str:
    return tr("torchmagic NaN watch")


def to_html(report: NanReport | NanWatchState) -> str:
    if isinstance(report, NanWatchState):
        return wrap(f'<div class="tm-muted">{esc(report.sentence())}</div>', "nan")
    body = f'<div class="tm-muted">{esc(_title())}</div>' + nan_html(report.origin)
    if report.carried:
        body += f'<div class="tm-muted">{esc(_carried(report))}</div>'
    return wrap(body, "nan")


def to_rich(report: NanReport | NanWatchState) -> Block:
    if isinstance(report, NanWatchState):
        return lines_to_text([Line((report.sentence(), "dim"))])
    lines = [Line((_title(), "dim")), *nan_lines(report.origin)]
    if report.carried:
        lines.append(Line((_carried(report), "dim")))
    return lines_to_text(lines)

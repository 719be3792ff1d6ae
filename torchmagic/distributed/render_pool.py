"""``%distributed status`` → HTML and rich (pure; escaped)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from torchmagic.core.html import esc, table, wrap
from torchmagic.core.term import txt
from torchmagic.distributed.fold import state_text
from torchmagic.distributed.report import PoolStatus
from torchmagic.i18n import N_, tr

__all__ = ["to_html", "to_rich", "summary"]


def summary(s: PoolStatus) -> str:
    if not s.running:
        return tr("no rank pool")
    group = (
        tr("{backend} process group", backend=s.backend)
        if s.initialised
        else tr("no process group ({flag})", flag="--no-init")
    )
    return tr(
        "{n} ranks · {group} · launcher {launcher} · MASTER_ADDR {master}",
        n=s.world_size,
        group=group,
        launcher=s.launcher,
        master=s.master,
    )


_HEAD = [N_("rank"), N_("host"), N_("PID"), N_("state")]


def _state(state: str) -> str:
    """'dead' or 'alive (cpu)' (the pool's words) in the current language."""
    if state.startswith("alive (") and state.endswith(")"):
        return tr("alive ({device})", device=state[len("alive (") : -1])
    return state_text(state)


def _died(s: PoolStatus) -> bool:
    return any(st == "dead" for *_, st in s.ranks)


def to_html(s: PoolStatus) -> str:
    body = f'<div class="tm-title">%distributed · {esc(summary(s))}</div>'
    if s.ranks:
        body += table([tr(h) for h in _HEAD], [[str(r), h, str(p), _state(st)] for r, h, p, st in s.ranks])
    if s.message:
        body += f'<div class="{"tm-error" if _died(s) else "tm-muted"}">{esc(s.message)}</div>'
    return wrap(body, "distributed-pool")


def to_rich(s: PoolStatus) -> Any:
    items: list[Any] = []
    if s.ranks:
        t = Table(*(tr(h) for h in _HEAD))
        for r, h, p, st in s.ranks:
            t.add_row(txt(r), txt(h), txt(p), txt(_state(st), "red" if st == "dead" else ""))
        items.append(t)
    if s.message:
        items.append(Text(s.message, style="red" if _died(s) else "dim"))
    return Panel(Group(*items) if items else Text(""), title=txt(f"%distributed · {summary(s)}"), title_align="left")

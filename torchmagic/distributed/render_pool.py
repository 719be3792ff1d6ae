"""``%distributed status`` → HTML and rich (pure; escaped)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from torchmagic.core.html import esc, table, wrap
from torchmagic.core.term import txt
from torchmagic.distributed.report import PoolStatus

__all__ = ["to_html", "to_rich", "summary"]


def summary(s: PoolStatus) -> str:
    if not s.running:
        return "no rank pool"
    group = f"{s.backend} process group" if s.initialised else "no process group (--no-init)"
    return f"{s.world_size} ranks · {group} · launcher {s.launcher} · MASTER_ADDR {s.master}"


def to_html(s: PoolStatus) -> str:
    body = f'<div class="tm-title">%distributed · {esc(summary(s))}</div>'
    if s.ranks:
        body += table(["rank", "host", "PID", "state"], [[str(r), h, str(p), st] for r, h, p, st in s.ranks])
    if s.message:
        body += f'<div class="{"tm-error" if "died" in s.message else "tm-muted"}">{esc(s.message)}</div>'
    return wrap(body, "distributed-pool")


def to_rich(s: PoolStatus) -> Any:
    items: list[Any] = []
    if s.ranks:
        t = Table("rank", "host", "PID", "state")
        for r, h, p, st in s.ranks:
            t.add_row(txt(r), txt(h), txt(p), txt(st, "red" if st == "dead" else ""))
        items.append(t)
    if s.message:
        items.append(Text(s.message, style="red" if "died" in s.message else "dim"))
    return Panel(Group(*items) if items else Text(""), title=txt(f"%distributed · {summary(s)}"), title_align="left")

"""Run code as a cell under the ``%%autograd`` watcher without the magic: shared by the autograd tests."""

from __future__ import annotations

from typing import Any

from torchmagic.autograd.ledger import GradLedger
from torchmagic.autograd.log import WatchLog
from torchmagic.autograd.options import WatchOptions
from torchmagic.autograd.site import CellSite
from torchmagic.autograd.watcher import AutogradWatcher
from torchmagic.options import options_for

CELL_FILE = "<autograd-test-cell>"


def site(code: str, ns: dict[str, Any]) -> CellSite:
    """The site of ``code`` run as a cell whose first line is line 1."""
    return CellSite(CELL_FILE, code.splitlines(), ns)


def exec_cell(code: str, ns: dict[str, Any]) -> None:
    """Run ``code`` in ``ns`` so its frames carry :data:`CELL_FILE`, as a compiled cell's do."""
    exec(compile(code, CELL_FILE, "exec"), ns)


def watched(
    code: str, ns: dict[str, Any], ledger: GradLedger | None = None, run: int = 1, **options: Any
) -> WatchLog:
    """Run ``code`` inside an :class:`AutogradWatcher`; its log (the cell's exception propagates)."""
    ns.setdefault("torch", __import__("torch"))
    watcher = AutogradWatcher(site(code, ns), GradLedger() if ledger is None else ledger, options_for(WatchOptions, **options),
                              run=run, cell_key="cell")
    with watcher:
        exec_cell(code, ns)
    watcher.fence.warn("the test cell")
    return watcher.log

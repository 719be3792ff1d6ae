"""A progress line where the user looks: an updating display in notebooks, a rich status line in terminals.

Starting a pool or waiting for slow ranks takes seconds; the line says what
is happening and disappears (terminal) or is replaced by the result
(notebook) when done.  Nothing is shown for waits shorter than ``delay``.
"""

from __future__ import annotations

import html
import time
from typing import Any

__all__ = ["Progress"]


class Progress:
    """``with Progress(shell) as p: p.update("starting 4 ranks… 2/4 up")``."""

    def __init__(self, shell: Any = None, delay: float = 0.5) -> None:
        self.shell = shell
        self.delay = delay
        self.t0 = time.perf_counter()
        self._handle: Any = None
        self._status: Any = None
        self._last = ""

    def __enter__(self) -> Progress:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def update(self, text: str) -> None:
        elapsed = time.perf_counter() - self.t0
        if elapsed < self.delay or text == self._last:
            return
        self._last = text
        line = f"{text} ({elapsed:.1f} s)"
        from torchmagic.core.report import in_kernel

        if in_kernel(self.shell):
            bundle = {
                "text/plain": f"torchmagic: {line}",
                "text/html": f'<div class="tm-progress"><code>torchmagic: {html.escape(line)}</code></div>',
            }
            if self._handle is None:
                from IPython.display import display

                self._handle = display(bundle, raw=True, display_id=True)
            else:
                self._handle.update(bundle, raw=True)
            return
        if self._status is None:
            from rich.console import Console

            self._status = Console(stderr=True).status("")
            self._status.start()
        from rich.text import Text

        self._status.update(Text(f"torchmagic: {line}"))

    def close(self) -> None:
        """Take the line away (terminal) or blank it (notebook: the report follows)."""
        if self._status is not None:
            self._status.stop()
            self._status = None
        if self._handle is not None:
            try:
                self._handle.update({"text/plain": ""}, raw=True)
            except Exception:  # noqa: BLE001, S110 - a progress line that cannot update is not an error
                pass
            self._handle = None

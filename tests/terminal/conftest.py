"""A real IPython terminal: the ``ipython`` program on an 80-column pseudo-terminal.

The in-process tests render with a rich Console they make themselves; here the
terminal shell, rich's own width detection and the pty are the real ones, as a
user in tmux or a plain xterm has them.  ``terminal(cells, env)`` runs the cells
one after another and returns what each printed, ANSI codes removed.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WIDTH = 80
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[=>]")
SEPARATOR = "----- torchmagic test: next cell -----"


def run_in_terminal(cells: list[str], env: dict[str, str], tmp_path: Path) -> list[str]:
    """Each cell's output as IPython's terminal printed it on an 80×50 pty."""
    pexpect = pytest.importorskip("pexpect")
    script = tmp_path / "cells.py"
    lines = ["get_ipython().run_line_magic('load_ext', 'torchmagic')"]
    for cell in cells:
        lines.append(f"print({SEPARATOR!r})")
        lines.append(f"get_ipython().run_cell({cell!r})")
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    full_env = {**os.environ, **env, "PYTHONPATH": str(ROOT), "TERM": "xterm-256color"}
    full_env.pop("COLUMNS", None)  # rich must read the width from the pty, as in a real terminal
    args = ["-m", "IPython", "--no-banner", "--colors=NoColor", "--HistoryManager.enabled=False", str(script)]
    child = pexpect.spawn(sys.executable, args, dimensions=(50, WIDTH),
                          encoding="utf-8", env=full_env, timeout=180, cwd=str(tmp_path))
    child.expect(pexpect.EOF)
    child.close()
    text = ESCAPES.sub("", child.before).replace("\r", "")
    parts = text.split(SEPARATOR + "\n")
    return parts[1:]


@pytest.fixture
def terminal(tmp_path: Path) -> Callable[..., list[str]]:
    def run(cells: list[str], **env: str) -> list[str]:
        return run_in_terminal(cells, env, tmp_path)

    return run

"""Checks of Chinese output shared by the areas' zh tests: terminal cell widths, aligned boxes, visible text."""

from __future__ import annotations

import io
import re
from typing import Any

from rich.cells import cell_len
from rich.console import Console

WIDTH = 80
_RULES = "│┃╇┼╋"


def terminal_lines(renderable: Any, width: int = WIDTH) -> list[str]:
    """``renderable`` as a terminal of ``width`` columns shows it (no colour), one string per line."""
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None, legacy_windows=False)
    console.print(renderable)
    return console.export_text().splitlines()


def cells_before(line: str, index: int) -> int:
    """The terminal column at which ``line[index]`` is drawn (wide characters count two)."""
    return cell_len(line[:index])


def assert_fits(lines: list[str], width: int = WIDTH) -> None:
    too_wide = [line for line in lines if cell_len(line.rstrip()) > width]
    assert not too_wide, too_wide


def assert_aligned(lines: list[str]) -> None:
    """Every box lines up by terminal cell: each panel's right border, each table's column rules."""
    panel: list[str] = []
    table: list[tuple[int, ...]] = []
    for line in [*lines, ""]:
        if line.startswith("╭") or panel:
            panel.append(line)
            if line.startswith("╰"):
                assert len({cell_len(p.rstrip()) for p in panel}) == 1, "\n".join(panel)
                panel = []
            continue
        rules = tuple(cells_before(line, i) for i, ch in enumerate(line) if ch in _RULES)
        if rules:
            table.append(rules)
            continue
        assert len(set(table)) <= 1, table
        table = []


def visible_text(html: str) -> str:
    """What a browser shows of an HTML fragment: no style sheet, no tags, entities decoded, spaces collapsed."""
    import html as html_

    body = re.sub(r"<style>.*?</style>", "", html, flags=re.S)
    return " ".join(html_.unescape(re.sub(r"<[^>]+>", " ", body)).split())

"""Helpers for rich renderables that never interpret user text as markup.

rich parses ``[red]...[/]`` in plain strings; a tensor named ``x[bold]`` or a
source line with ``[1]`` must print literally, so renderers build
:class:`rich.text.Text` objects through :func:`txt` instead of markup strings.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

__all__ = ["txt", "join"]


def txt(value: Any, style: str = "") -> Text:
    """User-derived text as a rich ``Text`` (never parsed as markup)."""
    return Text(str(value), style=style)


def join(*parts: Text | str, sep: str = "") -> Text:
    """Concatenate ``Text`` pieces; plain ``str`` parts are literal text too."""
    out = Text()
    for i, part in enumerate(parts):
        if i and sep:
            out.append(sep)
        out.append(part if isinstance(part, Text) else Text(part))
    return out

"""Cheap styled terminal lines for the trace renderers.

Building a report out of :class:`rich.text.Text` pieces and letting rich
wrap and divide them cost more than recording a whole training step (about
1.5 ms for a ten-row trace).  A :class:`Line` is a list of ``(text, style)``
pieces; a :class:`Block` of lines is a rich renderable that yields one
segment per piece.  Only a line wider than the console (or one holding a
newline or tab) goes through ``rich.text.Text``, so wrapping looks exactly
as before.  User text is never parsed as markup, and control characters are
stripped as rich's ``Text`` does.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any, Union

from rich.cells import cell_len
from rich.control import strip_control_codes
from rich.segment import Segment
from rich.text import Text

__all__ = ["Line", "Block", "Piece"]

Piece = Union[str, tuple[str, str], "Line"]


class Line:
    """One terminal line: ``(text, style)`` pieces, appended in order."""

    __slots__ = ("parts",)

    def __init__(self, *pieces: Piece) -> None:
        self.parts: list[tuple[str, str]] = []
        for p in pieces:
            self.add(p)

    def add(self, piece: Piece, style: str = "") -> Line:
        """Append literal text (``str``, with ``style``), a ``(text, style)`` pair or another line."""
        if type(piece) is str:
            text = piece
        elif isinstance(piece, Line):
            for text, st in piece.parts:
                self._put(text, st)
            return self
        elif isinstance(piece, tuple):
            text, style = piece
        else:
            text = str(piece)
        if text:
            if not text.isprintable():  # rare: only then pay for the translation
                text = strip_control_codes(text)
            self._put(text, style)
        return self

    def _put(self, text: str, style: str) -> None:
        parts = self.parts
        if parts and parts[-1][1] == style:  # one segment per run of one style
            parts[-1] = (parts[-1][0] + text, style)
        else:
            parts.append((text, style))

    @property
    def plain(self) -> str:
        return "".join(t for t, _ in self.parts)

    def __len__(self) -> int:
        return sum(len(t) for t, _ in self.parts)

    def to_text(self) -> Text:
        """The same line as a rich ``Text`` (used only where rich must wrap it)."""
        out = Text()
        for text, style in self.parts:
            out.append(text, style=style or None)
        return out


class Block:
    """Many lines as one rich renderable (what ``to_rich`` returns)."""

    def __init__(self, lines: Iterable[Line]) -> None:
        self.lines = list(lines)

    @property
    def plain(self) -> str:
        return "\n".join(line.plain for line in self.lines)

    def __rich_console__(self, console: Any, options: Any) -> Iterator[Segment]:
        width = options.max_width
        styles: dict[str, Any] = {"": None}
        plain_only = console.color_system is None  # text/plain, pipes: styles are not drawn
        newline = Segment.line()
        for line in self.lines:
            plain = line.plain
            rows = None if "\n" in plain or "\t" in plain else _wrap(line, plain, width)
            if rows is None:  # newlines, tabs, wide characters: let rich lay it out
                rich_text = line.to_text()
                rich_text.end = ""
                yield from console.render(rich_text, options)
                yield newline
                continue
            if plain_only:  # no colours: styles would be dropped anyway, one segment per row
                for parts in rows:
                    yield Segment("".join(piece for piece, _ in parts))
                    yield newline
                continue
            for parts in rows:
                for piece, style in parts:
                    st = styles.get(style, False)
                    if st is False:
                        st = styles[style] = console.get_style(style)
                    yield Segment(piece, st)
                yield newline

    def __rich_measure__(self, console: Any, options: Any) -> Any:
        from rich.measure import Measurement

        return Measurement.get(console, options, Text(self.plain))


def _wrap(line: Line, plain: str, width: int) -> list[list[tuple[str, str]]] | None:
    """Word-wrap ``line`` to ``width`` the way ``Text.wrap`` does; None where only rich can."""
    if (len(plain) if plain.isascii() and plain.isprintable() else cell_len(plain)) <= width:
        return [line.parts]
    try:
        from rich._wrap import divide_line
    except ImportError:  # pragma: no cover - a rich without the helper: fall back to Text
        return None
    bounds = [0, *divide_line(plain, width, fold=True), len(plain)]
    rows: list[list[tuple[str, str]]] = []
    parts = line.parts
    i, pos = 0, 0  # current piece, and its start offset in ``plain``
    for start, end in itertools.pairwise(bounds):
        chunk = plain[start:end]
        if len(chunk) > width:  # Text.rstrip_end: drop trailing spaces beyond the width
            stripped = chunk.rstrip()
            end -= min(len(chunk) - len(stripped), len(chunk) - width)
            chunk = plain[start:end]
        if not (chunk.isascii() and chunk.isprintable()) and cell_len(chunk) > width:
            return None
        row: list[tuple[str, str]] = []
        while i < len(parts) and pos < end:
            text, style = parts[i]
            lo, hi = max(start, pos), min(end, pos + len(text))
            if hi > lo:
                row.append((text[lo - pos : hi - pos], style))
            if pos + len(text) <= end:
                pos += len(text)
                i += 1
            else:
                break
        rows.append(row)
    return rows

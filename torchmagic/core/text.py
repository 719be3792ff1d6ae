"""Small text helpers every area needs the same way: an error in one line, a cell line's text."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["first_line", "exc_line", "source_line"]


def first_line(message: str) -> str:
    """The first non-blank line of ``message``, stripped (``''`` for an empty message)."""
    for line in message.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def exc_line(exc: BaseException) -> str:
    """``'ValueError: first line of the message'``: an exception said in one line."""
    first = first_line(str(exc))
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def source_line(lines: Sequence[str], lineno: int) -> str:
    """The stripped text of line ``lineno`` (1-based) of ``lines``; ``''`` outside them."""
    return lines[lineno - 1].strip() if 1 <= lineno <= len(lines) else ""

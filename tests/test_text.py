"""core/text.py: an exception in one line, a cell line's text."""

from __future__ import annotations

import pytest

from torchmagic.core.text import exc_line, first_line, source_line


@pytest.mark.parametrize("message,expected", [
    ("", ""), ("\n\n  \n", ""), ("one", "one"), ("\n  first  \nsecond", "first"), ("  \n\tx\n", "x"),
])
def test_first_line(message: str, expected: str) -> None:
    assert first_line(message) == expected


def test_exc_line() -> None:
    assert exc_line(ValueError("bad value\nmore detail")) == "ValueError: bad value"
    assert exc_line(KeyboardInterrupt()) == "KeyboardInterrupt"
    assert exc_line(RuntimeError("\n")) == "RuntimeError"


def test_source_line_is_one_based_and_empty_outside() -> None:
    lines = ["x = 1", "  y = x + 1  ", ""]
    assert source_line(lines, 1) == "x = 1"
    assert source_line(lines, 2) == "y = x + 1"
    assert source_line(lines, 3) == ""
    assert source_line(lines, 0) == "" and source_line(lines, 4) == "" and source_line(lines, -1) == ""

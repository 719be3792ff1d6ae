"""core.args: options first, then expressions that may contain spaces."""

from __future__ import annotations

from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments

from torchmagic.core.args import parse_line, split_expressions


@pytest.mark.parametrize(
    "text, expected",
    [
        ("x", ["x"]),
        ("x y model.weight", ["x", "y", "model.weight"]),
        ("o[:, 1]", ["o[:, 1]"]),
        ("x y model.weight o[:, 1]", ["x", "y", "model.weight", "o[:, 1]"]),
        ("a + b", ["a + b"]),
        ("a.sum() * 2 b", ["a.sum() * 2", "b"]),
        ('d["w x"] e', ['d["w x"]', "e"]),
        ("f(1, 2) g", ["f(1, 2)", "g"]),
        ("x if c else y z", ["x if c else y", "z"]),
        ("", []),
    ],
)
def test_split_expressions(text: str, expected: list[str]) -> None:
    assert split_expressions(text) == expected


@pytest.mark.parametrize("text", ["o[:", "x = 1", "'open", "a +"])
def test_bad_expressions_are_one_usage_error(text: str) -> None:
    with pytest.raises(UsageError):
        split_expressions(text)


@magic_arguments()
@argument("-o", "--out")
@argument("--flag", action="store_true")
@argument("rest", nargs="*")
def _magic(line: str) -> None:
    """A test magic."""


def test_parse_line_options_then_expressions() -> None:
    args, exprs = parse_line(_magic, "-o res --flag o[:, 1] x + 1")
    assert args.out == "res" and args.flag is True
    assert exprs == ["o[:, 1]", "x + 1"]


def test_parse_line_unknown_option() -> None:
    with pytest.raises(UsageError):
        parse_line(_magic, "--nope x")


def test_parse_line_option_missing_value() -> None:
    with pytest.raises(UsageError):
        parse_line(_magic, "-o")


def test_parse_line_keeps_quotes_inside_expressions() -> None:
    _, exprs = parse_line(_magic, "--flag d['a b']")
    assert exprs == ["d['a b']"]


def test_any_args_signature(tmp_path: Any) -> None:
    args, exprs = parse_line(_magic, "")
    assert exprs == [] and args.out is None

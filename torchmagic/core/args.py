"""Split a magic's line into its options and the Python expressions after them.

IPython's ``parse_argstring`` splits like a shell, which breaks expressions:
``o[:, 1]`` becomes two words and quotes vanish from ``d["w"]``.  We let
argparse see only the leading ``-option`` words, and split the rest ourselves
at spaces outside brackets and strings, re-joining pieces around operators so
``x + y`` stays one expression.
"""

from __future__ import annotations

import argparse
import ast
import io
import tokenize
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import parse_argstring

from torchmagic.i18n import tr

__all__ = ["parse_line", "parse_options", "evaluate", "split_expressions"]

_OPERATOR_START = tuple("+-*/@%<>=!&|^.,:)]}")
_OPERATOR_END = tuple("+-*/@%<>=!&|^.,:([{")
_KEYWORDS = {"if", "else", "for", "in", "and", "or", "not", "is", "lambda"}


def _value_options(func: Callable[..., Any]) -> set[str]:
    parser: argparse.ArgumentParser = func.parser  # type: ignore[attr-defined]
    names: set[str] = set()
    for action in parser._actions:
        if action.option_strings and action.nargs != 0:
            names.update(action.option_strings)
    return names


def parse_line(func: Callable[..., Any], line: str) -> tuple[argparse.Namespace, list[str]]:
    """Parse leading options with ``func``'s magic_arguments; return (args, expressions)."""
    takes_value = _value_options(func)
    words = line.strip().split()
    opts: list[str] = []
    i = 0
    while i < len(words) and words[i].startswith("-") and len(words[i]) > 1:
        word = words[i]
        opts.append(word)
        if word.split("=", 1)[0] in takes_value and "=" not in word:
            if i + 1 >= len(words):
                raise UsageError(tr("option {option} needs a value", option=word))
            opts.append(words[i + 1])
            i += 1
        i += 1
    rest = line.strip()
    for word in words[:i]:
        rest = rest[rest.index(word) + len(word) :]
    args = parse_options(func, " ".join(opts))
    return args, split_expressions(rest)


def parse_options(func: Callable[..., Any], line: str) -> argparse.Namespace:
    """``parse_argstring`` whose shell-style splitting errors are one ``UsageError`` line.

    IPython splits the line with ``shlex``, which raises a bare ``ValueError``
    ("No closing quotation") for ``-o '``; the user should see a usage error.
    """
    try:
        args = parse_argstring(func, line)
    except ValueError as exc:
        raise UsageError(tr("cannot parse the options {line}: {error}", line=repr(line.strip()), error=exc)) from None
    out = getattr(args, "out", None)
    if out is not None and not out.isidentifier():  # checked before any cell runs
        raise UsageError(tr("-o needs a Python name, not {name}", name=repr(out)))
    return args


def evaluate(expr: str, shell: Any, magic: str) -> Any:
    """Evaluate a line magic's expression in the user namespace.

    Any failure is one clear ``UsageError`` line naming the magic, the
    expression and the user's exception, never a traceback from torchmagic.
    """
    try:
        return eval(compile(expr, f"<{magic.lstrip('%')}>", "eval"), shell.user_global_ns, shell.user_ns)
    except NameError as exc:
        raise UsageError(f"{magic}: {exc}") from None
    except SyntaxError as exc:
        raise UsageError(
            tr("{magic}: {expr} is not valid Python: {error}", magic=magic, expr=repr(expr), error=exc.msg)
        ) from None
    except Exception as exc:  # noqa: BLE001 - fenced: our failure must not reach the user
        error = f"{type(exc).__name__}: {exc}"
        raise UsageError(
            tr("{magic}: evaluating {expr} raised {error}", magic=magic, expr=repr(expr), error=error)
        ) from None


def _pieces(text: str) -> list[str]:
    """Split at whitespace outside brackets and string literals."""
    pieces: list[str] = []
    depth = 0
    start: int | None = None
    quote: str | None = None
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if text.startswith(quote, i):
                i += len(quote)
                quote = None
                continue
        elif ch in "'\"":
            quote = ch * 3 if text.startswith(ch * 3, i) else ch
            start = i if start is None else start
            i += len(quote)
            continue
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(depth - 1, 0)
        elif ch.isspace() and depth == 0:
            if start is not None:
                pieces.append(text[start:i])
                start = None
            i += 1
            continue
        if start is None:
            start = i
        i += 1
    if start is not None:
        pieces.append(text[start:])
    return pieces


def _is_expression(src: str) -> bool:
    try:
        ast.parse(src, mode="eval")
    except SyntaxError:
        return False
    return True


def _needs_join(current: str, nxt: str) -> bool:
    if not _is_expression(current):
        return True
    first_word = nxt.split("(", 1)[0]
    last_word = current.rsplit(" ", 1)[-1]
    return (
        nxt.startswith(_OPERATOR_START)
        or current.endswith(_OPERATOR_END)
        or first_word in _KEYWORDS
        or last_word in _KEYWORDS
    )


def split_expressions(text: str) -> list[str]:
    """``"x y o[:, 1] a + b"`` -> ``["x", "y", "o[:, 1]", "a + b"]``.

    Raises ``UsageError`` for text that is not valid Python, naming the piece.
    """
    # Reject unterminated strings and brackets early with one clear line.
    try:
        list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError) as exc:
        raise UsageError(tr("cannot parse {text}: {error}", text=repr(text.strip()), error=exc.args[0])) from None
    exprs: list[str] = []
    for piece in _pieces(text):
        if exprs and _needs_join(exprs[-1], piece):
            exprs[-1] = f"{exprs[-1]} {piece}"
        else:
            exprs.append(piece)
    for expr in exprs:
        if not _is_expression(expr):
            raise UsageError(tr("not a Python expression: {expr}", expr=repr(expr)))
    return exprs

"""trace.lines: the cheap styled lines print exactly as the equivalent rich Text would."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.text import Text

from torchmagic.core.lines import Block, Line

STYLES = ["", "bold", "dim", "cyan", "bold red"]
WORDS = st.text(alphabet=st.sampled_from(list("ab xy(),→×…宽\t\n\x1b[]")), max_size=12)
PIECES = st.lists(st.tuples(WORDS, st.sampled_from(STYLES)), max_size=8)


def _print(renderable, width: int, colour: bool) -> str:
    buf = io.StringIO()
    Console(file=buf, width=width, color_system="truecolor" if colour else None,
            force_terminal=colour).print(renderable)
    return buf.getvalue()


def _as_text(lines: list[list[tuple[str, str]]]) -> Text:
    """The reference: what the renderers built before (one Text, lines joined by newlines)."""
    out = Text(no_wrap=True, overflow="ignore")
    for i, parts in enumerate(lines):
        if i:
            out.append("\n")
        line = Text()
        for text, style in parts:
            line.append(text, style=style or None)
        out.append(line)
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES, min_size=1, max_size=4), st.integers(4, 40), st.booleans())
def test_block_prints_like_rich_text(lines, width, colour):
    block = Block([Line(*parts) for parts in lines])
    assert _strip(_print(block, width, colour)) == _strip(_print(_as_text(lines), width, colour))


def _strip(out: str) -> str:
    """Compare what is shown: rich may merge or split same-style segments differently."""
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", out)


def test_styles_and_markup_are_literal():
    block = Block([Line(("[bold]x[/bold]", "bold"), " ", ("<script>", "cyan"))])
    out = _print(block, 80, True)
    assert "[bold]x[/bold]" in out and "<script>" in out
    assert "\x1b[1m[bold]x[/bold]\x1b[0m" in out


def test_control_codes_are_stripped_as_rich_text_does():
    line = Line("a\bred\x07")
    assert line.plain == Text("a\bred\x07").plain == "ared"
    assert "\x07" not in _print(Block([line]), 80, False)


def test_long_line_wraps_at_words_and_keeps_styles():
    block = Block([Line(("alpha beta", "bold"), " ", ("gamma delta", "cyan"))])
    out = _print(block, 12, True)
    assert _strip(out).splitlines() == ["alpha beta ", "gamma delta"]
    assert "\x1b[1malpha beta" in out and "\x1b[36mgamma delta" in out

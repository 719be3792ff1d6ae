"""core/term.py: user text in rich renderables is never read as markup."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from torchmagic.core.term import join, txt


def _render(text: Text) -> str:
    console = Console(width=80, record=True, color_system=None)
    console.print(text)
    return console.export_text().rstrip("\n")


def test_markup_in_user_text_prints_literally() -> None:
    assert _render(txt("x[bold]y[/bold] [1]")) == "x[bold]y[/bold] [1]"
    assert txt(3.5, "red").plain == "3.5" and str(txt(3.5, "red").style) == "red"


def test_join_keeps_styles_and_treats_strings_as_text() -> None:
    joined = join(txt("a", "bold"), "[red]b[/red]", txt("c"), sep=" · ")
    assert joined.plain == "a · [red]b[/red] · c"
    assert _render(joined) == "a · [red]b[/red] · c"
    assert any(str(span.style) == "bold" and joined.plain[span.start:span.end] == "a" for span in joined.spans)
    assert join().plain == ""

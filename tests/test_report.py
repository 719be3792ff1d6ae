"""core.report: plain data in, HTML / rich / text out, JSON-serialisable."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from torchmagic.core.report import Report, in_kernel, jsonable, rich_to_text, show


@dataclass
class _Demo(Report):
    _renderer = "tests.demo_renderer"
    name: str
    shape: tuple[int, ...]
    value: float


def test_jsonable_handles_tuples_nans_and_nesting() -> None:
    r = _Demo(name="x", shape=(2, 3), value=math.nan)
    d = r.to_dict()
    assert d == {"name": "x", "shape": [2, 3], "value": "nan", "kind": "_Demo"}
    json.dumps(d)
    assert jsonable({1: (1.0, math.inf)}) == {"1": [1.0, "inf"]}


def test_views_come_from_the_named_renderer() -> None:
    r = _Demo(name="<b>x</b>", shape=(2,), value=1.0)
    bundle = r._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}
    assert "&lt;b&gt;x&lt;/b&gt;" in bundle["text/html"]
    assert "<b>x</b>" in bundle["text/plain"]  # plain text is literal, not markup
    assert r._repr_mimebundle_(include={"text/plain"}).keys() == {"text/plain"}
    assert str(r) == r.to_text()


def test_rich_to_text_has_no_ansi_and_fixed_width() -> None:
    from rich.table import Table

    t = Table("a", "b")
    t.add_row("1", "[red]2")
    text = rich_to_text(t, width=40)
    assert "\x1b[" not in text
    assert max(len(line) for line in text.splitlines()) <= 40


def test_show_prints_rich_in_a_terminal(capsys: Any) -> None:
    class FakeTerminal:
        pass

    assert not in_kernel(FakeTerminal())
    show(_Demo(name="y", shape=(1,), value=2.0), FakeTerminal())
    assert "y" in capsys.readouterr().out


def test_rich_console_renders_report() -> None:
    console = Console(width=60, record=True, color_system=None)
    console.print(_Demo(name="[bold]z", shape=(), value=0.0))
    assert "[bold]z" in console.export_text()


def test_a_subclass_of_the_kernel_shell_gets_html() -> None:
    """Google Colab's shell subclasses ipykernel's: it must get HTML, not terminal text."""
    from ipykernel.zmqshell import ZMQInteractiveShell

    class ColabLikeShell(ZMQInteractiveShell):
        pass

    shell = object.__new__(ColabLikeShell)  # no kernel needed to ask what kind of shell it is
    assert in_kernel(shell)

    class ZMQInteractiveShellLookalike:  # the old name test would have said yes
        pass

    assert not in_kernel(ZMQInteractiveShellLookalike())

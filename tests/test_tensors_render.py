"""tensorinfo.render: structure of the HTML and terminal views, and escaping."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import torch
from rich.console import Console

from torchmagic.options import options_for
from torchmagic.tensors.inspect import InfoOptions, inspect_many
from torchmagic.tensors.namespace import scan_namespace
from torchmagic.tensors.render import spark

EVIL = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "[bold red]x[/bold red]"]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [a for a, _ in attrs]


def _parse(html: str) -> _Tags:
    p = _Tags()
    p.feed(html)
    return p


def _report(**opts: object) -> object:
    x = torch.arange(12.0).reshape(3, 4)
    return inspect_many(
        [("x", x), ("arr", np.ones(3)), ("lst", [1, 2]), ("lin", torch.nn.Linear(2, 2))],
        {}, options_for(InfoOptions, **opts),  # type: ignore[arg-type]
    )


def test_html_structure() -> None:
    html = _report(image=True).to_html()  # type: ignore[attr-defined]
    tags = _parse(html)
    assert tags.tags.count("table") >= 4 and "svg" in tags.tags and "img" in tags.tags
    assert "(3, 4)" in html and "matrix" in html and "float32" in html
    assert html.count('class="tm-item"') == 4
    assert "data:image/png;base64," in html


def test_terminal_rendering() -> None:
    console = Console(width=100, record=True, color_system="truecolor", force_terminal=True)
    console.print(_report())
    text = console.export_text(clear=False)
    assert "x  matrix (3, 4) float32 cpu" in text
    assert "statistics of all values" in text and "strides (4, 1), contiguous" in text
    assert "NumPy array" in text and "torch.tensor(lst) makes a vector" in text
    assert "weight  parameter  (2, 2)" in text
    assert "\x1b[" in console.export_text(styles=True)  # coloured in a terminal


def test_plain_text_fallback_stands_alone() -> None:
    text = _report()._repr_mimebundle_()["text/plain"]  # type: ignore[attr-defined]
    assert "\x1b[" not in text
    for needle in ["rank", "(3, 4)", "float32", "min", "max", "[[0., 1., 2., 3.],"]:
        assert needle in text


def test_user_strings_are_escaped_everywhere() -> None:
    items = [(name, torch.ones(2)) for name in EVIL] + [("v", EVIL[0]), ("m", {EVIL[1]: 1})]
    report = inspect_many(items, {}, options_for(InfoOptions))
    html = report.to_html()
    tags = _parse(html)
    assert "script" not in tags.tags and "img" not in tags.tags
    assert not [a for a in tags.attrs if a.startswith("on")]
    console = Console(width=200, record=True, color_system=None)
    console.print(report)
    text = console.export_text()
    assert "[bold red]x[/bold red]" in text  # printed literally, not as markup
    assert "<script>alert(1)</script>" in text


def test_namespace_views() -> None:
    r = scan_namespace({"<b>": torch.ones(3), "model": torch.nn.Linear(2, 1)})
    html = r.to_html()
    assert "&lt;b&gt;" in html and "<b>" not in html
    assert re.search(r"<tr><td>model</td><td>Linear</td><td>3 params</td>", html)
    assert "2 tensors/modules" in r.to_text()
    assert "No tensors" in scan_namespace({}).to_text()


def test_spark() -> None:
    assert spark([0, 4, 8]) == " ▄█"
    assert spark([1, 100]) == "▁█"  # non-zero bins never vanish
    assert spark([]) == ""

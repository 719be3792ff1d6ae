"""tensorinfo.render: structure of the HTML and terminal views, and escaping."""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser

import numpy as np
import torch
from rich.console import Console

from torchmagic.options import options_for
from torchmagic.tensors.inspect import InfoOptions, inspect_many
from torchmagic.tensors.namespace import scan_namespace
from torchmagic.tensors.render import spark
from torchmagic.tensors.summary import SummaryOptions

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
    for needle in ["rank", "(3, 4)", "float32", "min", "max", "[[ 0.,  1.,  2.,  3.],"]:
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
    opts = options_for(SummaryOptions)
    r = scan_namespace({"<b>": torch.ones(3), "model": torch.nn.Linear(2, 1), "z": torch.tensor([math.nan])}, opts)
    html = r.to_html()
    assert "&lt;b&gt;" in html and "<b>" not in html
    assert re.search(r"<tr><td>model</td><td>Linear</td><td></td><td>float32</td><td>cpu</td><td></td>"
                     r"<td>12 B</td><td>3 parameters in 2 tensors</td><td></td></tr>", html)
    assert 'class="tm-badge tm-error">1 NaN' in html
    text = r.to_text()
    assert "3 tensors/arrays/modules" in text and "1 NaN" in text
    assert "No tensors" in scan_namespace({}, opts).to_text()


def test_nan_counts_are_in_the_title_and_highlighted() -> None:
    """Issue 14: `%tensorinfo b` gave NaN/-Inf counts unhighlighted, and "statistics of all values"."""
    b = torch.log(torch.tensor([1.0, 0.0, -1.0, 4.0]))
    report = inspect_many([("b", b)], {}, options_for(InfoOptions))
    console = Console(width=100, record=True, color_system="truecolor", force_terminal=True)
    console.print(report)
    plain = console.export_text(clear=False)
    assert "b  vector (4,) float32 cpu  1 NaN  1 −Inf" in plain
    assert "statistics of the 2 finite values (of 4)" in plain and "+Inf" not in plain
    styled = console.export_text(styles=True)
    assert "\x1b[1;31m" in styled  # bold red: the title's counts and the NaN/−Inf rows
    html = report.to_html()
    assert html.count('class="tm-badge tm-error"') == 2 and '<b class="tm-error">1</b>' in html


def test_spark() -> None:
    assert spark([0, 4, 8]) == " ▄█"
    assert spark([1, 100]) == "▁█"  # non-zero bins never vanish
    assert spark([]) == ""

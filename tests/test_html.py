"""core.html: escaping and the shared HTML kit."""

from __future__ import annotations

from torchmagic.core.html import STYLE, badge, details, esc, kv_table, table, wrap

PAYLOADS = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "a'b", "[bold]x[/bold]"]


def test_esc_escapes_tags_and_quotes() -> None:
    assert esc('<a href="x">') == "&lt;a href=&quot;x&quot;&gt;"
    assert esc("it's") == "it&#x27;s"
    assert esc(3) == "3"


def test_table_escapes_headers_and_cells() -> None:
    out = table(PAYLOADS, [PAYLOADS])
    assert "<script>" not in out and "<img" not in out
    assert out.count("&lt;script&gt;") == 2


def test_kit_escapes_its_text() -> None:
    for fn in (lambda s: badge(s), lambda s: details(s, ""), lambda s: wrap("", s),
               lambda s: kv_table([(s, "ok")])):
        for p in PAYLOADS[:2]:
            out = fn(p)
            assert "<script>" not in out and "<img" not in out


def test_style_uses_theme_variables_with_fallbacks() -> None:
    assert "var(--jp-content-font-color1" in STYLE
    assert "var(--vscode-editor-foreground" in STYLE

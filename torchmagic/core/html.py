"""Escaping and the small HTML kit every renderer uses.

All user-derived text goes through :func:`esc` (quotes too, so it is safe in
attributes and in SVG).  Colours come from JupyterLab's theme variables, then
VS Code's, then a fixed fallback, so output reads well in light and dark
themes.  Nothing here depends on scripts: untrusted notebooks strip them.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

__all__ = ["esc", "STYLE", "wrap", "table", "badge", "kv_table", "details", "tr_html"]


def esc(value: object) -> str:
    """Escape any value for HTML text and attribute positions (and SVG)."""
    return html.escape(str(value), quote=True)


FG = "var(--jp-content-font-color1, var(--vscode-editor-foreground, #1f1f1f))"
# Status and muted colours are mixed with the strongest text colour (black in
# light themes, white in dark ones): JupyterLab's light --jp-warn-color1 alone is
# 2.7:1 on white, --jp-success-color1 4.1:1 and --jp-content-font-color2 4.4:1 on
# its grey table rows, below WCAG AA (4.5:1); the mixes pass in both themes
# (checked by tests/browser).  Browsers without color-mix() keep the first
# declaration.
FG0 = "var(--jp-content-font-color0, var(--vscode-editor-foreground, #000))"
FG2 = "var(--jp-content-font-color2, var(--vscode-descriptionForeground, #555))"
BG2 = "var(--jp-layout-color2, var(--vscode-editorWidget-background, #f3f3f3))"
BORDER = "var(--jp-border-color2, var(--vscode-panel-border, #ccc))"
WARN = "var(--jp-warn-color1, var(--vscode-editorWarning-foreground, #b35900))"
ERROR = "var(--jp-error-color1, var(--vscode-errorForeground, #c62828))"
ACCENT = "var(--jp-brand-color1, var(--vscode-textLink-foreground, #1565c0))"
OK = "var(--jp-success-color1, var(--vscode-testing-iconPassed, #2e7d32))"
# Chinese reports (issue 15) need fonts with CJK glyphs: named after the theme's own font, so a
# theme's choice wins for Latin text and these fill in only the characters it lacks.
CJK = '"Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", "WenQuanYi Micro Hei"'
CJK_MONO = '"Noto Sans Mono CJK SC", "Sarasa Mono SC"'
MONO = f"var(--jp-code-font-family, SFMono-Regular, Menlo, Consolas, monospace), {CJK_MONO}, {CJK}, monospace"
UI = f"var(--jp-ui-font-family, system-ui, sans-serif), {CJK}, sans-serif"

STYLE = f"""<style>
.tm {{ color: {FG}; font-family: {UI}; font-size: 13px; line-height: 1.4; }}
.tm .tm-title {{ font-weight: 600; margin: 4px 0; }}
.tm .tm-muted {{ color: {FG2}; color: color-mix(in srgb, {FG2} 75%, {FG0}); }}
.tm code, .tm .tm-mono {{ font-family: {MONO}; }}
.tm table.tm-table {{ border-collapse: collapse; margin: 4px 0 8px 0; }}
.tm table.tm-table th {{ text-align: left; font-weight: 600; background: {BG2}; color: {FG}; }}
.tm table.tm-table th, .tm table.tm-table td {{
  border: 1px solid {BORDER}; padding: 2px 8px; vertical-align: top; text-align: left;
}}
.tm .tm-badge {{
  display: inline-block; border: 1px solid {BORDER}; border-radius: 3px; padding: 0 4px; margin-right: 3px;
}}
.tm .tm-warn {{ color: {WARN}; color: color-mix(in srgb, {WARN} 70%, {FG0}); }}
.tm .tm-error {{ color: {ERROR}; color: color-mix(in srgb, {ERROR} 70%, {FG0}); }}
.tm .tm-ok {{ color: {OK}; color: color-mix(in srgb, {OK} 70%, {FG0}); }}
.tm .tm-accent {{ color: {ACCENT}; color: color-mix(in srgb, {ACCENT} 70%, {FG0}); }}
.tm pre {{ margin: 2px 0; font-family: {MONO}; color: {FG}; background: transparent; }}
.tm details > summary {{ cursor: pointer; }}
</style>"""


def wrap(body: str, kind: str) -> str:
    """The outer ``<div>`` of every report, with the shared style sheet."""
    return f'{STYLE}<div class="tm tm-{esc(kind)}">{body}</div>'


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    cls: str = "",
    escape: bool = True,
) -> str:
    """A simple table; cells are escaped unless ``escape=False`` (pre-built HTML)."""
    f = esc if escape else str
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{f(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="tm-table {esc(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def kv_table(pairs: Iterable[tuple[str, str]]) -> str:
    """A two-column key/value table; values are already HTML."""
    rows = "".join(f'<tr><th>{esc(k)}</th><td>{v}</td></tr>' for k, v in pairs)
    return f'<table class="tm-table tm-kv"><tbody>{rows}</tbody></table>'


def badge(text: str, cls: str = "") -> str:
    return f'<span class="tm-badge {esc(cls)}">{esc(text)}</span>'


def details(summary: str, body: str, open_: bool = False) -> str:
    """A collapsible section (no script needed); ``summary`` is escaped."""
    attr = " open" if open_ else ""
    return f"<details{attr}><summary>{esc(summary)}</summary>{body}</details>"


def tr_html(message: str, /, **html_fields: str) -> str:
    """A translated sentence as HTML: its own words escaped, ``html_fields`` inserted as they are.

    For sentences that hold markup (``values of <code>x</code>``): the caller
    escapes what goes into each field.
    """
    from torchmagic.i18n import tr

    return esc(tr(message)).format(**html_fields)

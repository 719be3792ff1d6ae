"""Run the example notebooks, cache them, export them and open them in Chromium.

Shared by the notebook tests, the browser tests, ``scripts/screenshots.py``
and anyone who wants to look at the examples as a reader would.  Executed
notebooks are cached under ``out/executed/`` (ignored by git) keyed by a hash
of the notebook and of torchmagic's sources, so the browser test and the
screenshot script reuse what the notebook test just ran, and a stale cache is
never used.

Command line::

    python scripts/nbtools.py                 # execute all examples, write out/html/*.html
    python scripts/nbtools.py 01_tensors      # just one
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
OUT = ROOT / "out"
EXECUTED = OUT / "executed"
HTML_DIR = OUT / "html"
RAISES = "raises-exception"
CACHE_KEY = "torchmagic_cache_key"

#: Magics torchmagic provides; a cell that starts with one of them is a "magic cell".
TORCHMAGIC_MAGICS = ("tensorinfo", "autograd", "device", "distributed")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def examples() -> list[Path]:
    """The example notebooks, in reading order: the English ones, then each translation's folder."""
    return sorted(EXAMPLES.glob("*.ipynb")) + sorted(EXAMPLES.glob("*/*.ipynb"))


def example_name(path: Path) -> str:
    """A notebook's name, unique across folders: ``01_tensors``, ``zh-00_basics``."""
    return "-".join(path.relative_to(EXAMPLES).with_suffix("").parts)


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


# -- which magics a notebook uses ------------------------------------------------
_MAGIC_LINE = re.compile(r"^\s*(%%?)([A-Za-z_]\w*)", re.M)


def magic_uses(source: str) -> list[tuple[str, str]]:
    """``[("cell" | "line", name), ...]`` for torchmagic magics in ``source``.

    A ``%%name`` counts only on the first line (that is where IPython looks).
    """
    uses: list[tuple[str, str]] = []
    for m in _MAGIC_LINE.finditer(source):
        prefix, name = m.group(1), m.group(2)
        if name not in TORCHMAGIC_MAGICS:
            continue
        if prefix == "%%":
            if source[: m.start()].strip() == "":
                uses.append(("cell", name))
        else:
            uses.append(("line", name))
    return uses


#: The package that implements each magic form (a registered magic without its
#: package is a placeholder that says "not available yet").
AREAS = {
    ("line", "tensorinfo"): "torchmagic.tensors",
    ("cell", "tensorinfo"): "torchmagic.trace",
    ("line", "autograd"): "torchmagic.autograd",
    ("cell", "autograd"): "torchmagic.autograd",
    ("line", "device"): "torchmagic.device",
    ("cell", "device"): "torchmagic.device",
    ("line", "distributed"): "torchmagic.distributed",
    ("cell", "distributed"): "torchmagic.distributed",
}


def missing_in_sources(sources: list[str]) -> list[str]:
    """torchmagic magics used in ``sources`` that this checkout does not provide yet."""
    import importlib.util

    from torchmagic.magics import TorchMagics

    have = TorchMagics.magics
    missing: list[str] = []
    for source in sources:
        for kind, name in magic_uses(source):
            label = ("%%" if kind == "cell" else "%") + name
            area = AREAS.get((kind, name))
            present = name in have[kind] and (area is None or importlib.util.find_spec(area) is not None)
            if not present and label not in missing:
                missing.append(label)
    return missing


def missing_magics(nb: Any) -> list[str]:
    """torchmagic magics the notebook uses that this checkout does not provide yet."""
    return missing_in_sources([c.source for c in nb.cells if c.cell_type == "code"])


_CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.M | re.S)


def markdown_code_cells(text: str) -> list[str]:
    """The sources of the ``{code-cell}`` blocks of a MyST notebook page (options dropped)."""
    cells = []
    for m in _CODE_CELL.finditer(text):
        lines = m.group(1).splitlines()
        while lines and re.match(r"^:\w[\w-]*:", lines[0]):
            lines.pop(0)
        cells.append("\n".join(lines))
    return cells


# -- execution and cache -----------------------------------------------------------
def source_key(path: Path) -> str:
    """Hash of the notebook and of every file the output depends on."""
    h = hashlib.sha256()
    h.update(path.read_bytes())
    sources = [*(ROOT / "torchmagic").rglob("*.py"), *(ROOT / "torchmagic").rglob("*.po")]  # code and catalogs
    for f in sorted(sources):
        h.update(str(f.relative_to(ROOT)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def kernel_env() -> dict[str, str]:
    """The environment for example kernels: this checkout first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.setdefault("COLUMNS", "120")
    return env


def execute(path: Path, timeout: int = 300) -> Any:
    """Execute ``path`` top to bottom in a fresh kernel; errors stay in the outputs."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,  # every cell runs; tests then judge each cell's outputs
        resources={"metadata": {"path": str(path.parent)}},
    )
    # NotebookClient passes extra kwargs to the kernel manager's start_kernel.
    client.execute(env=kernel_env())
    return nb


def cached_path(path: Path) -> Path:
    return EXECUTED / f"{example_name(path)}.ipynb"


def load_cached(path: Path) -> Any | None:
    """The cached executed notebook, if it was made from the current sources."""
    import nbformat

    out = cached_path(path)
    if not out.exists():
        return None
    nb = nbformat.read(out, as_version=4)
    if nb.metadata.get(CACHE_KEY) != source_key(path):
        return None
    return nb


_RUN_HERE: set[str] = set()  # cache keys executed by this process


def execute_cached(path: Path, this_process: bool = False) -> Any:
    """Execute ``path``, or reuse the cache when it was made from the current sources.

    With ``this_process=True`` only a cache written by this very process counts
    (the notebook test uses that: in one pytest run the browser test and the
    notebook test share one execution, but a run never trusts an older one).
    """
    import nbformat

    key = source_key(path)
    if not this_process or key in _RUN_HERE:
        nb = load_cached(path)
        if nb is not None:
            return nb
    nb = execute(path)
    _RUN_HERE.add(key)
    nb.metadata[CACHE_KEY] = key
    EXECUTED.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, cached_path(path))
    return nb


# -- judging outputs ---------------------------------------------------------------
@dataclass
class CellProblem:
    index: int
    source: str
    problem: str

    def __str__(self) -> str:
        first = self.source.strip().splitlines()[0] if self.source.strip() else ""
        return f"cell {self.index} ({first!r}): {self.problem}"


_USAGE_ERROR = re.compile(r"^UsageError: .*$", re.M)


def _error_text(out: Any) -> str:
    if out.output_type == "error":
        return strip_ansi("\n".join(out.get("traceback", [])) or f"{out.ename}: {out.evalue}")
    return ""


def cell_problems(nb: Any) -> list[CellProblem]:
    """Everything wrong with an executed notebook's outputs.

    * an untagged cell with an error output, or a traceback printed to a
      stream (IPython prints event-callback failures that way and the cell
      still counts as ``ok``);
    * a cell tagged ``raises-exception`` that did not raise;
    * a cell that calls a torchmagic magic (and is not meant to raise) with no
      HTML report and plain-text fallback in its outputs.
    """
    problems: list[CellProblem] = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.get("tags", [])
        raises = RAISES in tags
        errors = [_error_text(o) for o in cell.outputs if o.output_type == "error"]
        streams = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        # IPython shows a UsageError as one stderr line, not as an error output.
        errors += _USAGE_ERROR.findall(strip_ansi(streams))
        if raises:
            if not errors:
                problems.append(CellProblem(i, cell.source, f"tagged {RAISES} but did not raise"))
            continue
        for err in errors:
            problems.append(CellProblem(i, cell.source, "raised:\n" + err))
        if "Traceback (most recent call last)" in streams or "Error in callback" in streams:
            problems.append(CellProblem(i, cell.source, "printed a traceback:\n" + strip_ansi(streams)))
        if magic_uses(cell.source) and not errors and not report_outputs(cell):
            problems.append(
                CellProblem(i, cell.source, "no torchmagic report (text/html with a .tm block + text/plain)")
            )
    return problems


def report_outputs(cell: Any) -> list[dict[str, Any]]:
    """The mime bundles in ``cell`` that are torchmagic reports."""
    found = []
    for o in cell.get("outputs", []):
        if o.output_type not in ("display_data", "execute_result"):
            continue
        data = o.get("data", {})
        html = data.get("text/html", "")
        if isinstance(html, list):
            html = "".join(html)
        if 'class="tm ' in html and data.get("text/plain"):
            found.append(dict(data))
    return found


# -- HTML export and the browser -------------------------------------------------------
def export_html(nb: Any, theme: str = "light") -> str:
    """The notebook as a JupyterLab-styled page (nbconvert's ``lab`` template)."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", theme=theme)
    body, _ = exporter.from_notebook_node(nb)
    return str(body)


#: VS Code's default "Dark Modern" colours, as its notebook webview exposes them.
VSCODE_DARK = {
    "--vscode-editor-background": "#1f1f1f",
    "--vscode-editor-foreground": "#cccccc",
    "--vscode-descriptionForeground": "#9d9d9d",
    "--vscode-editorWidget-background": "#202020",
    "--vscode-panel-border": "#2b2b2b",
    "--vscode-errorForeground": "#f85149",
    "--vscode-editorWarning-foreground": "#cca700",
    "--vscode-textLink-foreground": "#4daafc",
    "--vscode-testing-iconPassed": "#73c991",
    "--vscode-font-family": "system-ui, sans-serif",
}


def vscode_html(nb: Any, colours: dict[str, str] = VSCODE_DARK) -> str:
    """The notebook's HTML outputs on a page like VS Code's output webview.

    VS Code does not define JupyterLab's ``--jp-*`` variables, so this checks the
    ``--vscode-*`` fallbacks of our styles: each code cell becomes a
    ``<section id="cell-id=...">`` holding its ``text/html`` outputs.
    """
    import html as _html

    root = "; ".join(f"{k}: {v}" for k, v in colours.items())
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><style>",
        f":root {{ {root}; }}",
        ("body { background: var(--vscode-editor-background); color: var(--vscode-editor-foreground);"
        " font-family: var(--vscode-font-family); margin: 16px; }"),
        "pre.src { opacity: 0.8; }",
        "</style></head><body>",
    ]
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        parts.append(
            f'<section id="cell-id={_html.escape(cell.id)}"><pre class="src">{_html.escape(cell.source)}</pre>'
        )
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            if "text/html" in data:
                h = data["text/html"]
                parts.append("<div class='output'>" + ("".join(h) if isinstance(h, list) else h) + "</div>")
            elif "text/plain" in data or o.get("output_type") == "stream":
                text = data.get("text/plain", o.get("text", ""))
                parts.append(f"<pre>{_html.escape(strip_ansi(str(text)))}</pre>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(path: Path, nb: Any, theme: str = "light") -> Path:
    """Write the page a reader would see: ``light``/``dark`` JupyterLab, or ``vscode-dark``."""
    HTML_DIR.mkdir(parents=True, exist_ok=True)
    out = HTML_DIR / f"{example_name(path)}.{theme}.html"
    text = vscode_html(nb) if theme == "vscode-dark" else export_html(nb, theme)
    out.write_text(text, encoding="utf-8")
    return out


def chromium_path() -> str | None:
    """Debian's Chromium (or ``$TORCHMAGIC_CHROMIUM``), if installed."""
    env = os.environ.get("TORCHMAGIC_CHROMIUM")
    if env:
        return env if Path(env).exists() else None
    for candidate in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if Path(candidate).exists():
            return candidate
    return shutil.which("chromium") or shutil.which("chromium-browser")


def launch(playwright: Any) -> Any:
    """Headless Chromium from the system (``playwright install`` is not needed)."""
    exe = chromium_path()
    if exe is None:
        raise RuntimeError("Chromium not found: apt-get install -y chromium (or set TORCHMAGIC_CHROMIUM)")
    return playwright.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)


def offline(page: Any) -> None:
    """Serve only local files: the lab template links CDN scripts we do not need."""

    def route(r: Any) -> None:
        if r.request.url.startswith(("file:", "data:", "about:")):
            r.continue_()
        else:
            r.abort()

    page.route("**/*", route)


def iter_examples(names: list[str]) -> Iterator[Path]:
    for path in examples():
        if not names or example_name(path) in names or path.stem in names or path.name in names:
            yield path


def main(argv: list[str]) -> int:
    bad = 0
    for path in iter_examples(argv):
        nb = execute_cached(path)
        problems = cell_problems(nb)
        for theme in ("light", "dark", "vscode-dark"):
            out = write_html(path, nb, theme)
        print(f"{example_name(path)}: {len(problems)} problem(s); {out.parent}/{example_name(path)}.*.html")
        for p in problems:
            print("   ", p)
        bad += bool(problems)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main(sys.argv[1:]))

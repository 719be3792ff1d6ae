"""The documentation site builds offline, strictly, from this checkout.

``sphinx-build -W --keep-going``: any warning (a broken cross-reference, a
missing image, an include that is not there, a docstring autodoc cannot
parse) fails the build, and myst-nb executes every example on the site in a
real kernel, where an unexpected error fails the build too.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BUILD = ROOT / "out" / "docs" / "html"


def _need(*modules: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        msg = f"docs packages missing: {', '.join(missing)} (pip install -e '.[docs]')"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


def _sphinx(src: Path, out: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    cmd = [
        sys.executable,
        "-m",
        "sphinx",
        "-W",
        "--keep-going",
        "-T",
        "-E",
        "-a",
        "-q",
        "-j",
        "auto",
        "-b",
        "html",
        str(src),
        str(out),
    ]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def build() -> subprocess.CompletedProcess[str]:
    """One strict build of the real docs for this module's tests."""
    _need("sphinx", "myst_nb", "furo")
    return _sphinx(DOCS, BUILD)


@pytest.mark.kernel
def test_docs_build_strict(build: subprocess.CompletedProcess[str]) -> None:
    proc = build
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"docs build failed:\n{log[-6000:]}"
    assert not re.search(r"(^|: )WARNING: ", log, re.M), log

    waiting = re.findall(r"left out until their magics land: (.*)", log)
    assert not (waiting and os.environ.get("CI")), waiting
    left_out = {part.split(" (")[0].strip() for part in waiting[0].split(";")} if waiting else set()

    from torchmagic.magics import TorchMagics

    config = (BUILD / "configuration.html").read_text(encoding="utf-8")
    for name in TorchMagics.class_traits(config=True):
        assert f"TorchMagics.{name}" in config, f"configuration page lacks {name}"

    pages = {
        "magics/tensorinfo": TorchMagics.tensorinfo,
        "magics/trace": TorchMagics.tensorinfo,
        "magics/autograd": getattr(TorchMagics, "autograd", None),
        "magics/device": getattr(TorchMagics, "device", None),
    }
    for page, magic in pages.items():
        if page in left_out:
            continue
        html = (BUILD / f"{page}.html").read_text(encoding="utf-8")
        assert 'class="tm ' in html, f"{page}: no executed report on the page"
        parser = getattr(magic, "parser", None)
        for action in parser._actions if parser else []:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert flag in html, f"{page}: option {flag} is not documented"

    for nb in sorted((ROOT / "examples").glob("*.ipynb")):
        if f"examples/{nb.stem}" in left_out:
            continue
        html = (BUILD / "examples" / f"{nb.stem}.html").read_text(encoding="utf-8")
        assert 'class="tm ' in html, f"example {nb.stem}: no report on its page"
    assert "torchmagic.tensors" in (BUILD / "api.html").read_text(encoding="utf-8")
    assert (BUILD / "benchmarks.html").exists()


@pytest.mark.kernel
def test_strict_build_fails_on_broken_links_and_examples(tmp_path: Path) -> None:
    """The same settings reject a dead link and an example that raises."""
    _need("sphinx", "myst_nb")
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(
        "extensions = ['myst_nb']\n"
        "nb_execution_mode = 'force'\nnb_execution_raise_on_error = True\nnb_execution_show_tb = True\n"
        "exclude_patterns = ['_build']\n",
        encoding="utf-8",
    )
    (src / "index.md").write_text("# Home\n\nSee [the missing page](nowhere.md).\n", encoding="utf-8")
    proc = _sphinx(src, tmp_path / "out")
    assert proc.returncode != 0 and "nowhere" in proc.stdout + proc.stderr

    (src / "index.md").write_text(
        "---\nfile_format: mystnb\nkernelspec:\n  name: python3\n  display_name: Python 3\n---\n"
        "# Home\n\n```{code-cell} ipython3\n1 / 0\n```\n",
        encoding="utf-8",
    )
    proc = _sphinx(src, tmp_path / "out2")
    assert proc.returncode != 0 and "ZeroDivisionError" in proc.stdout + proc.stderr


@pytest.mark.browser
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_docs_reports_legible(build: subprocess.CompletedProcess[str], theme: str) -> None:
    """Reports on the site follow furo's light and dark modes and stay readable."""
    if build.returncode != 0:
        pytest.skip("the docs did not build (see test_docs_build_strict)")
    from scripts import nbtools
    from tests.browser.pagecheck import SCREENSHOTS, probe, report_problems

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or nbtools.chromium_path() is None:
        msg = "Playwright or Chromium missing (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    pages = sorted(p for p in BUILD.rglob("*.html") if 'class="tm ' in p.read_text(encoding="utf-8"))
    assert pages, "no page of the site shows a report"
    problems: list[str] = []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = nbtools.launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            nbtools.offline(page)
            for html in pages:
                page.goto(html.resolve().as_uri(), wait_until="load")
                page.evaluate("t => { document.body.dataset.theme = t; }", theme)
                info = probe(page)
                lum_ok = info["page_lum"] < 0.1 if theme == "dark" else info["page_lum"] > 0.8
                name = html.relative_to(BUILD).as_posix()
                if not lum_ok:
                    problems.append(f"{name}: the {theme} mode did not apply ({info['page_bg']})")
                for r in info["reports"]:
                    problems += [f"{name} ({theme}): {p}" for p in report_problems(r)]
            page.screenshot(path=str(SCREENSHOTS / f"docs-last-page.{theme}.png"))
        finally:
            browser.close()
    assert not problems, "\n".join(problems[:40])

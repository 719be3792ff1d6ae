"""Sphinx configuration for the torchmagic documentation.

Build offline, strictly (warnings are errors):

    python -m sphinx -W --keep-going -j auto -b html docs out/docs/html

Pages are MyST Markdown; pages with ``{code-cell}`` blocks and the example
notebooks are executed by myst-nb in a real kernel at build time, so every
example on the site is real output of this checkout.  The configuration
reference and each magic's option table are generated from the code by
``gen_config.py``.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
# Kernels started by myst-nb inherit this: they import torchmagic from this checkout.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))
os.environ.setdefault("COLUMNS", "100")

import torchmagic  # noqa: E402 - after sys.path points at this checkout

sys.path.insert(0, str(DOCS))
import gen_config  # noqa: E402 - lives next to this file

gen_config.write_all(DOCS / "_generated")


from scripts import nbtools  # noqa: E402 - after sys.path points at this checkout

#: Pages left out because this checkout lacks a magic they use (never under CI:
#: there every page must build).  docname -> the missing magics.
WAITING: dict[str, list[str]] = {}


def _copy_examples() -> None:
    """Copy ``examples/*.ipynb`` into the site; reuse a fresh executed copy when there is one."""
    import nbformat

    dest = DOCS / "examples"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir()
    for path in nbtools.examples():
        nb = nbtools.load_cached(path)  # outputs made from exactly these sources
        if nb is not None:
            nb.metadata["mystnb"] = {"execution_mode": "off"}
        else:
            nb = nbformat.read(path, as_version=4)
        missing = nbtools.missing_magics(nb)
        if missing and not os.environ.get("CI"):
            WAITING[f"examples/{path.stem}"] = missing
            continue
        nbformat.write(nb, dest / path.name)


def _find_waiting_pages() -> None:
    if os.environ.get("CI"):
        return
    for page in sorted(DOCS.glob("magics/*.md")):
        missing = nbtools.missing_in_sources(nbtools.markdown_code_cells(page.read_text(encoding="utf-8")))
        if missing:
            WAITING[str(page.relative_to(DOCS).with_suffix("").as_posix())] = missing


_copy_examples()
_find_waiting_pages()

project = "torchmagic"
author = "torchmagic developers"
copyright = "torchmagic developers"
release = version = torchmagic.__version__

extensions = ["myst_nb", "sphinx.ext.autodoc"]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
# Guides written next to the magics (docs/<area>.md) are included into their magic's page.
exclude_patterns = ["_build", "_generated", "jupyter_execute", "**.ipynb_checkpoints", "README.md", "autograd.md"]
exclude_patterns += [f"{name}.md" for name in WAITING if name.startswith("magics/")]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# Execute every notebook page in a fresh kernel; any unexpected error fails the build.
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_timeout = 300
nb_merge_streams = True

autodoc_member_order = "bysource"
autodoc_typehints = "description"

html_theme = "furo"
html_title = f"torchmagic {release}"
html_static_path = ["_static"]
html_css_files = ["torchmagic.css"]
html_theme_options = {"source_directory": "docs/"}


def _drop_waiting_from_toctrees(app: object, docname: str, source: list[str]) -> None:
    """Remove toctree entries and links to pages left out (see ``WAITING``)."""
    if not WAITING:
        return
    import re

    lines = source[0].splitlines()
    text = "\n".join(ln for ln in lines if ln.strip() not in WAITING) + "\n"
    for name in WAITING:
        # [label](magics/x.md) or (../examples/x.ipynb#anchor) -> label
        link = r"\[([^\]]*)\]\((?:\.\./)*" + re.escape(name) + r"\.(?:md|ipynb)(?:#[^)]*)?\)"
        text = re.sub(link, r"\1", text)
    source[0] = text


def setup(app: object) -> None:
    app.connect("source-read", _drop_waiting_from_toctrees)  # type: ignore[attr-defined]
    if WAITING:
        print("torchmagic docs: left out until their magics land: "
              + "; ".join(f"{k} ({', '.join(v)})" for k, v in WAITING.items()))

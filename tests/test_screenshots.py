"""The screenshot script's shots point at real cells, and the pictures the README shows exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scripts import nbtools, screenshots

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("shot", screenshots.SHOTS, ids=[s.name for s in screenshots.SHOTS])
def test_shot_names_an_existing_magic_cell(shot: screenshots.Shot) -> None:
    nbformat = pytest.importorskip("nbformat")
    path = nbtools.EXAMPLES / f"{shot.notebook}.ipynb"
    nb = nbformat.read(path, as_version=4)
    cells = {c.id: c for c in nb.cells}
    assert shot.cell_id in cells, f"{path.name} has no cell {shot.cell_id!r}"
    assert nbtools.magic_uses(cells[shot.cell_id].source), f"{shot.cell_id} calls no magic"
    assert shot.theme in ("light", "dark")


def test_readme_and_docs_pictures_exist() -> None:
    texts = [(ROOT / "README.md").read_text(encoding="utf-8")]
    texts += [p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md")]
    refs = {m for t in texts for m in re.findall(r"\]\(((?:docs/)?images/[\w.-]+\.png)\)", t)}
    assert refs, "the README shows no picture"
    for ref in refs:
        path = ROOT / (ref if ref.startswith("docs/") else f"docs/{ref}")
        assert path.exists(), f"{ref} is referenced but missing (run scripts/screenshots.py)"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

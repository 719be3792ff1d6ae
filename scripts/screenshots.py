"""Screenshots of real magic output for the README and the docs.

Executes the example notebooks (or reuses ``out/executed/`` when it was made
from the current sources), exports them with nbconvert's JupyterLab template,
opens them in headless Chromium and photographs chosen cells — input and
output, as a reader sees them — into ``docs/images/``.  Nothing is drawn by
hand: rerun this after changing a renderer and commit the new PNGs.

    python scripts/screenshots.py            # all shots whose magics exist
    python scripts/screenshots.py --list     # what it would take

Needs Chromium (``apt-get install -y chromium``) and Playwright (``pip install
-e '.[test]'``).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts import nbtools  # noqa: E402 - after sys.path points at this checkout

IMAGES = ROOT / "docs" / "images"
WIDTH = 1000  # px: the page width the shots are taken at
MAX_HEIGHT = 720  # px: taller cells are cut (the top is what matters)


@dataclass(frozen=True)
class Shot:
    name: str  # file name under docs/images, without .png
    notebook: str  # example stem
    cell_id: str  # the cell's id in the notebook
    theme: str = "light"


SHOTS = [
    Shot("tensorinfo", "01_tensors", "ten-07"),
    Shot("tensorinfo-dark", "01_tensors", "ten-07", "dark"),
    Shot("tensorinfo-sharing", "01_tensors", "ten-16"),
    Shot("trace-broadcasting", "02_operations", "ope-09"),
    Shot("trace-error", "02_operations", "ope-11"),
    Shot("autograd", "03_autograd", "aut-03"),
    Shot("autograd-accumulation", "03_autograd", "aut-07"),
    Shot("device", "04_devices", "dev-05"),
    Shot("device-model", "04_devices", "dev-12"),
]


def take(shots: list[Shot]) -> list[Path]:
    import nbformat
    from playwright.sync_api import sync_playwright

    written: list[Path] = []
    IMAGES.mkdir(parents=True, exist_ok=True)
    by_notebook: dict[str, list[Shot]] = {}
    for s in shots:
        by_notebook.setdefault(s.notebook, []).append(s)
    with sync_playwright() as pw:
        browser = nbtools.launch(pw)
        try:
            for stem, group in by_notebook.items():
                path = nbtools.EXAMPLES / f"{stem}.ipynb"
                missing = nbtools.missing_magics(nbformat.read(path, as_version=4))
                if missing:
                    print(f"skip {stem}: this checkout has no {', '.join(missing)} yet")
                    continue
                nb = nbtools.execute_cached(path)
                problems = nbtools.cell_problems(nb)
                if problems:
                    print(f"skip {stem}: the notebook has problems:\n  " + "\n  ".join(map(str, problems)))
                    continue
                for theme in sorted({s.theme for s in group}):
                    html = nbtools.write_html(path, nb, theme)
                    page = browser.new_page(viewport={"width": WIDTH, "height": 900}, device_scale_factor=1)
                    nbtools.offline(page)
                    page.goto(html.resolve().as_uri(), wait_until="load")
                    for s in (s for s in group if s.theme == theme):
                        cell = page.locator(f'[id="cell-id={s.cell_id}"]')
                        if cell.count() != 1:
                            raise SystemExit(f"{stem}: no cell with id {s.cell_id!r} (the notebook changed?)")
                        # page coordinates (bounding_box() is relative to the viewport)
                        box = cell.evaluate(
                            "e => { const r = e.getBoundingClientRect();"
                            " return {x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height}; }"
                        )
                        clip = {"x": box["x"], "y": box["y"], "width": box["w"], "height": min(box["h"], MAX_HEIGHT)}
                        out = IMAGES / f"{s.name}.png"
                        page.screenshot(path=str(out), clip=clip, full_page=True)
                        written.append(out)
                        print(f"wrote {out.relative_to(ROOT)} ({out.stat().st_size // 1024} KiB)")
                    page.close()
        finally:
            browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--list", action="store_true", help="list the shots and exit")
    ap.add_argument("names", nargs="*", help="only these shots (default: all)")
    args = ap.parse_args(argv)
    shots = [s for s in SHOTS if not args.names or s.name in args.names]
    if args.list:
        for s in shots:
            print(f"{s.name:24} {s.notebook}:{s.cell_id} ({s.theme})")
        return 0
    take(shots)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

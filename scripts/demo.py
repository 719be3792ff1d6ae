"""The main job: run the quickstart notebook in a real kernel and show what it made.

1. Executes ``examples/00_quickstart.ipynb`` in a fresh Jupyter kernel (nbclient),
   fails on any error output, and writes the executed notebook and an HTML page
   (nbconvert, JupyterLab template) to ``out/``.
2. Runs the same cells in an IPython terminal shell, so you see the rich
   terminal rendering right here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "00_quickstart.ipynb"
OUT = ROOT / "out"


def execute(path: Path) -> object:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                raise SystemExit(f"error output in cell:\n{cell.source}\n{output.get('ename')}: {output.get('evalue')}")
    return nb


def write_html(nb: object, name: str) -> Path:
    import nbformat
    from nbconvert import HTMLExporter

    OUT.mkdir(exist_ok=True)
    nbformat.write(nb, OUT / f"{name}.ipynb")
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    page = OUT / f"{name}.html"
    page.write_text(body, encoding="utf-8")
    return page


def terminal(nb: object) -> None:
    from IPython.terminal.interactiveshell import TerminalInteractiveShell

    shell = TerminalInteractiveShell.instance(colors="nocolor")
    for cell in nb.cells:  # type: ignore[attr-defined]
        if cell.cell_type != "code":
            continue
        print(f"\nIn: {cell.source}")
        result = shell.run_cell(cell.source, store_history=True)
        if not result.success:
            raise SystemExit(f"cell failed in the terminal shell: {result.error_in_exec!r}")


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else NOTEBOOK
    nb = execute(path)
    page = write_html(nb, path.stem)
    print(f"Executed {path.relative_to(ROOT)} in a real kernel: no errors.")
    print(f"HTML page written: {page.relative_to(ROOT)} (open it in a browser)")
    print("\nThe same cells in the IPython terminal:")
    terminal(nb)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()

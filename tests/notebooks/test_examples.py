"""Every example notebook runs top to bottom in a real kernel.

Each notebook is executed with nbclient in a fresh ``python3`` kernel whose
``PYTHONPATH`` starts with this checkout.  A cell fails the test when it has
an error output or prints a traceback, unless it is tagged
``raises-exception`` — and then it must raise.  Cells that call a torchmagic
magic must show a report (HTML plus plain text).  The executed notebooks are
cached in ``out/executed/`` for the browser test and the screenshot script.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from scripts import nbtools

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

EXAMPLES = nbtools.examples()
IDS = [nbtools.example_name(p) for p in EXAMPLES]


def test_there_are_examples() -> None:
    names = {p.stem for p in EXAMPLES}
    assert {"01_tensors", "02_operations", "03_autograd", "04_devices"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=IDS)
def test_stored_clean(path: Path) -> None:
    """Notebooks are stored valid, without outputs, and raise-tags are deliberate."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert cell.outputs == [], f"cell {i} is stored with outputs"
        assert cell.execution_count is None, f"cell {i} is stored with an execution count"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), "starts with a title"
    loads = [i for i, c in enumerate(nb.cells) if "%load_ext torchmagic" in c.source]
    first_magic = min(
        (i for i, c in enumerate(nb.cells) if c.cell_type == "code" and nbtools.magic_uses(c.source)),
        default=len(nb.cells),
    )
    assert loads and loads[0] < first_magic, "loads the extension before the first magic"


def test_magic_uses() -> None:
    assert nbtools.magic_uses("%%tensorinfo\nx = 1") == [("cell", "tensorinfo")]
    assert nbtools.magic_uses("x = 1\n%tensorinfo x\n") == [("line", "tensorinfo")]
    assert nbtools.magic_uses("%%time\n%device") == [("line", "device")]
    assert nbtools.magic_uses("# %%autograd in a comment\nx = 1") == []
    assert nbtools.magic_uses("%load_ext torchmagic") == []


@pytest.mark.kernel
@pytest.mark.parametrize("path", EXAMPLES, ids=IDS)
def test_example_runs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    missing = nbtools.missing_magics(nb)
    if missing and not os.environ.get("CI"):
        pytest.skip(f"this checkout has no {', '.join(missing)} yet")
    executed = nbtools.execute_cached(path, this_process=True)
    problems = nbtools.cell_problems(executed)
    assert not problems, f"{path.name}:\n" + "\n\n".join(map(str, problems))


def test_cell_problems_catches_errors() -> None:
    """The judge itself: an untagged error, a tagged cell that passes, a silent magic."""
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    ok = new_code_cell("1 + 1", outputs=[new_output("execute_result", data={"text/plain": "2"})])
    err = new_code_cell(
        "1 / 0",
        outputs=[
            new_output(
                "error",
                ename="ZeroDivisionError",
                evalue="division by zero",
                traceback=["\x1b[31mZeroDivisionError\x1b[0m"],
            )
        ],
    )
    tagged_quiet = new_code_cell("x = 1", metadata={"tags": ["raises-exception"]})
    tagged_raises = new_code_cell(
        "1 / 0",
        metadata={"tags": ["raises-exception"]},
        outputs=[new_output("error", ename="ZeroDivisionError", evalue="", traceback=[])],
    )
    silent_magic = new_code_cell("%tensorinfo x", outputs=[])
    callback = new_code_cell(
        "x = 1", outputs=[new_output("stream", name="stderr", text="Error in callback <f> (for post_run_cell):\n")]
    )
    shown = new_code_cell(
        "%tensorinfo x",
        outputs=[new_output("display_data", data={"text/html": '<div class="tm tm-x">x</div>', "text/plain": "x"})],
    )
    usage = new_code_cell(
        "%tensorinfo --nope",
        outputs=[new_output("stream", name="stderr", text="UsageError: unrecognized arguments: --nope\n")],
    )
    usage_tagged = new_code_cell(
        "%tensorinfo --nope",
        metadata={"tags": ["raises-exception"]},
        outputs=[new_output("stream", name="stderr", text="UsageError: unrecognized arguments: --nope\n")],
    )
    nb = new_notebook(cells=[ok, err, tagged_quiet, tagged_raises, silent_magic, callback, shown, usage, usage_tagged])
    problems = nbtools.cell_problems(nb)
    assert [p.index for p in problems] == [1, 2, 4, 5, 7]
    assert "UsageError: unrecognized arguments" in problems[4].problem
    assert "ZeroDivisionError" in str(problems[0]) and "\x1b" not in str(problems[0])
    assert "did not raise" in problems[1].problem
    assert "no torchmagic report" in problems[2].problem
    assert re.search("traceback", problems[3].problem)

"""``torchmagic.tensorinfo`` stays the API function after the magics import their modules.

Python binds a subpackage on its parent when first imported; the subpackage
used to share the function's name, and the documented ``torchmagic.tensorinfo(x)``
broke ("'module' object is not callable") as soon as ``%tensorinfo`` had run
once (the docs build found it).  The area is now ``torchmagic/tensors/``; these
tests keep any subpackage from taking the name again.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def test_function_survives_the_magic(ip: Any, capture: Any) -> None:
    import torchmagic

    ip.run_cell("import torch\nx = torch.ones(2, 3)")
    with capture():
        ip.run_line_magic("tensorinfo", "x")  # imports torchmagic.tensors.inspect
    import torchmagic.tensors.inspect

    assert callable(torchmagic.tensorinfo)
    report = torchmagic.tensorinfo(ip.user_ns["x"], names=["x"])
    assert "(2, 3)" in report.to_text()


def test_function_survives_submodule_imported_first() -> None:
    code = (
        "import torch, torchmagic.tensors.inspect, torchmagic\n"
        "r = torchmagic.tensorinfo(torch.zeros(4), names=['z'])\n"
        "print(type(r).__name__, callable(torchmagic.tensorinfo))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("True")


def test_import_stays_cheap() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import sys, torchmagic; print('torch' in sys.modules, 'IPython' in sys.modules)"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]

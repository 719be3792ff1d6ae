"""Loading, unloading and reloading leave exactly one of everything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _state(ip: Any) -> tuple[Any, ...]:
    mm = ip.magics_manager
    callbacks = tuple(sorted((e, len(cbs)) for e, cbs in ip.events.callbacks.items()))
    return (
        "tensorinfo" in mm.magics["line"],
        "TorchMagics" in mm.registry,
        sum(type(c).__name__ == "TorchMagics" for c in ip.configurables),
        callbacks,
        ip.CustomTB,
    )


def test_unload_removes_everything_and_reload_leaves_one(_shell: Any) -> None:
    ip = _shell
    baseline = _state(ip)
    assert baseline[:3] == (False, False, 0)
    ip.run_line_magic("load_ext", "torchmagic")
    loaded = _state(ip)
    assert loaded[:3] == (True, True, 1)
    ip.run_line_magic("reload_ext", "torchmagic")
    ip.run_line_magic("reload_ext", "torchmagic")
    assert _state(ip) == loaded
    ip.run_line_magic("load_ext", "torchmagic")  # already loaded: no duplicate
    assert _state(ip) == loaded
    ip.run_line_magic("unload_ext", "torchmagic")
    assert _state(ip) == baseline


def test_import_is_cheap() -> None:
    code = "import sys, torchmagic; print('torch' in sys.modules, 'IPython' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_loads_at_startup_from_config(tmp_path: Path) -> None:
    profile = tmp_path / "profile_default"
    profile.mkdir()
    (profile / "ipython_config.py").write_text("c.InteractiveShellApp.extensions = ['torchmagic']\n")
    env = dict(os.environ, IPYTHONDIR=str(tmp_path), PYTHONPATH=str(ROOT))
    code = "import torch; x = torch.ones(2, 3)\n%tensorinfo x"
    out = subprocess.run([sys.executable, "-m", "IPython", "--colors=nocolor", "-c", code],
                         capture_output=True, text=True, env=env, timeout=120)
    assert "x  matrix (2, 3) float32 cpu" in out.stdout, out.stdout + out.stderr

"""What speaking Chinese costs: import time, and a report rendered in English vs Chinese.

Run: ``.venv/bin/python benchmarks/bench_i18n.py`` (numbers go to docs/benchmarks.md).
Import times are the best of 7 fresh interpreters per language, interleaved; the
render times are the best of 30, English and Chinese interleaved in one process,
so the ratios hold on a noisy machine.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

IMPORT = "import time; t = time.perf_counter(); import torchmagic.magics; print(time.perf_counter() - t)"

CELLS = {
    "trace (broadcast error)": ("%%tensorinfo\na = torch.ones(2, 3)\nb = torch.ones(3, 2)\nc = a + b", True),
    "autograd (accumulation)": (
        "%%autograd\nw = torch.ones(3, requires_grad=True)\nfor _ in range(3):\n    (w * 2).sum().backward()", False),
    "tensorinfo (NaN stats)": ("v = torch.tensor([1.0, float('nan'), -1.0, 4.0])\n%tensorinfo v", False),
}


def import_time(language: str) -> float:
    env = {**os.environ, "LANGUAGE": language, "LANG": "C.UTF-8", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", IMPORT], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip())


def main() -> None:
    imports: dict[str, list[float]] = {"en": [], "zh_CN": []}
    for _ in range(7):
        for language in imports:
            imports[language].append(import_time(language))
    en, zh = min(imports["en"]), min(imports["zh_CN"])
    print(f"import torchmagic.magics: en {en * 1e3:.0f} ms, zh_CN {zh * 1e3:.0f} ms ({zh / en:.2f}x)")

    from IPython.testing.globalipapp import start_ipython

    ip: Any = start_ipython()
    ip.run_line_magic("load_ext", "torchmagic")
    ip.run_cell("import torch")
    for name, (cell, fails) in CELLS.items():
        timings: dict[str, list[float]] = {"en": [], "zh_CN": []}
        for _ in range(30):
            for language in timings:
                ip.run_line_magic("config", f"TorchMagics.language = {language!r}")
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                    t0 = time.perf_counter()
                    ip.run_cell(cell)
                    timings[language].append(time.perf_counter() - t0)
        a, b = min(timings["en"]), min(timings["zh_CN"])
        print(f"{name}: en {a * 1e3:.2f} ms, zh_CN {b * 1e3:.2f} ms ({b / a:.2f}x){' (the cell fails)' if fails else ''}")
    ip.run_line_magic("config", "TorchMagics.language = 'auto'")


if __name__ == "__main__":
    main()

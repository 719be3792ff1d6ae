"""Speed of the foundation: import, %load_ext, %tensorinfo on big tensors, namespace scan.

Run: ``.venv/bin/python benchmarks/bench_tensorinfo.py`` (numbers go to docs/benchmarks.md).
Each figure is the best (minimum) of several runs, measured in one process run,
so ratios are comparable even on a noisy machine.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def best(fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def import_cost() -> tuple[float, float]:
    """Median over 5 fresh interpreters of: import torch; then import torchmagic + %load_ext."""
    code = (
        "import time; t0=time.perf_counter(); import torch; t1=time.perf_counter();"
        "from IPython.testing import globalipapp; globalipapp.start_ipython(); ip=globalipapp.get_ipython();"
        "t2=time.perf_counter(); import torchmagic; ip.run_line_magic('load_ext','torchmagic');"
        "t3=time.perf_counter(); print(t1-t0, t3-t2)"
    )
    torch_s, ext_s = [], []
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for _ in range(5):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        a, b = (float(v) for v in out.stdout.split())
        torch_s.append(a)
        ext_s.append(b)
    return statistics.median(torch_s), statistics.median(ext_s)


def main() -> None:
    import torch
    from IPython.testing import globalipapp
    from IPython.utils.capture import capture_output

    torch_s, ext_s = import_cost()
    globalipapp.start_ipython()
    ip = globalipapp.get_ipython()
    ip.run_line_magic("load_ext", "torchmagic")
    ip.user_ns["big"] = torch.randn(4096, 4096)
    ip.user_ns["bigT"] = ip.user_ns["big"].t()
    ip.user_ns["huge_int"] = torch.randint(0, 100, (64, 1024, 1024), dtype=torch.int32)

    def magic(line: str) -> Callable[[], object]:
        def run() -> None:
            with capture_output():
                ip.run_line_magic("tensorinfo", line)
        return run

    rows = [
        ("import torch (reference)", torch_s),
        ("import torchmagic + %load_ext torchmagic", ext_s),
        ("%tensorinfo big  (4096×4096 float32, 64 MiB)", best(magic("big"))),
        ("%tensorinfo bigT (its transpose, not contiguous)", best(magic("bigT"))),
        ("%tensorinfo huge_int (64×1024×1024 int32, 256 MiB)", best(magic("huge_int"), 3)),
    ]
    from torchmagic.options import options_for
    from torchmagic.tensors.inspect import InfoOptions, inspect_one

    rows.append(
        (
            "  of which: collect only (no rendering), big",
            best(lambda: inspect_one("big", ip.user_ns["big"], {}, options_for(InfoOptions))),
        )
    )
    for i in range(5000):
        ip.user_ns[f"v{i}"] = i
    for i in range(2000):
        ip.user_ns[f"t{i}"] = torch.ones(3)
    rows.append(("%tensorinfo (no argument), 7,000 names, 2,000 tensors", best(magic(""), 3)))
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}"
    )
    for label, seconds in rows:
        print(f"| {label} | {seconds * 1000:.1f} ms |")


if __name__ == "__main__":
    main()

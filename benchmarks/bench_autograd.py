"""Benchmark ``%%autograd`` on real models against the same cells run bare.

Every cell runs through an in-process IPython shell (``run_cell``), output
captured, with torch on one thread (``--threads``); bare and ``%%autograd``
runs are interleaved round by round so machine noise hits both alike, and
each figure is the best of the rounds.  "notebook" means the report is
rendered as a notebook shows it (the HTML with its SVGs *and* the plain
text of the display bundle); "terminal" renders the rich text only.

* ``transformer``: a 2-layer ``nn.TransformerEncoder`` (d_model 64, batch 2,
  10 tokens), forward + backward (target: ``%%autograd`` ≤ 4× bare);
* ``loop``: an MLP (32-64-1) + SGD, 500 steps in one cell (target ≤ 1.5×);
* ``big``: a 12-layer ``TransformerEncoder`` (d_model 256), forward +
  backward, folded (target: answered in < 1 s, HTML < 300 KB);
* ``chain``: our pure-Python layout + SVG of a 330-block ``Linear`` + ``Tanh``
  chain (1,652 nodes) against Graphviz ``dot -Tsvg`` on the same graph
  (``apt-get install -y graphviz``; skipped without ``dot``).

    python benchmarks/bench_autograd.py [--only transformer loop big chain] [--rounds 15] [--threads 1]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from torch import nn

from torchmagic.autograd.collapse import collapse_repeats
from torchmagic.autograd.dot import to_dot
from torchmagic.autograd.graph import Graph
from torchmagic.autograd.svg import graph_svg
from torchmagic.autograd.walk import walk
from torchmagic.core import report as report_module

TRANSFORMER = """torch.manual_seed(0)
enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(d_model=64, nhead=4, dim_feedforward=128, batch_first=True),
                            num_layers=2)
src = torch.randn(2, 10, 64)"""
TRANSFORMER_CELL = "out = enc(src)\nloss = out.pow(2).mean()\nloss.backward()\nenc.zero_grad()"
LOOP = """torch.manual_seed(0)
model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.01)
x = torch.randn(64, 32); t = torch.randn(64, 1)"""
LOOP_CELL = """for step in range(500):
    opt.zero_grad()
    loss = ((model(x) - t) ** 2).mean()
    loss.backward()
    opt.step()"""
BIG = """torch.manual_seed(0)
big = nn.TransformerEncoder(nn.TransformerEncoderLayer(d_model=256, nhead=8, dim_feedforward=1024, batch_first=True),
                            num_layers=12)
tokens = torch.randn(4, 32, 256)"""
BIG_CELL = "out = big(tokens)\nloss = out.pow(2).mean()\nloss.backward()\nbig.zero_grad()"


def shell() -> Any:
    from IPython.testing import globalipapp

    globalipapp.start_ipython()
    ip = globalipapp.get_ipython()
    ip.run_line_magic("load_ext", "torchmagic")
    ip.run_cell("import torch\nfrom torch import nn")
    return ip


_IN_KERNEL = report_module.in_kernel


def notebook(on: bool) -> None:
    """Render reports as a notebook does (HTML and text bundle) or as a terminal does (text only)."""
    report_module.in_kernel = (lambda shell: True) if on else _IN_KERNEL  # type: ignore[assignment]


def timed_cell(ip: Any, cell: str) -> Callable[[], float]:
    from IPython.utils.capture import capture_output

    def run() -> float:
        gc.collect()
        with capture_output():
            t0 = time.perf_counter()
            res = ip.run_cell(cell)
            elapsed = time.perf_counter() - t0
        assert res.success, res.error_in_exec
        return elapsed

    return run


def interleaved(variants: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Best time of each variant over ``rounds`` rounds, the variants alternating within a round."""
    for fn in variants.values():  # warm-up (imports, caches)
        fn()
    best = {name: float("inf") for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            best[name] = min(best[name], fn())
    return best


def bench_cells(ip: Any, setup: str, cell: str, rounds: int) -> dict[str, float]:
    ip.run_cell(setup)
    bare = timed_cell(ip, cell)
    watched = timed_cell(ip, "%%autograd\n" + cell)

    def terminal() -> float:
        notebook(False)
        return watched()

    def in_notebook() -> float:
        notebook(True)
        try:
            return watched()
        finally:
            notebook(False)

    return interleaved({"bare": bare, "terminal": terminal, "notebook": in_notebook}, rounds)


def report_line(name: str, t: dict[str, float], unit: float = 1e3, per: str = "ms") -> None:
    print(f"{name}: bare {t['bare'] * unit:.2f} {per}, %%autograd terminal {t['terminal'] * unit:.2f} {per} "
          f"({t['terminal'] / t['bare']:.2f}x), notebook {t['notebook'] * unit:.2f} {per} "
          f"({t['notebook'] / t['bare']:.2f}x)")


def bench_big(ip: Any) -> None:
    ip.run_cell(BIG)
    bare = timed_cell(ip, BIG_CELL)
    bare()
    bare_s = min(bare() for _ in range(3))
    ip.run_cell("%%autograd -o _big_report\n" + BIG_CELL)  # warm-up
    notebook(True)
    try:
        total = min(timed_cell(ip, "%%autograd -o _big_report\n" + BIG_CELL)() for _ in range(3))
    finally:
        notebook(False)
    report = ip.user_ns.pop("_big_report")
    html = report.to_html()
    g = report.graph
    print(f"12-layer TransformerEncoder d_model 256 (4 x 32 tokens), forward+backward: bare {bare_s * 1e3:.0f} ms, "
          f"%%autograd as in a notebook {total * 1e3:.0f} ms (+{(total - bare_s) * 1e3:.0f} ms); "
          f"{g.total_nodes} backward nodes drawn as {len(g.nodes)} boxes, {len(report.drills)} drill-downs; "
          f"HTML {len(html.encode()) / 1024:.0f} KiB, text {len(report.to_text().splitlines())} lines")


def chain_graph(blocks: int) -> Graph:
    layers: list[nn.Module] = []
    for _ in range(blocks):
        layers += [nn.Linear(4, 4), nn.Tanh()]
    model = nn.Sequential(*layers)
    out = model(torch.randn(2, 4)).sum()
    return walk([("out", out)], namespace={"model": model})


def best(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def bench_chain(blocks: int, repeat: int) -> None:
    graph = chain_graph(blocks)
    print(f"graph: {blocks} x (Linear(4,4) + Tanh) -> {len(graph.nodes)} nodes, {len(graph.edges)} edges")
    ours_s, svg = best(lambda: graph_svg(graph), repeat)
    collapsed = collapse_repeats(graph)
    coll_s, coll_svg = best(lambda: graph_svg(collapse_repeats(graph)), repeat)
    rows = [
        ("torchmagic layout+SVG, full graph", ours_s, len(str(svg).encode())),
        (f"torchmagic collapse+layout+SVG ({len(collapsed.nodes)} boxes)", coll_s, len(str(coll_svg).encode())),
    ]
    if shutil.which("dot") is None:
        print("Graphviz `dot` not found (apt-get install -y graphviz): no Graphviz row.")
    else:
        source = to_dot(graph)
        dot_s, out = best(lambda: subprocess.run(["dot", "-Tsvg"], input=source.encode(), capture_output=True,
                                                  check=True).stdout, max(1, min(repeat, 3)))
        rows.append(("Graphviz dot -Tsvg (same graph, from to_dot())", dot_s, len(bytes(out))))  # type: ignore[arg-type]
    print("| drawing | time (best of runs) | SVG size |\n|---|---|---|")
    for name, secs, size in rows:
        print(f"| {name} | {secs * 1000:.0f} ms | {size / 1024:.0f} KiB |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", default=["transformer", "loop", "big", "chain"])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"torch {torch.__version__} ({torch.get_num_threads()} thread), load {os.getloadavg()[0]:.1f}")
    ip = shell()
    if "transformer" in args.only:
        report_line("2-layer TransformerEncoder d_model 64, forward+backward",
                    bench_cells(ip, TRANSFORMER, TRANSFORMER_CELL, args.rounds))
    if "loop" in args.only:
        t = bench_cells(ip, LOOP, LOOP_CELL, max(3, args.rounds // 3))
        report_line("MLP 32-64-1 + SGD, 500 steps in one cell", t)
        print(f"  per step: bare {t['bare'] / 500 * 1e6:.0f} us, %%autograd {t['notebook'] / 500 * 1e6:.0f} us")
    if "big" in args.only:
        bench_big(ip)
    if "chain" in args.only:
        bench_chain(330, 5)
    print(f"load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

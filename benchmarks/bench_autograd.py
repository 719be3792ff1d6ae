"""Benchmark: %%autograd's pure-Python layout + SVG against Graphviz ``dot -Tsvg``.

The graph is the backward graph of a 330-block ``Linear(4, 4)`` + ``Tanh``
chain (about 1,650 nodes).  Both sides draw the *same* graph: ours from the
walked :class:`Graph`, Graphviz from ``report.to_dot()`` of it.  Graphviz is
only needed here (``apt-get install -y graphviz``); without ``dot`` on PATH
the Graphviz column is skipped with a message.

    python benchmarks/bench_autograd.py [--blocks 330] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from torch import nn

from torchmagic.autograd.collapse import collapse_repeats
from torchmagic.autograd.dot import to_dot
from torchmagic.autograd.graph import Graph
from torchmagic.autograd.options import WatchOptions
from torchmagic.autograd.svg import graph_svg
from torchmagic.autograd.walk import walk
from torchmagic.options import options_for


def best(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def chain_graph(blocks: int) -> Graph:
    layers: list[nn.Module] = []
    for _ in range(blocks):
        layers += [nn.Linear(4, 4), nn.Tanh()]
    model = nn.Sequential(*layers)
    out = model(torch.randn(2, 4)).sum()
    return walk([("out", out)], namespace={"model": model})


def dot_svg(source: str) -> bytes:
    res = subprocess.run(["dot", "-Tsvg"], input=source.encode(), capture_output=True, check=True)
    return res.stdout


TRAIN = """
for step in range(steps):
    opt.zero_grad()
    loss = ((model(x) - t) ** 2).mean()
    loss.backward()
    opt.step()
"""


def training_overhead(steps: int, repeat: int) -> tuple[float, float]:
    """Seconds for an MLP + SGD loop, plain and inside the %%autograd watcher (best runs)."""
    from torchmagic.autograd.ledger import GradLedger
    from torchmagic.autograd.site import CellSite
    from torchmagic.autograd.watcher import AutogradWatcher

    code = compile(TRAIN, "<bench-cell>", "exec")

    def namespace() -> dict[str, object]:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 1))
        return {"model": model, "opt": torch.optim.SGD(model.parameters(), lr=0.01),
                "x": torch.randn(64, 32), "t": torch.randn(64, 1), "steps": steps}

    def plain() -> None:
        exec(code, namespace())

    def watched() -> None:
        ns = namespace()
        site = CellSite("<bench-cell>", TRAIN.splitlines(), ns)
        watcher = AutogradWatcher(site, GradLedger(), options_for(WatchOptions))
        with watcher:
            exec(code, ns)

    plain()  # warm-up
    plain_s, watched_s = float("inf"), float("inf")
    for _ in range(repeat):  # interleaved, so machine noise hits both alike
        plain_s = min(plain_s, best(plain, 1)[0])
        watched_s = min(watched_s, best(watched, 1)[0])
    return plain_s, watched_s


def end_to_end(blocks: int, repeat: int) -> tuple[float, float, float]:
    """Seconds for `out = model(x).sum(); out.backward()`: plain cell, %%autograd, --no-collapse."""
    from IPython.testing import globalipapp
    from IPython.utils.capture import capture_output

    globalipapp.start_ipython()
    ip = globalipapp.get_ipython()
    ip.run_line_magic("load_ext", "torchmagic")
    ip.run_cell(
        "import torch\nfrom torch import nn\nlayers = []\n"
        f"for _ in range({blocks}):\n    layers += [nn.Linear(4, 4), nn.Tanh()]\n"
        "model = nn.Sequential(*layers)\nx = torch.randn(2, 4)"
    )
    body = "out = model(x).sum()\nout.backward()\nmodel.zero_grad()"
    cells = [body, "%%autograd\n" + body, "%%autograd --no-collapse\n" + body]
    times = []
    for cell in cells:
        def run(cell: str = cell) -> None:
            with capture_output():
                assert ip.run_cell(cell).success

        run()
        times.append(best(run, repeat)[0])
    return times[0], times[1], times[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blocks", type=int, default=330)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    t0 = time.perf_counter()
    graph = chain_graph(args.blocks)
    walk_s = time.perf_counter() - t0
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"torch {torch.__version__}")
    print(f"graph: {args.blocks} x (Linear(4,4) + Tanh) -> {len(graph.nodes)} nodes, "
          f"{len(graph.edges)} edges (walk + build: {walk_s * 1000:.0f} ms)")

    ours_s, svg = best(lambda: graph_svg(graph), args.repeat)
    collapsed = collapse_repeats(graph)
    coll_s, coll_svg = best(lambda: graph_svg(collapse_repeats(graph)), args.repeat)
    dot_src = to_dot(graph)
    rows = [
        ("torchmagic layout+SVG, full graph", ours_s, len(str(svg).encode())),
        (f"torchmagic collapse+layout+SVG ({len(collapsed.nodes)} boxes)", coll_s,
         len(str(coll_svg).encode())),
    ]
    dot = shutil.which("dot")
    if dot is None:
        print("Graphviz `dot` not found: install it for this benchmark only "
              "(apt-get install -y graphviz); skipping the Graphviz column.")
    else:
        version = subprocess.run(["dot", "-V"], capture_output=True, text=True).stderr.strip()
        print(f"graphviz: {version}")
        dot_s, dot_out = best(lambda: dot_svg(dot_src), max(1, min(args.repeat, 3)))
        rows.append(("Graphviz dot -Tsvg (same graph, from to_dot())", dot_s, len(bytes(dot_out))))  # type: ignore[arg-type]

    print()
    print("| drawing | time (best of runs) | SVG size |")
    print("|---|---|---|")
    for name, secs, size in rows:
        print(f"| {name} | {secs * 1000:.0f} ms | {size / 1024:.0f} KiB |")
    if dot is not None:
        speed = rows[2][1] / rows[0][1]
        smaller = rows[2][2] / rows[0][2]
        print(f"\nfull graph: {speed:.1f}x faster than dot, SVG {smaller:.1f}x smaller")

    plain_cell, watched_cell, full_cell = end_to_end(args.blocks, max(1, min(args.repeat, 3)))
    print(f"\nthe whole cell `out = model(x).sum(); out.backward()` on this chain, terminal output: "
          f"plain {plain_cell * 1000:.0f} ms, %%autograd {watched_cell * 1000:.0f} ms, "
          f"%%autograd --no-collapse {full_cell * 1000:.0f} ms")

    steps = 500
    torch.set_num_threads(1)
    plain_s, watched_s = training_overhead(steps, max(3, args.repeat))
    print(f"\nMLP (32-64-1) + SGD, {steps} steps in one cell (1 thread): "
          f"plain {plain_s / steps * 1e6:.0f} us/step, under %%autograd {watched_s / steps * 1e6:.0f} "
          f"us/step ({watched_s / plain_s:.1f}x; the first {options_for(WatchOptions).autograd_max_calls} "
          "backward calls recorded in detail)")


if __name__ == "__main__":
    main()

"""``%%distributed`` against torchrun: pool start-up, cell round trips, a DDP step, recording cost.

Measures, in one run (ratios are only meaningful within one run on a shared
machine), the speed targets of issue #11:

* a 4-rank CPU pool ready (torch imported, gloo group up) vs ``torchrun
  --nproc-per-node 4`` running an empty script (init, barrier, destroy);
* an empty cell on a warm 4-rank pool;
* a DDP training step cell on 2 ranks (recording included) vs the same step
  inside a torchrun-launched loop, and 100 such edit-and-run iterations vs
  relaunching torchrun for each;
* recording collectives: a loop of 100 all-reduces of 4 MiB timed inside a
  ``%%distributed`` cell (flight recorder on, every collector running) vs the
  same loop in a torchrun script without the flight recorder.

    python benchmarks/bench_distributed.py            # ~3 minutes on 2 cores
    python benchmarks/bench_distributed.py --quick
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

EMPTY = """
import torch.distributed as dist
dist.init_process_group("gloo")
dist.barrier()
dist.destroy_process_group()
"""
MODEL = "nn.Sequential(nn.Linear(512, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))"
BATCH = 128
STEP = """\
x, y = torch.randn(BATCH, 512), torch.randint(0, 10, (BATCH,))
loss = nn.functional.cross_entropy(model(x), y)
loss.backward()
opt.step()
opt.zero_grad()
"""
SETUP = f"""\
import os, time, torch, torch.nn as nn, torch.distributed as dist
torch.manual_seed(int(os.environ["RANK"]))
model = nn.parallel.DistributedDataParallel({MODEL})
opt = torch.optim.SGD(model.parameters(), lr=0.01)
"""
ALLREDUCE = """\
buf = torch.ones(1024 * 1024)          # 4 MiB of float32
t0 = time.perf_counter()
for _ in range(100):
    dist.all_reduce(buf)
loop_s = time.perf_counter() - t0
"""


def plain_exec(source: str, result: str) -> float:
    """On a rank: run ``source`` with a bare exec in the rank's namespace (no torchmagic), return ``result``."""
    from IPython import get_ipython

    ns = get_ipython().user_ns
    exec(source, ns)
    return float(eval(result, ns))


def torchrun(script: str, n: int, env: dict[str, str] | None = None) -> tuple[float, str]:
    """Run ``script`` under torchrun with ``n`` ranks; (wall seconds, rank 0's stdout)."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d, "script.py")
        path.write_text(script)
        t0 = time.perf_counter()
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--standalone",
                "--nproc-per-node",
                str(n),
                "--local-ranks-filter",
                "0",
                str(path),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            check=True,
        )
        return time.perf_counter() - t0, out.stdout


def cell(ip: InteractiveShell, body: str, line: str = "") -> float:
    t0 = time.perf_counter()
    with capture_output():
        result = ip.run_cell(f"%%distributed {line}\n{body}")
    took = time.perf_counter() - t0
    if not result.success:
        raise RuntimeError(f"cell failed: {result.error_in_exec}")
    return took


def magic_line(ip: InteractiveShell, line: str) -> float:
    t0 = time.perf_counter()
    with capture_output():
        ip.run_line_magic("distributed", line)
    return time.perf_counter() - t0


def rank_value(ip: InteractiveShell, expr: str) -> float:
    with capture_output():
        ip.run_cell(f"%%distributed -o _bench_rep\n{expr}")
    rep = ip.user_ns.pop("_bench_rep")
    return float(rep.ranks[0].value)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=["start", "empty", "ddp", "recording"], help="run one part")
    args = ap.parse_args()
    parts = [args.only] if args.only else ["start", "empty", "ddp", "recording"]
    runs = 1 if args.quick else 3
    cells = 10 if args.quick else 30
    print(f"# bench_distributed · {platform.node()} · {os.cpu_count()} cores · python {platform.python_version()}")
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "torchmagic")

    if "start" in parts:
        start_up(ip, runs)
    if "empty" in parts:
        empty_cell(ip, cells)
    magic_line(ip, "start -n 2")
    if "ddp" in parts:
        ddp_step(ip, runs, cells)
    if "recording" in parts:
        recording(ip, 3 if args.quick else 10)
    magic_line(ip, "stop")


def start_up(ip: InteractiveShell, runs: int) -> None:
    """1. A 4-rank pool ready vs torchrun running an empty script, interleaved."""
    pool_s, run_s = [], []
    for _ in range(runs):
        run_s.append(torchrun(EMPTY, 4)[0])
        pool_s.append(magic_line(ip, "start -n 4"))
        magic_line(ip, "stop")
    print(
        f"start 4 ranks: pool best {min(pool_s):.2f} s (median {statistics.median(pool_s):.2f}), "
        f"torchrun empty script best {min(run_s):.2f} s (median {statistics.median(run_s):.2f}); "
        f"ratio of bests {min(pool_s) / min(run_s):.2f} (target <= 1.5)"
    )


def empty_cell(ip: InteractiveShell, cells: int) -> None:
    """2. An empty cell on a warm 4-rank pool."""
    magic_line(ip, "start -n 4")
    cell(ip, "pass")
    empty = [cell(ip, "pass") * 1000 for _ in range(cells)]
    print(
        f"empty cell on 4 ranks: median {statistics.median(empty):.1f} ms, best {min(empty):.1f} ms (target <= 30 ms)"
    )
    magic_line(ip, "stop")


def ddp_step(ip: InteractiveShell, runs: int, cells: int) -> None:
    """3. A DDP step cell on 2 ranks vs a torchrun loop (two batch sizes); edit-and-run vs relaunching."""
    init = "import torch.distributed as dist\ndist.init_process_group('gloo')\n"
    for batch in (128, 1024):
        cell(ip, SETUP + f"BATCH = {batch}")
        for _ in range(3):
            cell(ip, STEP)
        step_cells = [cell(ip, STEP) * 1000 for _ in range(cells)]
        loop_script = (
            SETUP
            + f"BATCH = {batch}\nfor _ in range(5):\n"
            + _indent(STEP)
            + f"t0 = time.perf_counter()\nfor _ in range({cells}):\n"
            + _indent(STEP)
            + f"print((time.perf_counter() - t0) / {cells} * 1000)\ndist.destroy_process_group()\n"
        )
        loop_ms = [float(torchrun(init + loop_script, 2)[1].split()[-1]) for _ in range(runs)]
        cell_ms, step_ms = statistics.median(step_cells), statistics.median(loop_ms)
        print(
            f"DDP step (2 ranks, {MODEL.count('Linear')} Linear layers, batch {batch}): cell median {cell_ms:.1f} ms, "
            f"best {min(step_cells):.1f} ms; torchrun loop median {step_ms:.1f} ms/step, best {min(loop_ms):.1f}; "
            f"fixed cost {cell_ms - step_ms:.1f} ms; ratio of medians {cell_ms / step_ms:.2f}, "
            f"of bests {min(step_cells) / min(loop_ms):.2f} (target <= 1.2)"
        )
        if batch == 128:
            one_script = init + SETUP + f"BATCH = {batch}\n" + STEP + "dist.destroy_process_group()\n"
            relaunch_s = statistics.median([torchrun(one_script, 2)[0] for _ in range(runs)])
            print(
                f"100 edit-and-run iterations (batch {batch}): pool {100 * cell_ms / 1000:.1f} s vs relaunching "
                f"torchrun {100 * relaunch_s:.0f} s ({relaunch_s:.2f} s per launch); "
                f"{relaunch_s * 1000 / cell_ms:.0f}x faster (target >= 20x)"
            )


def recording(ip: InteractiveShell, repeats: int) -> None:
    """4. Recording cost: 100 all-reduces of 4 MiB timed inside the loop, interleaved, on the same ranks."""
    front = ip.magics_manager.registry["TorchMagics"]._front()
    cell(ip, "import time, torch, torch.distributed as dist")
    in_cell, cell_wall, bare_exec = [], [], []
    for _ in range(repeats):
        cell_wall.append(cell(ip, ALLREDUCE))
        in_cell.append(rank_value(ip, "loop_s"))
        bare_exec.append(max(j.get() for j in front.pool.submit(plain_exec, ALLREDUCE, "loop_s")))
    plain = (
        "import time, torch, torch.distributed as dist\ndist.init_process_group('gloo')\n"
        + ALLREDUCE.replace("t0 =", "dist.all_reduce(buf)\nt0 =")
        + "print(loop_s)\ndist.destroy_process_group()\n"
    )
    fr_off, fr_on = [], []
    for _ in range(max(repeats // 2, 1)):
        fr_off.append(float(torchrun(plain, 2, {"TORCH_FR_BUFFER_SIZE": "0"})[1].split()[-1]))
        fr_on.append(float(torchrun(plain, 2, {"TORCH_FR_BUFFER_SIZE": "256"})[1].split()[-1]))
    for label, pick in (("best", min), ("median", statistics.median)):
        b_cell, b_exec, b_wall = pick(in_cell), pick(bare_exec), pick(cell_wall)
        print(
            f"100 all-reduces of 4 MiB (2 ranks, {label} of {repeats} interleaved): same ranks, bare exec "
            f"{b_exec * 1000:.0f} ms vs %%distributed (every collector on) {b_cell * 1000:.0f} ms: "
            f"{(b_cell / b_exec - 1) * 100:+.1f}% (target <= +5%); whole cell incl. round trip and report "
            f"{b_wall * 1000:.0f} ms ({(b_wall / b_exec - 1) * 100:+.1f}%)"
        )
    print(
        f"flight recorder itself (torchrun, best of {len(fr_on)}): off {min(fr_off) * 1000:.0f} ms, "
        f"on {min(fr_on) * 1000:.0f} ms ({(min(fr_on) / min(fr_off) - 1) * 100:+.1f}%)"
    )


def _indent(code: str) -> str:
    return "".join("    " + line + "\n" for line in code.splitlines())


if __name__ == "__main__":
    main()

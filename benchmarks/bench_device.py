"""CPU: does ``%%device cpu -n N -r R`` time a workload like torch.utils.benchmark.Timer?

Runs the same matmul loop through the real magic (in-process IPython) and
through ``torch.utils.benchmark.Timer`` (same thread count), interleaved over
several trials, and prints per-loop times and their ratio (target: within
10%).  Also prints what the magic costs: its fixed cost on an empty cell and
the recording overhead of the first (recorded) run on a small-op workload.

    python benchmarks/bench_device.py            # ~1 minute on 2 cores
    python benchmarks/bench_device.py --quick
    python benchmarks/bench_device.py --model-only   # the 12-layer Transformer cell alone (issue 13)
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import torch.utils.benchmark as tbench
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

MATMUL = "for _ in range(8):\n    c = a @ b\n"
SMALL_OPS = "for _ in range(200):\n    y = (x * 2 + 1).relu().sum()\n"


def shell() -> InteractiveShell:
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "torchmagic")
    return ip


def magic_per_loop(ip: InteractiveShell, body: str, loops: int, repeats: int) -> tuple[float, float]:
    """(best, median) per-loop ms of the magic's clean repeats (wall clock on the CPU)."""
    with capture_output():
        res = ip.run_cell(f"%%device cpu -n {loops} -r {repeats} -o _bench_rep\n{body}")
    res.raise_error()
    rep = ip.user_ns["_bench_rep"].runs[0].repeats
    return min(rep.per_loop_ms), statistics.median(rep.per_loop_ms)


def timer_per_loop(body: str, ns: dict, loops: int, repeats: int) -> tuple[float, float]:
    timer = tbench.Timer(stmt=body, globals=ns, num_threads=torch.get_num_threads())
    times = [timer.timeit(loops).mean * 1e3 for _ in range(repeats)]
    return min(times), statistics.median(times)


def fixed_cost(ip: InteractiveShell, n: int = 20) -> tuple[float, float]:
    """Median ms of run_cell('pass') and run_cell('%%device cpu\\npass') (incl. rendering)."""
    plain, magic = [], []
    with capture_output():
        for _ in range(n):
            t0 = time.perf_counter()
            ip.run_cell("pass", store_history=False)
            plain.append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            ip.run_cell("%%device cpu\npass", store_history=False)
            magic.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(plain), statistics.median(magic)


def recording_overhead(ip: InteractiveShell, body: str, runs: int = 15) -> tuple[float, float, int]:
    """(best recorded first run wall ms, best clean per-loop ms, torch calls recorded) for ``body``.

    The best of ``runs`` cells: one recorded run is short (~10 ms), so a single one mostly measures
    what else the machine was doing.
    """
    first: list[float] = []
    clean: list[float] = []
    with capture_output():
        ip.run_cell(f"%%device cpu -n 5 -r 5 -o _bench_rep\n{body}").raise_error()  # warm
        for _ in range(runs):
            ip.run_cell(f"%%device cpu -n 5 -r 5 -o _bench_rep\n{body}").raise_error()
            run = ip.user_ns["_bench_rep"].runs[0]
            first.append(run.first.wall_ms)
            clean.append(min(run.repeats.per_loop_ms))
    return min(first), min(clean), run.op_count


TRANSFORMER = (
    "enc = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(256, 8, 1024, batch_first=True), 12,\n"
    "                                  enable_nested_tensor=False)\n"
    "src = torch.randn(8, 32, 256)\n"
)
TRANSFORMER_CELL = "y = enc(src)\ny.sum().backward()\n"


def model_cell(ip: InteractiveShell, trials: int) -> dict[str, float]:
    """A 12-layer TransformerEncoder (d_model 256) forward+backward: bare vs ``%%device cpu``, interleaved.

    Times are whole ``run_cell`` calls (the magic's include recording, the per-module hooks, building
    and printing the report to the terminal); the report's sizes are those of its HTML and plain text.
    """
    with capture_output():
        ip.run_cell("torch.manual_seed(0)\n" + TRANSFORMER).raise_error()
        ip.run_cell(TRANSFORMER_CELL).raise_error()  # warm both
        ip.run_cell("%%device cpu -o _bench_model\n" + TRANSFORMER_CELL).raise_error()
    bare, magic = [], []
    for _ in range(trials):
        with capture_output():
            t0 = time.perf_counter()
            ip.run_cell(TRANSFORMER_CELL).raise_error()
            bare.append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            ip.run_cell("%%device cpu -o _bench_model\n" + TRANSFORMER_CELL).raise_error()
            magic.append((time.perf_counter() - t0) * 1e3)
    rep = ip.user_ns["_bench_model"]
    run = rep.runs[0]
    return {
        "bare_best": min(bare), "bare_median": statistics.median(bare),
        "magic_best": min(magic), "magic_median": statistics.median(magic),
        "html_kib": len(rep.to_html()) / 1024, "text_lines": len(rep.to_text().splitlines()),
        "ops": run.op_count, "modules": run.modules_total, "rows": len(run.modules),
    }


def print_model(result: dict[str, float]) -> None:
    r = result
    print(f"\n12-layer TransformerEncoder (d_model 256, batch 8 x 32) forward+backward, {int(r['ops'])} torch calls, "
          f"{int(r['modules'])} modules ({int(r['rows'])} rows shown, repeated layers folded):")
    print("| measure | bare cell | %%device cpu cell | ratio |")
    print("|---|---|---|---|")
    print(f"| best | {r['bare_best']:.0f} ms | {r['magic_best']:.0f} ms | {r['magic_best'] / r['bare_best']:.2f} |")
    print(f"| median | {r['bare_median']:.0f} ms | {r['magic_median']:.0f} ms | "
          f"{r['magic_median'] / r['bare_median']:.2f} |")
    print(f"report: HTML {r['html_kib']:.1f} KiB, plain text {int(r['text_lines'])} lines; "
          f"under 1 s: {'yes' if r['magic_median'] < 1000 else 'NO'}; HTML under 300 KB: "
          f"{'yes' if r['html_kib'] * 1024 < 300_000 else 'NO'}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both (1: least noise)")
    parser.add_argument("--model-only", action="store_true", help="only the 12-layer Transformer cell")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    trials = 3 if args.quick else 7
    loops, repeats = 5, 5

    ip = shell()
    if args.model_only:
        ip.user_ns["torch"] = torch
        print_model(model_cell(ip, trials))
        return
    torch.manual_seed(0)
    ns = {"a": torch.randn(args.size, args.size), "b": torch.randn(args.size, args.size), "x": torch.randn(256)}
    ip.user_ns.update(ns)
    ip.user_ns["torch"] = torch
    # warm both paths
    magic_per_loop(ip, MATMUL, 2, 2)
    timer_per_loop(MATMUL, ns, 2, 2)

    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, Python {platform.python_version()}")
    print(f"workload: 8 x ({args.size}x{args.size} @ {args.size}x{args.size}) float32 per loop, "
          f"-n {loops} -r {repeats}, {trials} interleaved trials\n")
    m_best, m_med, t_best, t_med = [], [], [], []
    for _ in range(trials):
        mb, mm = magic_per_loop(ip, MATMUL, loops, repeats)
        tb, tm = timer_per_loop(MATMUL, ns, loops, repeats)
        m_best.append(mb), m_med.append(mm), t_best.append(tb), t_med.append(tm)
    mb, tb = min(m_best), min(t_best)
    mm, tm = statistics.median(m_med), statistics.median(t_med)
    print("| measure | %%device cpu | benchmark.Timer | magic / Timer |")
    print("|---|---|---|---|")
    print(f"| best per loop | {mb:.3f} ms | {tb:.3f} ms | {mb / tb:.3f} |")
    print(f"| median per loop | {mm:.3f} ms | {tm:.3f} ms | {mm / tm:.3f} |")
    print(f"\nbest within 10% (the target): {'yes' if abs(mb / tb - 1) <= 0.10 else 'NO'}; "
          f"median within 10%: {'yes' if abs(mm / tm - 1) <= 0.10 else 'no (noisy machine?)'}")

    plain, magic = fixed_cost(ip)
    print(f"\nfixed cost: run_cell('pass') {plain:.2f} ms, '%%device cpu' + 'pass' {magic:.2f} ms "
          f"(+{magic - plain:.2f} ms: compile, modes, report rendered to the terminal)")
    first, clean, ops = recording_overhead(ip, SMALL_OPS)
    print(f"recording: small-op loop ({ops} torch calls) recorded first run {first:.2f} ms vs clean "
          f"{clean:.2f} ms per loop, best of 15 each ({(first - clean) / ops * 1e3:.1f} µs per op)")
    print_model(model_cell(ip, trials))


if __name__ == "__main__":
    main()

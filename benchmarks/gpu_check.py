"""End-to-end check of %%device on a GPU machine (a few minutes); also runs on CPU.

What it does, on CUDA if present (else on the CPU, said in the output):

1. sanity: ``%%device cuda`` puts factories on the GPU and restores the default;
2. timing: the same matmul loop timed by ``%%device <dev> -n N -r R``
   (device time from CUDA events, and wall time), by
   ``torch.utils.benchmark.Timer`` (synchronises the GPU) and by hand-made
   CUDA events; interleaved trials; target: magic within 5% of Timer;
3. overhead: the fixed cost of ``%%device`` on an empty cell (events, sync,
   report rendering) and the recorded first run vs the clean repeats on a
   launch-bound small-op loop;
4. ``pytest tests/gpu`` (skip with ``--no-tests``).

Prints a markdown block for docs/benchmarks.md and writes JSON to
``$OUT/gpu_check.json`` when ``$OUT`` is set (or ``--json PATH``).

    python benchmarks/gpu_check.py            # ~1-3 minutes on one GPU
    python benchmarks/gpu_check.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch
import torch.utils.benchmark as tbench
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

RESULTS: dict[str, Any] = {}


def say(text: str = "") -> None:
    print(text, flush=True)


def sync(dev: str) -> None:
    if dev == "cuda":
        torch.cuda.synchronize()


def run_magic(ip: InteractiveShell, line: str, body: str) -> Any:
    with capture_output() as cap:
        res = ip.run_cell(f"%%device {line} -o _gc_rep\n{body}", store_history=False)
    if res.error_in_exec is not None or res.error_before_exec is not None:
        say(cap.stdout[-2000:])
        res.raise_error()
    return ip.user_ns["_gc_rep"]


def magic_per_loop(
    ip: InteractiveShell, dev: str, body: str, loops: int, repeats: int
) -> tuple[list[float], list[float]]:
    """(per-loop times from the magic's main clock, per-loop wall times) over the repeats."""
    rep = run_magic(ip, f"{dev} -n {loops} -r {repeats}", body).runs[0].repeats
    return list(rep.per_loop_ms), list(rep.wall_per_loop_ms)


def timer_per_loop(body: str, ns: dict[str, Any], loops: int, repeats: int) -> list[float]:
    timer = tbench.Timer(stmt=body, globals=ns, num_threads=torch.get_num_threads())
    return [timer.timeit(loops).mean * 1e3 for _ in range(repeats)]


def events_per_loop(code: Any, ns: dict[str, Any], loops: int, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        for _ in range(loops):
            exec(code, ns)
        end.record()
        torch.cuda.synchronize()
        out.append(start.elapsed_time(end) / loops)
    return out


def sanity(ip: InteractiveShell, dev: str) -> None:
    rep = run_magic(ip, dev, "t = torch.ones(2)\nt.device.type\n")
    placed = ip.user_ns["t"].device.type
    restored = torch.ones(1).device.type
    RESULTS["sanity"] = {"placed_on": placed, "default_after": restored, "report_device": rep.runs[0].device}
    ok = placed == dev and restored == "cpu"
    say(
        f"sanity: tensor made in the cell is on {placed}; default device afterwards {restored}: {'ok' if ok else 'FAILED'}"
    )


def timing(ip: InteractiveShell, dev: str, size: int, inner: int, loops: int, repeats: int, trials: int) -> None:
    torch.manual_seed(0)
    ns = {"a": torch.randn(size, size, device=dev), "b": torch.randn(size, size, device=dev), "torch": torch}
    ip.user_ns.update(ns)
    body = f"for _ in range({inner}):\n    c = a @ b\n"
    code = compile(body, "<gpu_check>", "exec")
    # warm every path (cuBLAS handles, allocator, the watcher's first use)
    exec(code, ns)
    sync(dev)
    magic_per_loop(ip, dev, body, 2, 2)
    timer_per_loop(body, ns, 2, 1)
    m_main: list[float] = []
    m_wall: list[float] = []
    t_all: list[float] = []
    e_all: list[float] = []
    for _ in range(trials):
        main, wall = magic_per_loop(ip, dev, body, loops, repeats)
        m_main += main
        m_wall += wall
        t_all += timer_per_loop(body, ns, loops, repeats)
        if dev == "cuda":
            e_all += events_per_loop(code, ns, loops, repeats)
    clock = "device time (CUDA events)" if dev == "cuda" else "wall time"
    rows = [(f"%%device {dev}: {clock}", m_main), (f"%%device {dev}: wall (sync at end)", m_wall),
            ("torch.utils.benchmark.Timer", t_all)]
    if e_all:
        rows.append(("hand-made CUDA events", e_all))
    t_med, t_best = statistics.median(t_all), min(t_all)
    say(f"\nworkload: {inner} x ({size}x{size} @ {size}x{size}) float32 per loop on {dev}, "
        f"-n {loops} -r {repeats}, {trials} interleaved trials")
    say("| measure | median per loop | best per loop | median / Timer median |")
    say("|---|---|---|---|")
    for name, values in rows:
        med = statistics.median(values)
        say(f"| {name} | {med:.3f} ms | {min(values):.3f} ms | {med / t_med:.3f} |")
    ratio = statistics.median(m_main) / t_med
    target = 0.05 if dev == "cuda" else 0.10
    verdict = "yes" if abs(ratio - 1) <= target else "NO"
    say(f"magic ({clock}) vs Timer, medians: {ratio:.3f} -> within {int(target * 100)}%: {verdict}")
    RESULTS["timing"] = {
        "device": dev, "size": size, "inner": inner, "loops": loops, "repeats": repeats, "trials": trials,
        "magic_main_ms": m_main, "magic_wall_ms": m_wall, "timer_ms": t_all, "events_ms": e_all,
        "ratio_median": ratio, "ratio_best": min(m_main) / t_best, "within_target": verdict == "yes",
    }


def overhead(ip: InteractiveShell, dev: str) -> None:
    plain: list[float] = []
    magic: list[float] = []
    with capture_output():
        for _ in range(15):
            t0 = time.perf_counter()
            ip.run_cell("pass", store_history=False)
            plain.append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            ip.run_cell(f"%%device {dev}\npass", store_history=False)
            magic.append((time.perf_counter() - t0) * 1e3)
    p, m = statistics.median(plain), statistics.median(magic)
    say(f"\nfixed cost: run_cell('pass') {p:.2f} ms; '%%device {dev}' + 'pass' {m:.2f} ms "
        f"(+{m - p:.2f} ms: compile, event pool, sync, report rendering)")
    ip.user_ns["x"] = torch.randn(256, device=dev)
    body = "for _ in range(200):\n    y = (x * 2 + 1).relu().sum()\n"
    run_magic(ip, f"{dev} -n 5 -r 5", body)
    run = run_magic(ip, f"{dev} -n 5 -r 5", body).runs[0]
    first, clean = run.first.wall_ms, min(run.repeats.wall_per_loop_ms)
    per_op = (first - clean) / max(run.op_count, 1) * 1e3
    say(f"recording: small-op loop ({run.op_count} torch calls): recorded first run {first:.2f} ms wall vs "
        f"clean {clean:.2f} ms per loop (~{per_op:.1f} µs per op; torchmagic's own handlers: "
        f"{run.recording_ms:.2f} ms)")
    RESULTS["overhead"] = {"pass_ms": p, "device_pass_ms": m, "first_run_ms": first, "clean_ms": clean,
                           "ops": run.op_count, "per_op_us": per_op, "recording_ms": run.recording_ms}


def gpu_tests() -> None:
    cmd = [sys.executable, "-m", "pytest", "tests/gpu", "-q", "-p", "no:cacheprovider"]
    say(f"\n$ {' '.join(cmd[2:])}")
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        say("\n".join(tail))
        RESULTS["gpu_tests"] = {"rc": proc.returncode, "tail": tail}
    except subprocess.TimeoutExpired:
        say("tests/gpu timed out after 300 s")
        RESULTS["gpu_tests"] = {"rc": "timeout"}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-tests", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    if dev == "cpu":
        torch.set_num_threads(1)  # one thread: far less noise on a shared CPU
    name = torch.cuda.get_device_name(0) if dev == "cuda" else (platform.processor() or platform.machine())
    say(f"device: {dev} ({name}); torch {torch.__version__}, CUDA {torch.version.cuda}, "
        f"cuDNN {torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None}, "
        f"Python {platform.python_version()}, {torch.get_num_threads()} CPU threads")
    if dev == "cpu":
        say("no CUDA here: running the CPU comparison instead (target 10%)")
    RESULTS["machine"] = {"device": dev, "name": name, "torch": torch.__version__, "cuda": torch.version.cuda}
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "torchmagic")
    ip.user_ns["torch"] = torch
    size, inner = (4096, 10) if dev == "cuda" else (384, 4)
    trials = 2 if args.quick else 5
    steps = [lambda: sanity(ip, dev), lambda: timing(ip, dev, size, inner, 5, 5, trials), lambda: overhead(ip, dev)]
    rc = 0
    for step in steps:
        try:
            step()
        except Exception:  # noqa: BLE001 - keep going: every step's result is worth having
            rc = 1
            say(traceback.format_exc())
    if not args.no_tests:
        gpu_tests()
    out = args.json or (os.path.join(os.environ["OUT"], "gpu_check.json") if os.environ.get("OUT") else None)
    if out:
        Path(out).write_text(json.dumps(RESULTS, indent=1))
        say(f"\nresults: {out}")
    return rc


if __name__ == "__main__":
    sys.exit(main())

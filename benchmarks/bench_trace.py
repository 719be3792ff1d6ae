"""Benchmark ``%%tensorinfo`` against bare cells, an empty TorchFunctionMode and TorchSnooper.

Run (TorchSnooper needs a setuptools that still ships ``pkg_resources``;
install the ``bench`` extra, ideally in a throwaway venv)::

    python benchmarks/bench_trace.py            # prints a table; --quick for a smoke run

Every cell runs through a real in-process IPython shell (``run_cell``), the
same path a notebook uses, so the numbers include IPython's own per-cell
cost, torchmagic's report rendering (output captured) and, for TorchSnooper,
its per-line tracing with output written to an in-memory stream.  Times are
medians of several runs.  Workloads:

(a) 10,000 small elementwise ops in a loop;
(b) one MLP training step (zero_grad, forward, loss, backward, step), and the
    same step 100 times in a loop (b100: per-cell costs amortised);
(c) ten 1024×1024 matmuls;
(d) a 2-layer ``nn.TransformerEncoder`` (d_model 64) forward + backward: the
    module tree's cost (issue 13: ≤ 2× bare);
(e) a 12-layer ``TransformerEncoder`` (d_model 256) forward + backward,
    folded (issue 13: answered in < 1 s, HTML < 300 KB).

Plus per-op recording overhead, measured two ways: inside the same cell
workload (a), and in a function-level micro-benchmark (no IPython).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import statistics
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch
from torch.overrides import TorchFunctionMode

N_ELEMENTWISE = 10_000

SETUP = """\
import torch
torch.manual_seed(0)
x_small = torch.ones(8)
model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
opt = torch.optim.SGD(model.parameters(), lr=0.01)
xb = torch.randn(32, 64)
yb = torch.randint(0, 10, (32,))
ma = torch.randn(1024, 1024)
mb = torch.randn(1024, 1024)
enc = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(64, 4, 128, batch_first=True), 2)
src = torch.randn(8, 16, 64)
enc12 = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(256, 8, 1024, batch_first=True), 12)
src12 = torch.randn(4, 32, 256)
"""

WORKLOADS = {
    "a_elementwise": f"for i in range({N_ELEMENTWISE}):\n    y = x_small + 1\n",
    "b_mlp_step": (
        "opt.zero_grad()\n"
        "loss = torch.nn.functional.cross_entropy(model(xb), yb)\n"
        "loss.backward()\n"
        "opt.step()\n"
    ),
    "b100_mlp_100_steps": (
        "for i in range(100):\n"
        "    opt.zero_grad()\n"
        "    loss = torch.nn.functional.cross_entropy(model(xb), yb)\n"
        "    loss.backward()\n"
        "    opt.step()\n"
    ),
    "c_matmul": "for i in range(10):\n    mc = ma @ mb\n",
    "d_transformer": "out = enc(src)\nloss = out.pow(2).mean()\nloss.backward()\n",
    "e_transformer12": "out12 = enc12(src12)\nloss12 = out12.pow(2).mean()\nloss12.backward()\n",
}


class EmptyMode(TorchFunctionMode):
    """The floor any TorchFunctionMode pays: call through, record nothing."""

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        return func(*args, **(kwargs or {}))


def _shell() -> Any:
    from IPython.testing import globalipapp

    globalipapp.start_ipython()
    ip = globalipapp.get_ipython()
    ip.run_line_magic("load_ext", "torchmagic")
    ip.user_ns["EmptyMode"] = EmptyMode
    ip.run_cell(SETUP)
    return ip


_HISTORY = re.compile(r"_i+\d*|_\d+|_+")


def _forget_history(ip: Any) -> None:
    """Drop IPython's per-cell history variables so every run sees the same namespace.

    TorchSnooper reports every global of a cell-level frame: without this its
    time grows with the number of cells run before, and the order of the
    measurements would matter.
    """
    for k in [k for k in ip.user_ns if _HISTORY.fullmatch(k)]:
        del ip.user_ns[k]


def _timed(ip: Any, cell: str, repeat: int) -> list[float]:
    from IPython.utils.capture import capture_output

    times = []
    for _ in range(repeat):
        _forget_history(ip)
        with capture_output():
            t0 = time.perf_counter()
            res = ip.run_cell(cell)
            times.append(time.perf_counter() - t0)
        if res.error_in_exec is not None:
            raise RuntimeError(f"benchmark cell failed: {res.error_in_exec!r}\n{cell}")
    return times


def _variants(body: str, snooper: bool = True) -> dict[str, str | None]:
    indented = textwrap.indent(body, "    ")
    try:
        if not snooper:
            raise ImportError("skipped (--no-snooper)")

        snoop: str | None = (
            "import torchsnooper, io\n"
            "with torchsnooper.snoop(output=io.StringIO()):\n" + indented
        )
    except Exception as exc:  # noqa: BLE001 - depends on the environment: the table says what is missing
        print(f"# TorchSnooper unavailable ({type(exc).__name__}: {exc}); install the bench extra", file=sys.stderr)
        snoop = None
    return {
        "bare": body,
        "empty_tf": "with EmptyMode():\n" + indented,
        "tensorinfo": "%%tensorinfo\n" + body,
        "torchsnooper": snoop,
    }


def micro_per_op(n: int = 4_000, rounds: int = 25) -> dict[str, float]:
    """µs of CPU time per op for ``a + b`` in a function, per variant: the best of ``rounds`` interleaved runs.

    The variants take turns within each round, and CPU time (not wall time)
    is measured, so a busy shared machine shifts them alike.
    """
    from torchmagic.options import options_for
    from torchmagic.trace.options import TraceOptions
    from torchmagic.trace.recorder import Recorder

    a, b = torch.ones(10, 1), torch.ones(1, 10)
    code = compile("def run(n):\n    for _ in range(n):\n        c = a + b\n", "<ipython-input-0-bench>", "exec")
    ns: dict[str, Any] = {"a": a, "b": b}
    exec(code, ns)
    run: Callable[[int], None] = ns["run"]

    def once(make: Callable[[], Any]) -> float:
        with make():
            t0 = time.process_time()
            run(n)
            return (time.process_time() - t0) / n * 1e6

    from torch.utils._python_dispatch import TorchDispatchMode

    class EmptyDispatch(TorchDispatchMode):  # what the old --deep paid before recording anything
        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            return func(*args, **(kwargs or {}))

    @contextlib.contextmanager
    def both_empty() -> Iterator[None]:
        with EmptyMode(), EmptyDispatch():
            yield

    @contextlib.contextmanager
    def no_nan_check() -> Iterator[None]:  # the recorder with its NaN batches switched off: their cost
        rec = Recorder("<ipython-input-0-bench>", options_for(TraceOptions))
        rec.nans.add = lambda *a: None  # type: ignore[method-assign]
        with rec:
            yield

    @contextlib.contextmanager
    def nan_watch() -> Iterator[None]:  # %tensorinfo --nan on: the light mode of any cell
        from torchmagic.trace.watch import CellNanWatch

        watch = CellNanWatch()
        watch.start()
        try:
            yield
        finally:
            watch.stop()

    variants: dict[str, Callable[[], Any]] = {
        "bare": contextlib.nullcontext,
        "empty_tf": EmptyMode,
        "recorder": lambda: Recorder("<ipython-input-0-bench>", options_for(TraceOptions)),
        "recorder without NaN check": no_nan_check,
        "nan watch": nan_watch,
        "empty_tf+empty_dispatch": both_empty,
        "recorder --deep": lambda: Recorder("<ipython-input-0-bench>", options_for(TraceOptions, deep=True)),
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(rounds):
        for k, make in variants.items():
            times[k].append(once(make))
    return {k: min(v) for k, v in times.items()}


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"Python {platform.python_version()}, {platform.system()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    parser.add_argument("--only", nargs="+", choices=sorted(WORKLOADS), metavar="WORKLOAD",
                        help=f"run only these workloads ({', '.join(WORKLOADS)})")
    parser.add_argument("--repeat", type=int, default=0, help="rounds per workload (default: per-workload)")
    parser.add_argument("--no-snooper", action="store_true", help="skip TorchSnooper (it takes minutes on (a))")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads for every variant (default 1: steadier numbers)")
    opts = parser.parse_args()
    torch.set_num_threads(opts.threads)
    repeat = {"a_elementwise": 3, "b_mlp_step": 60, "b100_mlp_100_steps": 5, "c_matmul": 7, "d_transformer": 60,
              "e_transformer12": 7}
    snoop_repeat = {"a_elementwise": 1, "b_mlp_step": 30, "b100_mlp_100_steps": 3, "c_matmul": 3, "d_transformer": 5,
                    "e_transformer12": 1}
    if opts.quick:
        repeat = dict.fromkeys(repeat, 2)
        snoop_repeat = dict.fromkeys(snoop_repeat, 1)
    if opts.repeat:
        repeat = dict.fromkeys(repeat, opts.repeat)
        snoop_repeat = dict.fromkeys(snoop_repeat, opts.repeat)
    workloads = {k: v for k, v in WORKLOADS.items() if not opts.only or k in opts.only}

    print(f"# machine: {machine()}")
    print(f"# load average at start (1/5/15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    ip = _shell()
    results: dict[str, dict[str, float]] = {}
    best: dict[str, dict[str, float]] = {}
    for name, body in workloads.items():
        variants = _variants(body, snooper=not opts.no_snooper)
        # warm up each variant once (imports, allocator, caches)
        for label, cell in variants.items():
            if cell is not None and not (label == "torchsnooper" and name == "a_elementwise"):
                _timed(ip, cell, 1)  # (TorchSnooper on (a) takes minutes: measured once, cold)
        # interleave the variants round by round, so a noisy neighbour hits them alike
        times: dict[str, list[float]] = {label: [] for label, cell in variants.items() if cell is not None}
        every = max(1, repeat[name] // max(1, snoop_repeat[name]))  # spread TorchSnooper's runs evenly
        for r in range(repeat[name]):
            for label, cell in variants.items():
                if cell is None or (label == "torchsnooper" and r % every):
                    continue
                times[label] += _timed(ip, cell, 1)
        results[name] = {label: statistics.median(v) for label, v in times.items()}
        best[name] = {label: min(v) for label, v in times.items()}

    print(
        "\n| workload | bare | empty TF mode | %%tensorinfo | TorchSnooper | %%tensorinfo / bare | TorchSnooper / %%tensorinfo |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        snoop = r.get("torchsnooper")
        print(
            f"| {name} | {r['bare'] * 1e3:.2f} ms | {r['empty_tf'] * 1e3:.2f} ms | {r['tensorinfo'] * 1e3:.2f} ms | "
            + (f"{snoop * 1e3:.1f} ms" if snoop else "n/a")
            + f" | {r['tensorinfo'] / r['bare']:.3f}× | "
            + (f"{snoop / r['tensorinfo']:.1f}×" if snoop else "n/a")
            + " |"
        )
    if "b_mlp_step" in results and "torchsnooper" in results["b_mlp_step"]:
        b, bb = results["b_mlp_step"], best["b_mlp_step"]
        print(f"\n(b) one MLP step: TorchSnooper / %%tensorinfo = {b['torchsnooper'] / b['tensorinfo']:.1f}× "
              f"(medians: {b['torchsnooper'] * 1e3:.2f} ms / {b['tensorinfo'] * 1e3:.2f} ms; "
              f"best runs: {bb['torchsnooper'] / bb['tensorinfo']:.1f}×); target ≥ 10×")
    if "a_elementwise" in results:
        a = results["a_elementwise"]
        cell_per_op = (a["tensorinfo"] - a["empty_tf"]) / N_ELEMENTWISE * 1e6
        print(f"\nper-op recording overhead vs empty TorchFunctionMode, in cell (a): {cell_per_op:.2f} µs")
    if not opts.only or "a_elementwise" in opts.only:
        micro = micro_per_op()
        print(
            "micro (CPU µs per `a + b`, best of 25 interleaved rounds): "
            + ", ".join(f"{k} {v:.2f}" for k, v in micro.items())
            + f"; recorder − empty = {micro['recorder'] - micro['empty_tf']:.2f} µs"
            + f"; --deep (profiler) − recorder = {micro['recorder --deep'] - micro['recorder']:.2f} µs"
            + f"; NaN check = {micro['recorder'] - micro['recorder without NaN check']:.2f} µs"
            + f"; nan watch − empty = {micro['nan watch'] - micro['empty_tf']:.2f} µs"
        )
    if "e_transformer12" in results:
        _report_size(ip)
    print("\nbest-of-N (least disturbed run) per variant:")
    for name, r in best.items():
        print(f"  {name}: " + ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in r.items())
              + f"; %%tensorinfo / bare {r['tensorinfo'] / r['bare']:.3f}×")
    print(f"# load average at end (1/5/15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if "c_matmul" in results:
        c, cb = results["c_matmul"], best["c_matmul"]
        print(f"(c) matmul: %%tensorinfo vs bare: median {100 * (c['tensorinfo'] / c['bare'] - 1):+.2f}%, "
              f"best {100 * (cb['tensorinfo'] / cb['bare'] - 1):+.2f}%")

def _report_size(ip: Any) -> None:
    """(e): the whole answer (cell, report, its HTML) once, timed, and the HTML's size."""
    from IPython.utils.capture import capture_output

    with capture_output():
        t0 = time.perf_counter()
        ip.run_cell("%%tensorinfo -o _rep12\n" + WORKLOADS["e_transformer12"])
        html = ip.user_ns["_rep12"].to_html()
        took = time.perf_counter() - t0
    rep = ip.user_ns.pop("_rep12")
    folded = [m for m in rep.modules if m.repeat > 1]
    print(f"(e) 12-layer Transformer fwd+bwd traced, report and HTML in {took * 1e3:.0f} ms; HTML "
          f"{len(html) / 1024:.1f} KB; {len(rep.rows)} rows; folded: "
          + ", ".join(f"{m.path} ×{m.repeat}" for m in folded))


if __name__ == "__main__":
    main()

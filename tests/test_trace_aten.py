"""``--deep`` reads aten ops from PyTorch's profiler: results stay bit-exact, the user's profiler keeps working."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import torch

from tests.tracing import rows, trace
from torchmagic.trace.aten import AtenLog, decomposes, profiler_conflict


def _children(rep: Any, op: str) -> dict[str, int]:
    (row,) = rows(rep, op)
    return dict(row.children)


def test_ops_list_their_decomposition_not_kernel_helpers(ip, capture) -> None:
    rep = trace(ip, capture, "a = torch.ones(2, 3)\nb = torch.ones(3, 4)\nc = (a @ b).relu()\nd = c + 1", "--deep")
    # matmul is a CompositeImplicitAutograd decomposition: mm is what it became
    assert _children(rep, "matmul") == {"aten.matmul": 1, "aten.mm": 1}
    # mm's own resolve_conj calls and add's scalar-to-tensor copy are the kernels' business
    assert _children(rep, "relu") == {"aten.relu": 1}
    assert _children(rep, "add") == {"aten.add": 1}


def test_backward_lists_the_ops_of_the_backward_formulas(ip, capture) -> None:
    rep = trace(ip, capture, "x = torch.ones(3, 3, requires_grad=True)\ny = (x @ x).sum()\ny.backward()", "--deep")
    kids = _children(rep, "backward")
    # SumBackward0 expands, MmBackward0 runs two mm's (one per input, here both x), then grads add up
    assert kids.get("aten.mm") == 2 and "aten.expand" in kids
    assert all(name.startswith("aten.") for name in kids)


def test_loops_count_every_call_across_profiler_chunks(ip, capture, monkeypatch) -> None:
    import torchmagic.trace.aten as aten_mod

    original = aten_mod.AtenLog.__init__

    def small_chunks(self: AtenLog, count: Any, chunk: int = 4096) -> None:
        original(self, count, chunk=7)  # drain every 7 ranges: 100 ops cross 14 chunks

    monkeypatch.setattr(aten_mod.AtenLog, "__init__", small_chunks)
    rep = trace(ip, capture, "x = torch.ones(4)\nfor i in range(100):\n    x = x * 1.5\n", "--deep")
    assert _children(rep, "mul") == {"aten.mul": 100}
    assert not torch.autograd._profiler_enabled()


def test_no_dispatch_mode_is_pushed_and_the_profiler_is_off_after(ip, capture) -> None:
    trace(ip, capture, "from torch.utils._python_dispatch import _get_current_dispatch_mode_stack as s\n"
                       "seen = (len(s()), torch.autograd._profiler_enabled())\n", "--deep")
    assert ip.user_ns["seen"] == (0, True)
    assert not torch.autograd._profiler_enabled()


@pytest.mark.parametrize("cell", ["x = torch.ones(3)\nx @ torch.ones(4)", "x = torch.ones(3)\nraise KeyboardInterrupt"])
def test_the_profiler_is_off_after_a_failing_cell(ip, cell) -> None:
    ip.run_cell("import torch")
    res = ip.run_cell(f"%%tensorinfo --deep\n{cell}")
    assert res.error_in_exec is not None
    assert not torch.autograd._profiler_enabled()


# -- results are the bare results (these changed under the old dispatch-mode recorder) ------------
def _grad(ip: Any, magic: str, expr: str, seed: int = 0) -> tuple[torch.Tensor, str]:
    ip.run_cell("import torch")
    torch.manual_seed(seed)
    ip.user_ns["x"] = torch.randn(5, 4, dtype=torch.float32).requires_grad_()
    res = ip.run_cell(f"{magic}\ny = {expr}\ny.sum().backward()\ng = x.grad.clone()\nf = type(y.grad_fn).__name__")
    assert res.error_in_exec is None
    return ip.user_ns["g"], ip.user_ns["f"]


# With this input both differ from the bare run under any TorchDispatchMode (the control test
# shows it); the OpInfo sweep checks the rest of the database (median, max, ctc_loss, eig...).
SENSITIVE = ["x.prod()", "torch.linalg.tensorinv(x.reshape(4, 5) @ x + torch.eye(4), ind=1)"]


@pytest.mark.parametrize("expr", SENSITIVE)
def test_grads_and_grad_fns_are_bitwise_the_bare_ones(ip, capture, expr) -> None:
    with capture():
        deep = _grad(ip, "%%tensorinfo --deep", expr)
    bare = _grad(ip, "", expr)
    assert deep[1] == bare[1]
    assert torch.equal(deep[0], bare[0])


@pytest.mark.parametrize("expr", SENSITIVE)
def test_control_a_dispatch_mode_would_change_them(ip, expr) -> None:
    from torch.utils._python_dispatch import TorchDispatchMode

    class PassThrough(TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            return func(*args, **(kwargs or {}))

    bare = _grad(ip, "", expr)
    with PassThrough():
        moded = _grad(ip, "", expr)
    assert not torch.equal(moded[0], bare[0]) or moded[1] != bare[1]


# -- only one profiler at a time: the user's wins ---------------------------------------------------
def test_a_cell_that_uses_the_profiler_runs_and_deep_says_why_no_aten_ops(ip, capture) -> None:
    rep = trace(ip, capture, "with torch.profiler.profile() as prof:\n    y = torch.ones(2) + 1\n"
                             "n = len(prof.events())\n", "--deep")
    assert ip.user_ns["n"] > 0
    assert "profiler" in rep.deep_note
    assert all(not r.children for r in rep.rows)
    assert [r.op for r in rep.rows] == ["ones", "add"]  # the trace itself still works


def test_a_running_profiler_is_left_alone(ip, capture) -> None:
    prof = torch.autograd.profiler.profile()
    prof.__enter__()
    try:
        rep = trace(ip, capture, "y = torch.ones(2) * 3", "--deep")
        assert torch.autograd._profiler_enabled()
    finally:
        prof.__exit__(None, None, None)
    assert "already running" in rep.deep_note
    assert any(e.name == "aten::mul" for e in prof.function_events)  # it saw the cell's op


def test_profiler_conflict_reads_nested_code() -> None:
    code = compile("def f():\n    import torch\n    return torch.profiler.profile()\n", "<cell>", "exec")
    assert profiler_conflict((code,))
    assert profiler_conflict((compile("y = x + 1", "<cell>", "exec"),)) == ""


def test_decomposes_knows_composite_implicit_ops() -> None:
    assert decomposes("aten::matmul") and decomposes("aten::linear")
    assert not decomposes("aten::mm") and not decomposes("aten::add")
    assert not decomposes("aten::no_such_op_here")


# -- the event walk, with fake events: other threads, pops from before a chunk ----------------------
@dataclass
class Ev:
    k: str
    n: str
    h: int
    t: float

    def kind(self) -> str:
        return self.k

    def name(self) -> str:
        return self.n

    def handle(self) -> int:
        return self.h

    def start_us(self) -> float:
        return self.t


def test_walk_attributes_other_threads_by_time_and_skips_unmatched_pops() -> None:
    seen: list[tuple[str, str]] = []
    log = AtenLog(lambda row, name: seen.append((row, name)))
    log.pending = ["row-a", "row-b"]
    main = [
        Ev("pop", "", 99, 0.0),  # closes a range opened before this chunk: ignored
        Ev("push", "torchmagic", 1, 10.0), Ev("push", "aten::mm", 2, 11.0),
        Ev("push", "aten::resolve_conj", 3, 12.0), Ev("pop", "", 3, 13.0), Ev("pop", "", 2, 14.0),
        Ev("pop", "", 1, 20.0),
        Ev("push", "aten::add", 4, 25.0), Ev("pop", "", 4, 26.0),  # outside any range
        Ev("push", "torchmagic", 5, 30.0), Ev("pop", "", 5, 40.0),
    ]
    worker = [
        Ev("push", "autograd::engine::evaluate_function: MmBackward0", 6, 32.0),
        Ev("push", "aten::matmul", 7, 33.0), Ev("push", "aten::mm", 8, 34.0), Ev("pop", "", 8, 35.0),
        Ev("pop", "", 7, 36.0), Ev("pop", "", 6, 37.0),
        Ev("push", "aten::sum", 9, 50.0), Ev("pop", "", 9, 51.0),  # after every range
    ]
    log._count([main, worker])
    assert seen == [("row-a", "aten.mm"), ("row-b", "aten.matmul"), ("row-b", "aten.mm")]
    assert log.pending == []


def test_a_profiler_object_from_an_earlier_cell_turns_aten_recording_off(ip, capture) -> None:
    """`prof.step()` may start a scheduled profiler: the cell names no profiler API, but uses one."""
    ip.run_cell("import torch, warnings\nwarnings.simplefilter('ignore')\n"
                "sched = torch.profiler.schedule(wait=1, warmup=0, active=1, repeat=1)\n"
                "prof = torch.profiler.profile(schedule=sched)\nprof.start()")
    assert not torch.autograd._profiler_enabled()  # waiting: prof.step() starts it
    try:
        rep = trace(ip, capture, "y = torch.ones(2) * 2\nprof.step()\nz = y + 1\n", "--deep")
        assert "the cell uses PyTorch's profiler" in rep.deep_note
        assert [r.op for r in rep.rows] == ["ones", "mul", "add"]
        assert torch.autograd._profiler_enabled()  # the user's profiler started in the cell
    finally:
        ip.run_cell("prof.stop()")
    assert not torch.autograd._profiler_enabled()


def test_a_profiler_that_cannot_start_leaves_the_trace_running(ip, capture, monkeypatch) -> None:
    def broken(self: AtenLog) -> None:
        raise RuntimeError("no legacy profiler in this torch")

    monkeypatch.setattr(AtenLog, "start", broken)
    ip.run_cell("import torch")
    with capture() as cap:
        res = ip.run_cell("%%tensorinfo --deep -o rep\ny = torch.ones(2) * 2\n")
    assert res.error_in_exec is None
    rep = ip.user_ns["rep"]
    assert [r.op for r in rep.rows] == ["ones", "mul"] and "did not start" in rep.deep_note
    assert cap.stderr.count("torchmagic:") == 1

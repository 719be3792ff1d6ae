"""Running a cell on a device: default device restored, recorded run, repeats, fake CUDA."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from tests.device_fakes import FakeCuda, last_index
from torch.overrides import _get_current_function_mode_stack
from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

from torchmagic.core.cell import Cell
from torchmagic.device.memory import AllocatorStats
from torchmagic.device.run import RunOptions, default_device, run_cell, run_on
from torchmagic.device.timing import EventClock


def compile_(ip: Any, src: str) -> Cell:
    ip.user_ns["torch"] = torch
    return Cell.compile(ip, src, "%%device test")


def modes() -> tuple[int, int]:
    return len(_get_current_function_mode_stack()), len(_get_current_dispatch_mode_stack())


def test_factories_land_on_the_device_and_the_default_is_restored(ip: Any) -> None:
    before = modes()
    out = run_on(compile_(ip, "t = torch.ones(2)\nt.device\n"), torch.device("meta"), RunOptions())
    assert out.error is None and out.value == torch.device("meta")
    assert ip.user_ns["t"].device.type == "meta"
    assert torch.get_default_device() == torch.device("cpu")
    assert torch.ones(1).device.type == "cpu"
    assert modes() == before


def test_default_restored_after_an_exception(ip: Any) -> None:
    before = modes()
    out = run_on(compile_(ip, "t = torch.ones(2)\n1 / 0\n"), torch.device("meta"), RunOptions())
    assert isinstance(out.error, ZeroDivisionError)
    assert out.run.error == "ZeroDivisionError: division by zero"
    assert torch.ones(1).device.type == "cpu" and modes() == before


def test_default_restored_after_keyboard_interrupt(ip: Any) -> None:
    before = modes()
    with pytest.raises(KeyboardInterrupt):
        run_on(compile_(ip, "t = torch.ones(2)\nraise KeyboardInterrupt\n"), torch.device("meta"), RunOptions())
    assert torch.ones(1).device.type == "cpu" and modes() == before
    # also while repeating (after the recorded run)
    ip.user_ns["n"] = 0
    cell = compile_(ip, "n += 1\nif n == 3:\n    raise KeyboardInterrupt\nt = torch.ones(1)\n")
    with pytest.raises(KeyboardInterrupt):
        run_on(cell, torch.device("meta"), RunOptions(loops=5, repeats=1, repeat=True))
    assert ip.user_ns["n"] == 3 and torch.ones(1).device.type == "cpu" and modes() == before


def test_a_user_default_device_is_kept(ip: Any) -> None:
    with torch.device("meta"):
        out = run_on(compile_(ip, "t = torch.ones(1)\nt.device.type\n"), torch.device("cpu"), RunOptions())
        assert out.value == "cpu"
        assert torch.ones(1).device.type == "meta"


def test_no_extra_mode_when_the_device_is_already_the_default() -> None:
    assert default_device(torch.device("cpu")).__class__.__name__ == "nullcontext"
    assert isinstance(default_device(torch.device("meta")), torch.device)


def test_recorded_run_fills_ops_memory_and_transfers(ip: Any) -> None:
    src = "a = torch.ones(64, 64)\nb = a @ a\nc = b.to('meta')\n"
    out = run_on(compile_(ip, src), torch.device("cpu"), RunOptions(top_ops=2))
    run = out.run
    assert run.first is not None and run.first.device_ms is None and run.first.wall_ms > 0
    assert run.repeats is None and run.op_count == 3 and len(run.ops) == 2
    assert {s.op for s in run.ops} <= {"torch.ones", "Tensor.matmul", "Tensor.to"}
    assert run.memory is not None and run.memory.source == "tracked"
    assert run.memory.peak_bytes == 2 * 64 * 64 * 4  # a and b on the CPU; c is on meta
    assert run.memory.net_bytes == 2 * 64 * 64 * 4
    assert [t.name for t in run.memory.largest[:3]] == ["a", "b", "c"]
    assert [(x.line, x.direction) for x in run.transfers] == [(4, "host→device")]
    assert run.recording_ms > 0


def test_repeats_run_the_cell_one_plus_n_times_r(ip: Any) -> None:
    ip.user_ns["count"] = 0
    cell = compile_(ip, "count += 1\ncount\n")
    report, value, error = run_cell(cell, ["cpu"], RunOptions(loops=3, repeats=2, repeat=True))
    assert error is None and ip.user_ns["count"] == 7 and value == 7
    assert report.cell_runs == 7
    (run,) = report.runs
    assert run.repeats is not None and len(run.repeats.per_loop_ms) == 2 and run.repeats.kind == "wall"
    assert run.first is not None  # the warm-up, reported separately


def test_compare_runs_on_each_device_and_computes_speedup(ip: Any) -> None:
    ip.user_ns["count"] = 0
    cell = compile_(ip, "count += 1\nt = torch.ones(3)\nt.device.type\n")
    report, value, error = run_cell(cell, ["cpu", "meta"], RunOptions(), compare=True)
    assert error is None and value == "meta" and ip.user_ns["count"] == 2
    assert [r.device for r in report.runs] == ["cpu", "meta"] and report.cell_runs == 2
    assert report.speedup(report.runs[0]) == pytest.approx(1.0)
    cpu, meta = report.runs
    assert report.speedup(meta) == pytest.approx(cpu.best_ms / meta.best_ms)


def test_error_stops_compare_and_is_returned(ip: Any) -> None:
    cell = compile_(ip, "x = torch.ones(2)\ny = x + torch.ones(2, device='cpu')\n")
    report, value, error = run_cell(cell, ["cpu", "meta"], RunOptions(), compare=True)
    assert isinstance(error, RuntimeError) and len(report.runs) == 2
    mm = report.runs[1].mismatch
    assert mm is not None and [o.device for o in mm.operands] == ["meta", "cpu"]
    assert mm.line == 3 and mm.operands[0].name == "x"


def test_fallback_notice_is_announced_before_running(ip: Any) -> None:
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    said: list[str] = []
    ip.user_ns["ran"] = []
    cell = compile_(ip, "ran.append(len(said_box))\n")
    ip.user_ns["said_box"] = said
    report, _, error = run_cell(cell, ["cuda"], RunOptions(), fallback="cpu", announce=said.append)
    assert error is None and ip.user_ns["ran"] == [1]  # announced before the cell ran
    assert report.runs[0].device == "cpu" and report.runs[0].requested == "cuda"
    assert "instead of cuda" in report.runs[0].notice


def test_gpu_path_with_fake_cuda_syncs_once_per_timed_run(ip: Any) -> None:
    """The whole pipeline with a CUDA target, fake events/synchronize/allocator."""
    cuda = FakeCuda()
    ip.user_ns["x"] = torch.ones(8, 8)
    ip.user_ns["cuda_log"] = cuda.log
    cell = compile_(ip, "cuda_log.append(('user',))\ny = x @ x\nz = y.sum()\n")
    dev = torch.device("cuda", 0)
    opts = RunOptions(loops=2, repeats=2, repeat=True, op_events=8, sync_types=frozenset({"cuda"}))
    out = run_on(cell, dev, opts, clock=EventClock(cuda, dev), allocator=AllocatorStats(cuda, dev))
    assert out.error is None, out.error
    log = cuda.log
    # the op-event pool (16) and the run's 2 events exist before the drain sync
    first_sync = log.index(("sync",))
    assert [e[0] for e in log[:first_sync]].count("event") == 18
    assert log.index(("reset_peak",)) < first_sync
    # find the recorded run's region: from the run's start record to its end record
    run_start, run_end = cuda.events[16], cuda.events[17]
    i, j = last_index(log, ("record", run_start.id)), last_index(log, ("record", run_end.id))
    assert i is not None and j is not None
    region = log[i + 1 : j]
    assert ("sync",) not in region and ("user",) in region
    assert not any(e[0] == "event" for e in region)
    # per-op events were recorded inside the region (2 ops: matmul, sum)
    assert sum(1 for e in region if e[0] == "record") == 4
    k = log.index(("elapsed", run_start.id, run_end.id))
    assert log[j:k].count(("sync",)) == 1
    run = out.run
    assert run.first is not None and run.first.device_ms is not None
    assert run.op_time_kind == "device" and {s.op for s in run.ops} == {"Tensor.matmul", "Tensor.sum"}
    assert all(s.timed == s.count == 1 and s.total_ms > 0 for s in run.ops)
    assert run.memory is not None and run.memory.source == "allocator"
    assert run.repeats is not None and run.repeats.kind == "device"
    # repeats: 2 timed regions, each with 2 user runs and no sync inside
    rep_events = cuda.events[18:]
    assert len(rep_events) == 4
    for r in range(2):
        s, e = rep_events[2 * r], rep_events[2 * r + 1]
        a, b = last_index(log, ("record", s.id)), last_index(log, ("record", e.id))
        assert a is not None and b is not None
        assert log[a:b].count(("user",)) == 2 and ("sync",) not in log[a:b]
    assert torch.ones(1).device.type == "cpu"  # the cuda default device was undone


def test_a_device_error_the_cell_catches_is_not_reported(ip: Any) -> None:
    cell = compile_(
        ip,
        "x = torch.ones(2)\n"
        "try:\n"
        "    x + torch.ones(2, device='meta')\n"
        "except RuntimeError:\n"
        "    pass\n"
        "1 / 0\n",
    )
    out = run_on(cell, torch.device("cpu"), RunOptions())
    assert isinstance(out.error, ZeroDivisionError) and out.run.mismatch is None


def test_a_device_error_re_raised_as_another_is_explained(ip: Any) -> None:
    cell = compile_(
        ip,
        "x = torch.ones(2)\n"
        "try:\n"
        "    x + torch.ones(2, device='meta')\n"
        "except RuntimeError as e:\n"
        "    raise ValueError('wrapped') from e\n",
    )
    out = run_on(cell, torch.device("cpu"), RunOptions())
    assert isinstance(out.error, ValueError)
    mm = out.run.mismatch
    assert mm is not None and mm.line == 4 and [o.device for o in mm.operands] == ["cpu", "meta"]


def test_as_tensor_of_a_tensor_is_not_a_host_copy(ip: Any) -> None:
    ip.user_ns["m"] = torch.ones(3, device="meta")
    out = run_on(compile_(ip, "t = torch.as_tensor(m)\n"), torch.device("meta"), RunOptions())
    assert out.error is None and out.run.transfers == []


def test_tracked_memory_counts_call_outputs_not_backward_gradients(ip: Any) -> None:
    """The documented limit of tracked memory: what the cell's torch calls return, not .grad."""
    src = "w = torch.ones(256, requires_grad=True)\n(w * 2).sum().backward()\n"
    out = run_on(compile_(ip, src), torch.device("cpu"), RunOptions())
    m = out.run.memory
    assert m is not None and m.source == "tracked"
    assert ip.user_ns["w"].grad is not None  # 1 KiB made by backward: not seen
    assert m.net_bytes == 256 * 4  # w only; the temporaries w * 2 and its sum are freed
    assert m.peak_bytes == 256 * 4 * 2 + 4  # w, w * 2 and the sum alive together

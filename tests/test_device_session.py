"""The %%device collector: default device restored, recorded run, repeats, compare, fake CUDA."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.overrides import _get_current_function_mode_stack
from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

from tests.device_fakes import FakeCuda, last_index
from torchmagic.core.runner import run_cell
from torchmagic.device.memory import AllocatorStats
from torchmagic.device.report import DeviceReport, DeviceRun
from torchmagic.device.session import DeviceOptions, DeviceSession, default_device, resolve_targets
from torchmagic.device.timing import EventClock
from torchmagic.options import options_for


def opts(**given: Any) -> DeviceOptions:
    return options_for(DeviceOptions, **given)


def run(
    ip: Any, src: str, devices: list[str], options: DeviceOptions | None = None, compare: bool = False,
    fallback: str | None = None,
) -> tuple[DeviceReport, Any, BaseException | None]:
    """Run ``src`` as ``%%device`` does: the report, the cell's value and the error it raised."""
    ip.user_ns["torch"] = torch
    shown: list[Any] = []
    targets = resolve_targets(devices, fallback)

    def start(cell: Any) -> list[DeviceSession]:
        return [DeviceSession(cell, targets, options or opts(), compare=compare)]

    value: Any = None
    error: BaseException | None = None
    try:
        value = run_cell(ip, src, "%%device test", start, shown.append)
    except BaseException as exc:  # the cell's own error, re-raised by the runner
        error = exc
    (report,) = shown
    return report, value, error


def run_ok(ip: Any, src: str, devices: list[str], **kwargs: Any) -> tuple[DeviceReport, Any]:
    """:func:`run` for a cell that must not fail."""
    report, value, error = run(ip, src, devices, **kwargs)
    assert error is None, error
    return report, value


def first(report: DeviceReport) -> DeviceRun:
    return report.runs[0]


def modes() -> tuple[int, int]:
    return len(_get_current_function_mode_stack()), len(_get_current_dispatch_mode_stack())


def test_factories_land_on_the_device_and_the_default_is_restored(ip: Any) -> None:
    before = modes()
    _, value = run_ok(ip, "t = torch.ones(2)\nt.device\n", ["meta"])
    assert value == torch.device("meta")
    assert ip.user_ns["t"].device.type == "meta"
    assert torch.get_default_device() == torch.device("cpu")
    assert torch.ones(1).device.type == "cpu"
    assert modes() == before


def test_default_restored_after_an_exception(ip: Any) -> None:
    before = modes()
    report, _, error = run(ip, "t = torch.ones(2)\n1 / 0\n", ["meta"])
    assert isinstance(error, ZeroDivisionError)
    assert first(report).error == "ZeroDivisionError: division by zero"
    assert torch.ones(1).device.type == "cpu" and modes() == before


def test_default_restored_after_keyboard_interrupt(ip: Any) -> None:
    before = modes()
    _, _, error = run(ip, "t = torch.ones(2)\nraise KeyboardInterrupt\n", ["meta"])
    assert isinstance(error, KeyboardInterrupt)
    assert torch.ones(1).device.type == "cpu" and modes() == before
    # also while repeating (after the recorded run)
    ip.user_ns["n"] = 0
    report, _, error = run(
        ip, "n += 1\nif n == 3:\n    raise KeyboardInterrupt\nt = torch.ones(1)\n", ["meta"], opts(loops=5, repeats=1)
    )
    assert isinstance(error, KeyboardInterrupt)
    assert ip.user_ns["n"] == 3 and torch.ones(1).device.type == "cpu" and modes() == before
    assert first(report).error == "KeyboardInterrupt (in a repeat run)"


def test_a_user_default_device_is_kept(ip: Any) -> None:
    with torch.device("meta"):
        _, value = run_ok(ip, "t = torch.ones(1)\nt.device.type\n", ["cpu"])
        assert value == "cpu"
        assert torch.ones(1).device.type == "meta"


def test_no_extra_mode_when_the_device_is_already_the_default() -> None:
    assert default_device(torch.device("cpu")).__class__.__name__ == "nullcontext"
    assert isinstance(default_device(torch.device("meta")), torch.device)


def test_recorded_run_fills_ops_memory_and_transfers(ip: Any) -> None:
    src = "a = torch.ones(64, 64)\nb = a @ a\nc = b.to('meta')\n"
    report, _ = run_ok(ip, src, ["cpu"], options=opts(device_top_ops=2))
    one = first(report)
    assert one.first is not None and one.first.device_ms is None and one.first.wall_ms > 0
    assert one.repeats is None and one.op_count == 3 and len(one.ops) == 2
    assert {s.op for s in one.ops} <= {"torch.ones", "Tensor.matmul", "Tensor.to"}
    assert one.memory is not None and one.memory.source == "tracked"
    assert one.memory.peak_bytes == 2 * 64 * 64 * 4  # a and b on the CPU; c is on meta
    assert one.memory.net_bytes == 2 * 64 * 64 * 4
    assert [t.names for t in one.memory.largest[:3]] == [("a",), ("b",), ("c",)]
    assert [(x.line, x.direction) for x in one.transfers] == [(4, "host→device")]
    assert one.recording_ms > 0


def test_repeats_run_the_cell_one_plus_n_times_r(ip: Any) -> None:
    ip.user_ns["count"] = 0
    report, value = run_ok(ip, "count += 1\ncount\n", ["cpu"], options=opts(loops=3, repeats=2))
    assert ip.user_ns["count"] == 7 and value == 7
    assert report.cell_runs == 7
    (one,) = report.runs
    assert one.repeats is not None and len(one.repeats.per_loop_ms) == 2 and one.repeats.kind == "wall"
    assert one.first is not None  # the warm-up, reported separately


def test_n_alone_repeats_device_repeats_times(ip: Any) -> None:
    ip.user_ns["count"] = 0
    report, _ = run_ok(ip, "count += 1\n", ["cpu"], options=opts(loops=2, device_repeats=4))
    assert ip.user_ns["count"] == 1 + 2 * 4 and report.cell_runs == 9


def test_compare_runs_on_each_device_and_computes_speedup(ip: Any) -> None:
    ip.user_ns["count"] = 0
    report, value = run_ok(ip, "count += 1\nt = torch.ones(3)\nt.device.type\n", ["cpu", "meta"], compare=True)
    assert value == "meta" and ip.user_ns["count"] == 2
    assert [r.device for r in report.runs] == ["cpu", "meta"] and report.cell_runs == 2
    assert report.speedup(report.runs[0]) == pytest.approx(1.0)
    cpu, meta = report.runs
    assert report.speedup(meta) == pytest.approx(cpu.best_ms / meta.best_ms)


def test_error_stops_compare_and_is_explained(ip: Any) -> None:
    report, _, error = run(
        ip, "x = torch.ones(2)\ny = x + torch.ones(2, device='cpu')\n", ["cpu", "meta"], compare=True
    )
    assert isinstance(error, RuntimeError)
    assert len(report.runs) == 2 and report.runs[0].error == ""
    mm = report.runs[1].mismatch
    assert mm is not None and [o.device for o in mm.operands] == ["meta", "cpu"]
    assert mm.line == 3 and mm.operands[0].name == "x"


def test_fallback_runs_on_the_fallback_device(ip: Any) -> None:
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    ip.user_ns["ran"] = []
    report, _ = run_ok(ip, "ran.append(torch.ones(1).device.type)\n", ["cuda"], fallback="cpu")
    assert ip.user_ns["ran"] == ["cpu"]
    assert first(report).device == "cpu" and first(report).requested == "cuda"
    assert "instead of cuda" in first(report).notice


def test_gpu_path_with_fake_cuda_syncs_once_per_timed_run(ip: Any) -> None:
    """The whole pipeline with a CUDA target, fake events/synchronize/allocator."""
    from torchmagic.device.session import Target

    cuda = FakeCuda()
    ip.user_ns["x"] = torch.ones(8, 8)
    ip.user_ns["cuda_log"] = cuda.log
    dev = torch.device("cuda", 0)
    options = opts(loops=2, repeats=2, device_op_events=8, sync_types=frozenset({"cuda"}))
    shown: list[Any] = []

    def session(cell: Any) -> list[DeviceSession]:
        clock, allocator = EventClock(cuda, dev), AllocatorStats(cuda, dev)
        return [DeviceSession(cell, [Target("cuda", dev)], options, clock=clock, allocator=allocator)]

    run_cell(ip, "cuda_log.append(('user',))\ny = x @ x\nz = y.sum()\n", "%%device test", session, shown.append)
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
    one = first(shown[0])
    assert one.first is not None and one.first.device_ms is not None
    assert one.op_time_kind == "device" and {s.op for s in one.ops} == {"Tensor.matmul", "Tensor.sum"}
    assert all(s.timed == s.count == 1 and s.total_ms > 0 for s in one.ops)
    assert one.memory is not None and one.memory.source == "allocator"
    assert one.repeats is not None and one.repeats.kind == "device"
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
    src = (
        "x = torch.ones(2)\n"
        "try:\n"
        "    x + torch.ones(2, device='meta')\n"
        "except RuntimeError:\n"
        "    pass\n"
        "1 / 0\n"
    )
    report, _, error = run(ip, src, ["cpu"])
    assert isinstance(error, ZeroDivisionError) and first(report).mismatch is None


def test_a_device_error_re_raised_as_another_is_explained(ip: Any) -> None:
    src = (
        "x = torch.ones(2)\n"
        "try:\n"
        "    x + torch.ones(2, device='meta')\n"
        "except RuntimeError as e:\n"
        "    raise ValueError('wrapped') from e\n"
    )
    report, _, error = run(ip, src, ["cpu"])
    assert isinstance(error, ValueError)
    mm = first(report).mismatch
    assert mm is not None and mm.line == 4 and [o.device for o in mm.operands] == ["cpu", "meta"]


def test_as_tensor_of_a_tensor_is_not_a_host_copy(ip: Any) -> None:
    ip.user_ns["m"] = torch.ones(3, device="meta")
    report, _ = run_ok(ip, "t = torch.as_tensor(m)\n", ["meta"])
    assert first(report).transfers == []


def test_tracked_memory_counts_call_outputs_not_backward_gradients(ip: Any) -> None:
    """The documented limit of tracked memory: what the cell's torch calls return, not .grad."""
    report, _ = run_ok(ip, "w = torch.ones(256, requires_grad=True)\n(w * 2).sum().backward()\n", ["cpu"])
    m = first(report).memory
    assert m is not None and m.source == "tracked"
    assert ip.user_ns["w"].grad is not None  # 1 KiB made by backward: not seen
    assert m.net_bytes == 256 * 4  # w only; the temporaries w * 2 and its sum are freed
    assert m.peak_bytes == 256 * 4 * 2 + 4  # w, w * 2 and the sum alive together

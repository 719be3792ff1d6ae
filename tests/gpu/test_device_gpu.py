"""%%device on a real CUDA GPU.  Skipped on machines without CUDA.

Run on a GPU machine with ``python -m pytest tests/gpu -q`` (and see
``benchmarks/gpu_check.py`` for the timing comparison).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def run(ip: Any, src: str) -> Any:
    ip.user_ns["torch"] = torch
    return ip.run_cell(src)


def test_factories_land_on_cuda_and_default_is_restored(ip: Any, capture: Any) -> None:
    with capture():
        res = run(ip, "%%device cuda -o rep\nt = torch.ones(2)\nt.device.type\n")
    assert res.error_in_exec is None and res.result == "cuda"
    assert torch.ones(1).device.type == "cpu"
    run_ = ip.user_ns["rep"].runs[0]
    assert run_.device.startswith("cuda")


def test_device_time_is_measured_with_events_and_not_launch_time(ip: Any, capture: Any) -> None:
    ip.user_ns["a"] = torch.randn(2048, 2048, device="cuda")
    with capture():
        res = run(ip, "%%device cuda -n 5 -r 3 -o rep\nfor _ in range(10):\n    b = a @ a\n")
    assert res.error_in_exec is None
    r = ip.user_ns["rep"].runs[0]
    assert r.first is not None and r.first.device_ms is not None and r.first.device_ms > 0
    assert r.op_time_kind == "device"
    mm = next(s for s in r.ops if s.op == "Tensor.matmul")  # `a @ a`
    assert mm.count == 10 and mm.timed == 10 and mm.total_ms > 0
    assert r.repeats is not None and r.repeats.kind == "device"
    # 10 matmuls of 2048^2 take well over the Python launch time of the loop
    assert r.repeats.best_ms > 0.1
    assert r.first.wall_ms >= r.first.host_ms


def test_transfers_and_sync_points_on_cuda(ip: Any, capture: Any) -> None:
    ip.user_ns["h"] = torch.ones(256, 256)
    with capture():
        res = run(
            ip,
            "%%device cuda -o rep\n"
            "d = h.to('cuda')\n"          # 2: host -> device, 256 KiB
            "s = d.sum().item()\n"        # 3: sync
            "back = d.cpu()\n"            # 4: device -> host (+ sync)
            "l = d[0, :3].tolist()\n"     # 5: sync
            "nz = (d > 0).nonzero()\n",   # 6: sync
        )
    assert res.error_in_exec is None
    r = ip.user_ns["rep"].runs[0]
    dirs = {(x.line, x.direction) for x in r.transfers}
    assert (2, "host→device") in dirs and (4, "device→host") in dirs
    h2d = next(x for x in r.transfers if x.line == 2)
    assert h2d.nbytes == 256 * 256 * 4
    sync_lines = {s.line for s in r.syncs}
    assert {3, 4, 5, 6} <= sync_lines


def test_memory_comes_from_the_allocator(ip: Any, capture: Any) -> None:
    with capture():
        run(ip, "%%device cuda -o rep\nbig = torch.empty(1024, 1024)\ntmp = torch.empty(2048, 1024)\ndel tmp\n")
    m = ip.user_ns["rep"].runs[0].memory
    assert m is not None and m.source == "allocator"
    assert m.peak_bytes >= 3 * 1024 * 1024 * 4
    assert 4 * 2**20 <= m.net_bytes < 3 * 4 * 2**20
    assert m.largest and m.largest[0].nbytes == 2048 * 1024 * 4


def test_mismatch_between_cpu_and_cuda(ip: Any, capture: Any) -> None:
    ip.user_ns["x"] = torch.ones(3)
    with capture() as cap:
        res = run(ip, "%%device cuda\nw = torch.ones(3)\ny = w + x\n")
    assert isinstance(res.error_in_exec, RuntimeError)
    assert "x (3,) is on cpu but this cell runs on cuda" in cap.stdout
    assert torch.ones(1).device.type == "cpu"


def test_compare_cpu_cuda(ip: Any, capture: Any) -> None:
    with capture():
        res = run(ip, "%%device --compare cpu cuda -n 2 -r 2 -o rep\na = torch.randn(512, 512)\nb = a @ a\n")
    assert res.error_in_exec is None
    rep = ip.user_ns["rep"]
    assert [r.device.split(":")[0] for r in rep.runs] == ["cpu", "cuda"]
    assert rep.speedup(rep.runs[1]) is not None
    assert "speedup" in rep.to_text()


def test_info_lists_the_gpu(ip: Any, capture: Any) -> None:
    with capture():
        ip.run_line_magic("device", "-o info")
    gpus = [d for d in ip.user_ns["info"].devices if d.kind == "cuda"]
    assert [d.name for d in gpus] == [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    assert gpus[0].description == torch.cuda.get_device_name(0)
    assert gpus[0].total_bytes and gpus[0].free_bytes is not None


def test_model_to_cuda_and_backward_are_user_level_rows(ip: Any, capture: Any, options: Any) -> None:
    with options(device_top_ops=100), capture():  # every row, not the 10 slowest
        res = run(
            ip,
            "%%device cuda -o rep\n"
            "model = torch.nn.Linear(64, 32, device='cpu')\n"     # 2: built on the host
            "model.to('cuda')\n"                                  # 3: weight + bias copied
            "x = torch.randn(8, 64)\n"
            "model(x).sum().backward()\n",                        # 5
        )
    assert res.error_in_exec is None
    r = ip.user_ns["rep"].runs[0]
    (row,) = [x for x in r.transfers if x.line == 3]
    assert (row.op, row.count, row.nbytes, row.direction) == ("Tensor.to", 2, (64 * 32 + 32) * 4, "host→device")
    ops = {s.op for s in r.ops}
    assert {"F.linear", "Tensor.backward"} <= ops and not any(op.startswith("aten.") for op in ops)

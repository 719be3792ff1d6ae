"""Renderers: structure of HTML and rich text, escaping of every user-derived string."""

from __future__ import annotations

import json

from torchmagic.core.report import rich_to_text
from torchmagic.device import render, render_info
from torchmagic.device.render import fmt_ms, signed_bytes
from torchmagic.device.report import (
    CreatedTensor,
    DeviceFacts,
    DeviceInfoReport,
    DeviceReport,
    DeviceRun,
    MemoryStats,
    Mismatch,
    ModelMapReport,
    Operand,
    OpStat,
    PlacementRow,
    RepeatStats,
    SyncOp,
    Timing,
    Transfer,
)

XSS = '<script>alert(1)</script>'
IMG = '"><img src=x onerror=alert(1)>'
MARKUP = "[bold]x[/bold]"


def _run(device: str = "cuda:0", payload: str = XSS) -> DeviceRun:
    return DeviceRun(
        device=device,
        requested="cuda",
        notice=f"fell back {payload}",
        first=Timing(host_ms=0.2, wall_ms=12.5, device_ms=10.0),
        recording_ms=0.4,
        repeats=RepeatStats(3, 2, "device", (1.0, 1.2), (1.1, 1.3), 1.0, 1.1, 0.14),
        op_count=42,
        ops=[OpStat(f"torch.mm{payload}", f"(2, 2) {IMG}", 3, 6.0, 2.0, 3)],
        op_time_kind="device",
        transfers=[
            Transfer(
                3, f"y = x.to('cuda') # {IMG}", "Tensor.to", "cpu", device, "host→device", 2, 2048, (16, 16), "float32"
            )
        ],
        transfer_count=2,
        transfer_bytes=2048,
        syncs=[SyncOp(4, f"print({MARKUP})", "print", device, 1, "printing a tensor copies its values to the host")],
        memory=MemoryStats(
            device,
            "allocator",
            0,
            4096,
            1024,
            [CreatedTensor((32, 32), "float32", device, 4096, 2, f"a = {MARKUP}", "torch.mm", True, f"w{payload}")],
        ),
        mismatch=Mismatch(
            5,
            f"b = a + {IMG}",
            "add",
            "Expected all tensors...",
            [Operand(f"a{XSS}", (2,), "float32", "cpu")],
            f"hint {MARKUP}",
        ),
        error="RuntimeError: Expected all tensors...",
    )


def test_fmt_ms_and_bytes() -> None:
    assert fmt_ms(None) == "–"
    assert fmt_ms(0.0123) == "12.3 µs"
    assert fmt_ms(1.5) == "1.5 ms"
    assert fmt_ms(250) == "250 ms"
    assert fmt_ms(1234) == "1.23 s"
    assert signed_bytes(2048) == "+2.0 KiB" and signed_bytes(-512) == "−512 B" and signed_bytes(0) == "0 B"


def test_html_escapes_every_user_string() -> None:
    html = render.to_html(DeviceReport(runs=[_run()], cell_runs=7))
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "&quot;&gt;&lt;img" in html
    for section in ("warm-up run", "repeats", "Slowest ops", "memory", "Transfers", "Sync points", "device mismatch"):
        assert section in html


def test_rich_text_keeps_markup_literal_and_has_every_section() -> None:
    text = rich_to_text(render.to_rich(DeviceReport(runs=[_run(payload=MARKUP)], cell_runs=7)), width=200)
    assert MARKUP in text and f"print({MARKUP})" in text and f"hint {MARKUP}" in text
    assert "the cell ran 7 times" in text
    assert (
        "warm-up run: wall 12.5 ms (until the device finished), device 10 ms (events), "
        "Python returned after 200 µs (kernels run asynchronously" in text
    )
    assert "1.1 ms ± 140 µs per loop (device time, mean ± std of 2 repeats × 3 loops; best 1 ms" in text
    assert "host→device" in text and "2.0 KiB" in text
    assert "peak +4.0 KiB, net +1.0 KiB (CUDA allocator)" in text
    assert "Sync points: 1 line(s)" in text


def test_compare_table_shows_speedup() -> None:
    cpu = DeviceRun(device="cpu", requested="cpu", first=Timing(40.0, 40.0))
    gpu = DeviceRun(device="cuda:0", requested="cuda", first=Timing(1.0, 10.0, 9.0))
    rep = DeviceReport(runs=[cpu, gpu], cell_runs=2, compare=True)
    text = rich_to_text(render.to_rich(rep), width=160)
    assert "compared on cpu vs cuda:0" in text
    assert "1× (baseline)" in text and "4.00×" in text
    assert "4.00×" in render.to_html(rep)


def test_report_to_dict_is_json_and_mimebundle_has_both_views() -> None:
    rep = DeviceReport(runs=[_run()], cell_runs=7)
    data = json.loads(json.dumps(rep.to_dict()))
    assert data["kind"] == "DeviceReport" and data["runs"][0]["transfers"][0]["nbytes"] == 2048
    bundle = rep._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}


def test_info_and_model_views_escape() -> None:
    info = DeviceInfoReport(
        torch_version="2.x",
        devices=[DeviceFacts("cuda:0", "cuda", f"GPU {XSS}", 2**30, 2**29, 0, 0, "9.0")],
        settings=[("cudnn.benchmark", f"{IMG}")],
    )
    html = render_info.to_html(info)
    assert "<script>" not in html and "<img" not in html and "1.0 GiB" in html
    text = rich_to_text(render_info.to_rich(info), width=160)
    assert f"GPU {XSS}" in text and "cudnn.benchmark" in text

    model = ModelMapReport(
        name=f"m{MARKUP}",
        kind="Sequential",
        per_device=[PlacementRow("cpu", "device", ("cpu",), 2, 64, 0, 0)],
        layers=[PlacementRow(f"0{XSS}", "Linear", ("cpu",), 2, 64, 0, 0)],
        layers_total=3,
        notes=[f"note {IMG}"],
    )
    html = render_info.to_html(model)
    assert "<script>" not in html and "<img" not in html and "first 1 of 3" in html
    text = rich_to_text(render_info.to_rich(model), width=160)
    assert f"%device m{MARKUP}" in text and f"0{XSS}" in text and "64 B" in text

"""Renderers: structure of HTML and rich text, escaping of every user-derived string."""

from __future__ import annotations

import json

from torchmagic.core.report import rich_to_text
from torchmagic.device import render
from torchmagic.device.render import fmt_ms, signed_bytes
from torchmagic.device.report import (
    CreatedTensor,
    DeviceReport,
    DeviceRun,
    MemoryStats,
    Mismatch,
    ModuleStat,
    Operand,
    OpStat,
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
            [CreatedTensor((32, 32), "float32", device, 4096, 2, f"a = {MARKUP}", "torch.mm", count=3, alive=2,
                           names=(f"w{payload}",), unnamed=1, module=f"net.{payload}")],
        ),
        modules=[ModuleStat(f"net{payload}", f"Net{payload}", 0, 1, 2.0, 3.0, 4096, 1024, 512, 42, "(2, 2)"),
                 ModuleStat(f"net{payload}.0", "Linear", 1, 24, 1.0, 1.5, 2048, 512, 256, 21, "(2, 2)",
                            instances=12, name="layers.0–11")],
        modules_unfolded=[ModuleStat(f"net{payload}", f"Net{payload}", 0, 1, 2.0, 3.0, 4096, 1024, 512, 42)] * 14,
        modules_total=14,
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
    for section in ("warm-up run", "repeats", "Slowest ops", "Modules", "memory", "Transfers", "Sync points",
                    "device mismatch", "every module (14 rows)", "layers.0–11 ×12 (24 calls)"):
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
    # the largest tensors: a row with a count, names and the module that made them
    assert "4.0 KiB ×3" in text and f"w{MARKUP}, 1 alive (no name), 1 freed" in text
    assert f"torch.mm in net.{MARKUP}" in text and "alive (no name): still in memory" in text
    # modules: indented by depth, folded layers with their count
    assert f"net{MARKUP}" in text and "  layers.0–11 ×12 (24 calls)" in text.replace("\u00a0", " ")


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

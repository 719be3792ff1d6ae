"""%device and %device model views: escaping, parameters as elements with their tensor count."""

from __future__ import annotations

from torchmagic.core.report import rich_to_text
from torchmagic.device import render_info
from torchmagic.device.report import DeviceFacts, DeviceInfoReport, ModelMapReport, PlacementRow

XSS = '<script>alert(1)</script>'
IMG = '"><img src=x onerror=alert(1)>'
MARKUP = "[bold]x[/bold]"


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
        per_device=[PlacementRow("cpu", "device", ("cpu",), 16, 2, 64, 0, 0, 0)],
        layers=[PlacementRow(f"0{XSS}", "Linear", ("cpu",), 16, 2, 64, 0, 0, 0)],
        layers_total=3,
        notes=[f"note {IMG}"],
    )
    html = render_info.to_html(model)
    assert "<script>" not in html and "<img" not in html and "first 1 of 3" in html
    text = rich_to_text(render_info.to_rich(model), width=160)
    assert f"%device m{MARKUP}" in text and f"0{XSS}" in text and "64 B" in text
    assert "parameters" in text and "16 in 2 tensors" in text

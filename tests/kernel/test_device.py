"""%%device and %device in a real Jupyter kernel: HTML + plain text, failing cells fail."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.kernel


def _device_bundles(displays: list[dict[str, Any]], marker: str) -> list[dict[str, Any]]:
    return [d for d in displays if marker in d.get("text/plain", "")]


def test_device_cell_shows_html_and_text_and_returns_the_value(kernel: Any) -> None:
    out = kernel.run(
        "%%device cpu -n 2 -r 2\n"
        "import torch\n"
        "a = torch.randn(64, 64)\n"
        "b = (a @ a).to('meta')\n"
        "b.shape\n"
    )
    assert out.status == "ok", out.error
    (bundle,) = _device_bundles(out.displays, "%%device on cpu")
    assert "text/html" in bundle and "text/plain" in bundle
    html = bundle["text/html"]
    assert 'class="tm tm-device"' in html and "Transfers" in html and "warm-up run" in html
    assert "the cell ran 5 times" in bundle["text/plain"]
    # the cell's own value comes after the report, as Out[N]
    assert out.results and "torch.Size([64, 64])" in out.results[0]["text/plain"]


def test_device_mismatch_fails_the_cell_in_a_kernel(kernel: Any) -> None:
    out = kernel.run("%%device meta\nimport torch\nx = torch.ones(2)\ny = x + torch.ones(2, device='cpu')\n")
    assert out.status == "error" and out.error is not None
    assert out.error["ename"] == "RuntimeError"
    (bundle,) = _device_bundles(out.displays, "%%device on meta")
    assert "device mismatch" in bundle["text/html"]
    check = kernel.run("import torch; print(torch.ones(1).device)")
    assert check.stdout.strip() == "cpu"


def test_device_line_shows_facts(kernel: Any) -> None:
    out = kernel.run("%device")
    assert out.status == "ok", out.error
    (bundle,) = _device_bundles(out.displays, "settings")
    assert "text/html" in bundle and "cudnn.benchmark" in bundle["text/html"]

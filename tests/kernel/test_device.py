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


def test_issue13_model_cell_in_a_kernel(kernel: Any) -> None:
    """`%%device cpu` on `out = model(xb)`: activations attributed, repeats grouped, modules listed."""
    setup = (
        "import torch\n"
        "torch.manual_seed(0)\n"
        "model = torch.nn.Sequential(torch.nn.Linear(10, 20), torch.nn.ReLU(), torch.nn.Linear(20, 2))\n"
        "xb = torch.randn(64, 10)\n"
    )
    assert kernel.run(setup).status == "ok"
    out = kernel.run("%%device cpu -o rep\nfor i in range(5):\n    out = model(xb)\nout.sum().backward()\n")
    assert out.status == "ok", out.error
    (bundle,) = _device_bundles(out.displays, "%%device on cpu")
    text = bundle["text/plain"]
    assert "Modules: time and memory per nn.Module" in text and "model (5 calls)" in text
    rows = kernel.run(
        "print([(t.op, t.shape, t.count, t.names, t.freed, t.module) for t in rep.runs[0].memory.largest])"
    ).stdout
    assert "('F.linear', (64, 20), 5, (), 5, 'model.0')" in rows  # never "out"
    assert "('F.linear', (64, 2), 5, ('out',), 4, 'model.2')" in rows
    html = bundle["text/html"]
    assert "<td>model (5 calls)</td><td>Sequential</td>" in html and "262" in html
    (placement,) = kernel.run("%device model").displays
    assert "262 in 4 tensors" in placement["text/plain"] and "parameters" in placement["text/plain"]


def test_fallback_notice_is_said_once_in_a_kernel(kernel: Any) -> None:
    out = kernel.run("%%device cuda --fallback cpu\nimport torch\nt = torch.ones(2)\n")
    assert out.status == "ok", out.error
    shown = out.stdout + out.stderr + "".join(d.get("text/plain", "") for d in out.displays)
    assert " ".join(shown.split()).count("instead of cuda") == 1  # in the report only (was also on stderr)


def test_cuda_without_a_gpu_in_chinese(kernel: Any) -> None:
    """issue 15's seed cell: %%device cuda on a machine without CUDA, explained in Chinese."""
    assert kernel.run("%config TorchMagics.language = 'zh_CN'").status == "ok"
    try:
        if kernel.run("import torch\nprint(torch.cuda.is_available())").stdout.strip() == "True":
            pytest.skip("checks the machine-without-CUDA path")
        failed = kernel.run("%%device cuda\nz = torch.ones(2)\n")
        fallback = kernel.run("%%device cuda --fallback cpu\nz = torch.ones(2)\n")
    finally:
        kernel.run("%config TorchMagics.language = 'auto'")
    assert failed.status == "error" and "本机没有可用的 CUDA" in failed.stderr and "--fallback cpu" in failed.stderr
    assert fallback.status == "ok"
    (bundle,) = _device_bundles(fallback.displays, "%%device 在 cpu 上")
    assert "此单元格改在 cpu 上运行，而不是 cuda" in bundle["text/html"]
    assert "instead of" not in bundle["text/plain"]

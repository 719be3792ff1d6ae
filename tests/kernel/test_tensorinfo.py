"""%tensorinfo in a real Jupyter kernel: HTML + plain text bundles, clean errors."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.kernel


def test_display_bundle_has_html_and_text(kernel: Any) -> None:
    assert kernel.run("import torch\nx = torch.arange(6.).reshape(2, 3)").status == "ok"
    out = kernel.run("%tensorinfo x")
    assert out.status == "ok" and len(out.displays) == 1
    bundle = out.displays[0]
    assert {"text/html", "text/plain"} <= set(bundle)
    assert "<table" in bundle["text/html"] and "(2, 3)" in bundle["text/html"]
    assert "x  matrix (2, 3) float32 cpu" in bundle["text/plain"]
    assert "\x1b[" not in bundle["text/plain"]


def test_escaping_in_the_kernel(kernel: Any) -> None:
    kernel.run('import torch\nd = {"<script>alert(1)</script>": torch.ones(1)}')
    out = kernel.run('%tensorinfo d["<script>alert(1)</script>"]')
    html = out.displays[0]["text/html"]
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_error_fails_the_cell_with_one_line(kernel: Any) -> None:
    out = kernel.run("%tensorinfo does_not_exist")
    assert out.status == "error"  # Run All stops here
    # IPython shows a UsageError as one line on stderr, with no traceback.
    assert out.stderr.strip() == "UsageError: %tensorinfo: name 'does_not_exist' is not defined"
    assert not out.displays


def test_namespace_table_and_out(kernel: Any) -> None:
    kernel.run("import torch\nnet = torch.nn.Linear(3, 3)")
    out = kernel.run("%tensorinfo -o rep\nprint(type(rep).__name__)")
    assert out.status == "ok" and "NamespaceReport" in out.stdout
    assert "net" in out.displays[0]["text/html"]


def test_issue14_reported_cells_in_a_kernel(kernel: Any) -> None:
    """The learner's cells of issue 14, as a notebook shows them."""
    setup = (
        "import torch, numpy as np\n"
        "x = torch.tensor([1., 0., -1., 4.])\n"
        "b = torch.log(x)\n"
        "o = torch.tensor([[1.088, 1.768, 1.2], [1.5, 1.3, 1.1]])\n"
        "r = o.unsqueeze(1)\n"
        "g = np.ones(3)\n"
        "u = torch.tensor([1.3e26, 0., 4.6e-41])\n"
        "series = torch.rand(8, 50, 3)\n"
    )
    assert kernel.run(setup).status == "ok"
    (nan,) = kernel.run("%tensorinfo b").displays
    assert "b  vector (4,) float32 cpu  1 NaN  1 −Inf" in nan["text/plain"]
    assert "statistics of the 2 finite values (of 4)" in nan["text/plain"]
    assert nan["text/html"].count('class="tm-badge tm-error"') == 2  # NaN and −Inf, highlighted
    (whole,) = kernel.run("%tensorinfo r").displays
    assert "values of r\n" in whole["text/plain"].replace("│", "").replace("  ", " ").replace(" \n", "\n") or (
        "values of <code>r</code>" in whole["text/html"])
    assert "[[  1.5,   1.3,   1.1]]]" in whole["text/html"] and "values of <code>r[0" not in whole["text/html"]
    (uninit,) = kernel.run("%tensorinfo u").displays
    assert "look like uninitialised memory" in uninit["text/html"]
    (short,) = kernel.run("%tensorinfo --short x b r").displays
    lines = short["text/plain"].splitlines()
    assert [ln.split()[0] for ln in lines[:3]] == ["x", "b", "r"] and lines[1].endswith("1 NaN, 1 −Inf")
    (listing,) = kernel.run("%tensorinfo").displays
    assert "<td>g</td><td>ndarray</td>" in listing["text/html"]
    (pic,) = kernel.run("%tensorinfo --image series").displays
    assert "(N, T, C)" in pic["text/plain"] and "one image, RGB" not in pic["text/plain"]
    assert "<img" not in pic["text/html"]


def test_tensor_display_summary_in_a_kernel(kernel: Any) -> None:
    kernel.run("import torch\nb = torch.log(torch.tensor([1., 0., -1., 4.]))")
    assert kernel.run("%config TorchMagics.tensor_display = 'summary'").status == "ok"
    try:
        (value,) = kernel.run("b").results
        assert value["text/plain"].splitlines()[0] == (
            "Tensor (4,) float32 cpu · [0, 1.386] μ=0.6931 σ=0.9803 · 1 NaN, 1 −Inf")
        assert "tm-badge tm-error" in value["text/html"] and "<pre>tensor([0.0000," in value["text/html"]
        printed = kernel.run("print(b)")
        assert printed.stdout == "tensor([0.0000,   -inf,    nan, 1.3863])\n"  # print is torch's own
    finally:
        kernel.run("%unload_ext torchmagic")
        (plain,) = kernel.run("b").results
        assert plain == {"text/plain": "tensor([0.0000,   -inf,    nan, 1.3863])"}
        assert kernel.run("%load_ext torchmagic").status == "ok"
    assert set(kernel.run("b").results[0]) == {"text/plain", "text/html"}  # the config still says summary
    assert kernel.run("%config TorchMagics.tensor_display = 'repr'").status == "ok"
    assert set(kernel.run("b").results[0]) == {"text/plain"}


def test_a_chinese_report_in_the_kernel(kernel: Any) -> None:
    """issue 15: one option and the notebook's %tensorinfo speaks Chinese, HTML and plain text alike."""
    assert kernel.run("%config TorchMagics.language = 'zh_CN'").status == "ok"
    try:
        kernel.run("import torch\ny = torch.tensor([1., float('nan'), -float('inf'), 2.])")
        (bundle,) = kernel.run("%tensorinfo y").displays
    finally:
        kernel.run("%config TorchMagics.language = 'auto'")
    html, plain = bundle["text/html"], bundle["text/plain"]
    assert "y  向量 (4,) float32 cpu  1 个 NaN  1 个 −Inf" in plain
    for text in (html, plain):
        assert "统计：2 个有限值（共 4 个）" in text and "statistics of" not in text
    (english,) = kernel.run("%tensorinfo y").displays  # back to the kernel's own (English) locale
    assert "statistics of the 2 finite values (of 4)" in english["text/plain"]

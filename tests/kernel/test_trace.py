"""%%tensorinfo and the default error explainer in a real Jupyter kernel."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.kernel

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_cell_trace_displays_html_and_text(kernel):
    out = kernel.run(
        "%%tensorinfo\nimport torch\nx = torch.ones(2, 3)\ny = x + torch.arange(3)\ny.sum()"
    )
    assert out.status == "ok", out.error
    bundles = [d for d in out.displays if "text/html" in d]
    assert bundles, out.displays
    html, text = bundles[0]["text/html"], bundles[0]["text/plain"]
    assert "tm-trace" in html and "arange" in html
    assert "add" in text and "(2, 3)" in text
    # the last expression still comes back as Out[N], after the report
    assert out.results and "tensor(" in out.results[0]["text/plain"]


def test_cell_trace_error_fails_cell_and_explains(kernel):
    out = kernel.run("%%tensorinfo\na = torch.ones(2, 3)\nb = torch.ones(5, 4)\nc = a @ b")
    assert out.status == "error"
    assert out.error is not None and out.error["ename"] == "RuntimeError"
    htmls = [d["text/html"] for d in out.displays if "text/html" in d]
    assert any("inner dims 3 ≠ 5" in h for h in htmls)
    # shown once, by the trace: the default explainer does not repeat it
    assert sum("inner dims" in d.get("text/plain", "") for d in out.displays) == 1


def test_default_explainer_in_kernel(kernel):
    out = kernel.run("p = torch.ones(2, 3)\nq = torch.ones(4)\np + q")
    assert out.status == "error"
    assert out.error["ename"] == "RuntimeError"
    explained = [d for d in out.displays if "torchmagic explains" in d.get("text/plain", "")]
    assert explained, out.displays
    assert "text/html" in explained[0]
    assert "p is (2, 3)" in explained[0]["text/plain"]
    tb = ANSI.sub("", "\n".join(out.error["traceback"]))
    assert "must match the size" in tb  # the original error is untouched


def test_default_explainer_can_be_turned_off(kernel):
    assert kernel.run("%config TorchMagics.explain_errors = False").status == "ok"
    try:
        out = kernel.run("torch.ones(2, 3) @ torch.ones(4, 5)")
        assert out.status == "error"
        assert not any("torchmagic explains" in d.get("text/plain", "") for d in out.displays)
    finally:
        kernel.run("%config TorchMagics.explain_errors = True")


def test_deep_in_a_kernel_prints_nothing_and_leaves_the_users_profiler_working(kernel):
    """--deep runs PyTorch's legacy profiler: no log lines reach the notebook (ipykernel forwards fd 2)."""
    out = kernel.run("%%tensorinfo --deep\nimport torch\nw = torch.ones(3, 3)\nv = (w @ w).relu()")
    assert out.status == "ok", out.error
    assert out.stderr == "" and out.stdout == ""
    text = "".join(d.get("text/plain", "") for d in out.displays)
    assert "aten.mm" in text
    out = kernel.run("%%tensorinfo --deep\nwith torch.profiler.profile() as prof:\n    u = w * 2\n"
                     "n = len(prof.key_averages())")
    assert out.status == "ok", out.error
    text = "".join(d.get("text/plain", "") for d in out.displays)
    assert "aten ops not recorded" in text


def test_module_tree_of_a_cnn_in_a_kernel(kernel):
    from tests.models import CNN

    assert kernel.run(CNN).status == "ok"
    out = kernel.run("%%tensorinfo\nout = net(batch)")
    assert out.status == "ok", out.error
    html = next(d["text/html"] for d in out.displays if "text/html" in d)
    assert html.index("tm-modules") < html.index('class="tm-table tm-trace"')  # the summary comes first
    assert '<details class="tm-module" open><summary><code>net</code> <b>Net</b>' in html
    assert "<script" not in html
    text = next(d["text/plain"] for d in out.displays if "text/plain" in d)
    assert "conv1  Conv2d  conv2d" in text and "self.conv1(x) (8, 16, 32, 32)" in text
    assert kernel.run("assert out.shape == (8, 10)").status == "ok"


def test_nan_in_a_traced_cell_and_the_nan_watch_in_a_kernel(kernel):
    out = kernel.run("%%tensorinfo\nx = torch.tensor([1., 0., -1., 4.])\nb = torch.log(x)\nc = b - b")
    assert out.status == "ok", out.error
    text = " ".join(next(d["text/plain"] for d in out.displays if "text/plain" in d).split())
    assert "NaN/Inf line 3: torch.log(x) made 1 NaN and 1 −Inf (log of a negative number and of 0)" in text
    assert kernel.run("%tensorinfo --nan on").status == "ok"
    try:
        out = kernel.run("y = torch.sqrt(torch.tensor([4., -1.]))\nz = y * 2")
        assert out.status == "ok", out.error
        shown = [d for d in out.displays if "torchmagic NaN watch" in d.get("text/plain", "")]
        assert shown and "text/html" in shown[0]
        assert "line 1: torch.sqrt(torch.tensor([4., -1.])) made 1 NaN (square root of a negative number)" in " ".join(
            shown[0]["text/plain"].split())
        out = kernel.run("w = torch.ones(2) + 1")
        assert not out.displays and out.stdout == ""
    finally:
        assert kernel.run("%tensorinfo --nan off").status == "ok"
    assert kernel.run("assert torch._C._len_torch_function_stack() == 0").status == "ok"


def test_explainer_defects_fixed_in_a_kernel(kernel):
    out = kernel.run("torch.ones(2, 3) @ torch.ones(2, 3)")
    assert out.status == "error"
    text = " ".join("".join(d.get("text/plain", "") for d in out.displays).split())
    assert "matmul: torch.ones(2, 3) is (2, 3), torch.ones(2, 3) is (2, 3): inner dims 3 ≠ 2" in text
    out = kernel.run("o = torch.ones(2, 3)\no.t().view(-1)")
    text = " ".join("".join(d.get("text/plain", "") for d in out.displays).split())
    assert "o.t(): (3, 2) float32, not contiguous" in text and "scalar" not in text

"""%%autograd in a real Jupyter kernel: SVG in the display bundle, accumulation on re-run."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.kernel

CELL = """%%autograd
loss = (w_ag * x_ag).sum()
loss.backward()
"""


def _autograd_bundle(displays: list[dict[str, Any]]) -> dict[str, Any]:
    bundles = [d for d in displays if "tm-autograd" in d.get("text/html", "")]
    assert len(bundles) == 1, displays
    return bundles[0]


def test_svg_in_bundle_and_accumulation_on_second_run(kernel: Any) -> None:
    setup = kernel.run(
        "import torch\nw_ag = torch.tensor([1., 2.], requires_grad=True)\nx_ag = torch.tensor([3., 4.])"
    )
    assert setup.status == "ok", setup.error
    first = kernel.run(CELL)
    assert first.status == "ok", first.error
    bundle = _autograd_bundle(first.displays)
    html, text = bundle["text/html"], bundle["text/plain"]
    assert "<svg" in html and "</svg>" in html and "<title>" in html
    assert "MulBackward0" in html and "w_ag" in html
    assert "<script" not in html
    assert "SumBackward0" in text and "w_ag" in text
    assert "accumulated" not in text

    second = kernel.run(CELL)
    assert second.status == "ok", second.error
    bundle2 = _autograd_bundle(second.displays)
    for view in (bundle2["text/plain"], bundle2["text/html"]):
        assert "w_ag.grad accumulated" in view
        assert "[3, 4]" in view and "[6, 8]" in view
        assert "zero_grad()" in view
    assert "previous run of this cell" in " ".join(bundle2["text/plain"].split())


def test_error_fails_the_cell_and_is_explained(kernel: Any) -> None:
    out = kernel.run(
        "%%autograd\nv_ag = torch.ones(2, requires_grad=True)\ny_ag = v_ag.exp().sum()\n"
        "y_ag.backward()\ny_ag.backward()"
    )
    assert out.status == "error" and out.error is not None
    assert out.error["ename"] == "RuntimeError"
    bundle = _autograd_bundle(out.displays)
    assert "retain_graph=True" in bundle["text/plain"]


def test_transformer_is_folded_and_readable(kernel: Any) -> None:
    setup = kernel.run(
        "import torch\nfrom torch import nn\ntorch.manual_seed(0)\n"
        "enc_k = nn.TransformerEncoder(nn.TransformerEncoderLayer(d_model=64, nhead=4, dim_feedforward=128,"
        " batch_first=True), num_layers=2)\nsrc_k = torch.randn(2, 10, 64)"
    )
    assert setup.status == "ok", setup.error
    out = kernel.run("%%autograd\nout_k = enc_k(src_k)\nloss_k = out_k.pow(2).mean()\nloss_k.backward()")
    assert out.status == "ok", out.error
    bundle = _autograd_bundle(out.displays)
    html, text = bundle["text/html"], bundle["text/plain"]
    assert "161 backward nodes folded into 16 module boxes" in html
    assert html.count("<details") >= 7 and "enc_k.layers.0.self_attn · MultiheadAttention" in html
    assert 'style="max-width:none"' in html and "<script" not in html
    assert len(html.encode()) < 300_000
    graph = text.split("backward graph, folded by module")[1].split("#1 backward")[0]
    assert len(graph.strip().splitlines()) <= 60 and "src_k" in graph


def test_training_loop_summary_and_nan(kernel: Any) -> None:
    setup = kernel.run(
        "import torch\nfrom torch import nn\ntorch.manual_seed(0)\nmlp_k = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))\n"
        "opt_k = torch.optim.SGD(mlp_k.parameters(), lr=0.05)\nxk = torch.randn(32, 8); tk = torch.randn(32, 1)"
    )
    assert setup.status == "ok", setup.error
    out = kernel.run(
        "%%autograd\nfor step in range(20):\n    loss_k = ((mlp_k(xk) - tk) ** 2).mean()\n"
        "    loss_k.backward()\n    opt_k.step()"
    )
    assert out.status == "ok", out.error
    text = " ".join(_autograd_bundle(out.displays)["text/plain"].split())
    assert "4 parameters accumulated over 19 steps: `opt_k.zero_grad()` missing in the loop at line 2" in text
    assert "Training loop: 20 backward() calls on loss_k" in text and "Gradient flow" in text
    nan = kernel.run(
        "%%autograd\nw_k = torch.tensor([0., 4., 16.], requires_grad=True)\nl_k = w_k.sqrt().sum()\nl_k.backward()"
    )
    assert nan.status == "ok", nan.error
    view = _autograd_bundle(nan.displays)["text/plain"]
    assert "⚠ non-finite" in view and "It appeared in SqrtBackward0" in " ".join(view.split())


def test_traceback_has_no_torchmagic_or_mode_frames(kernel: Any) -> None:
    assert kernel.run("import torch").status == "ok"
    out = kernel.run(
        "%%autograd\nv_k = torch.ones(2, requires_grad=True)\ny_k = v_k.exp().sum()\ny_k.backward()\ny_k.backward()"
    )
    assert out.status == "error" and out.error is not None
    trace = "\n".join(out.error["traceback"])
    assert "torchmagic" not in trace and "overrides.py" not in trace  # as a plain run shows it
    assert trace.count("_tensor.py") == 1
    assert trace.count("Trying to backward through the graph a second time") == 1
    bundle = _autograd_bundle(out.displays)
    assert "second time" not in bundle["text/plain"]  # the report explains; the message is the traceback's

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

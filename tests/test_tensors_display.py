"""TorchMagics.tensor_display = "summary": a one-line summary above displayed tensors, off by default."""

from __future__ import annotations

from typing import Any

import pytest


def _shown(ip: Any, code: str) -> dict[str, str]:
    """The display bundle IPython would send for the value of ``code`` (HTML on, as in a notebook)."""
    value = ip.ev(code)
    html = ip.display_formatter.formatters["text/html"]
    enabled, html.enabled = html.enabled, True
    try:
        data, _meta = ip.display_formatter.format(value)
    finally:
        html.enabled = enabled
    return data


@pytest.fixture
def summary(ip: Any, options: Any) -> Any:
    ip.run_cell("import torch\nx = torch.tensor([1., 0., -1., 4.])\nb = torch.log(x)").raise_error()
    with options(tensor_display="summary"):
        yield ip


def test_off_by_default(ip: Any) -> None:
    ip.run_cell("import torch").raise_error()
    data = _shown(ip, "torch.ones(2)")
    assert data["text/plain"] == "tensor([1., 1.])" and "text/html" not in data


def test_summary_line_above_the_values_in_text_and_html(summary: Any) -> None:
    data = _shown(summary, "b")
    plain = data["text/plain"].splitlines()
    assert plain[0] == "Tensor (4,) float32 cpu · [0, 1.386] μ=0.6931 σ=0.9803 · 1 NaN, 1 −Inf"
    assert plain[1] == "tensor([0.0000,   -inf,    nan, 1.3863])"
    html = data["text/html"]
    assert "Tensor (4,) float32 cpu" in html and 'tm-badge tm-error">1 NaN' in html
    assert "<pre>tensor([0.0000,   -inf,    nan, 1.3863])</pre>" in html


def test_the_reported_unsqueeze_cell_and_a_parameter(summary: Any) -> None:
    summary.run_cell("o = torch.tensor([[1.088, 1.768, 1.2], [1.5, 1.3, 1.1]])\nr = o.unsqueeze(1)").raise_error()
    assert _shown(summary, "r")["text/plain"].startswith("Tensor (2, 1, 3) float32 cpu · [1.088, 1.768] μ=1.326")
    param = _shown(summary, "torch.nn.Parameter(torch.ones(2))")["text/plain"]
    assert param.startswith("Parameter (2,) float32 cpu · requires grad · [1, 1]")
    assert "Parameter containing:" in param


def test_print_and_repr_are_torchs_own(summary: Any, capture: Any) -> None:
    with capture() as cap:
        summary.run_cell("print(b)\nr = repr(b)").raise_error()
    assert cap.stdout == "tensor([0.0000,   -inf,    nan, 1.3863])\n"
    assert summary.user_ns["r"] == "tensor([0.0000,   -inf,    nan, 1.3863])"


def test_switching_off_and_unloading_remove_it_and_restore_the_users_printer(ip: Any, options: Any) -> None:
    ip.run_cell("import torch").raise_error()
    plain = ip.display_formatter.formatters["text/plain"]

    def mine(obj: Any, p: Any, cycle: bool) -> None:
        p.text("mine")

    plain.for_type_by_name("torch", "Tensor", mine)
    try:
        with options(tensor_display="summary"):
            assert _shown(ip, "torch.ones(1)")["text/plain"].startswith("Tensor (1,)")
        assert _shown(ip, "torch.ones(1)")["text/plain"] == "mine"  # off again: the user's printer is back
        ip.run_line_magic("config", "TorchMagics.tensor_display = 'summary'")
        ip.run_line_magic("unload_ext", "torchmagic")
        assert _shown(ip, "torch.ones(1)")["text/plain"] == "mine"
        assert "text/html" not in _shown(ip, "torch.ones(1)")
    finally:
        ip.config.TorchMagics.pop("tensor_display", None)
        plain.pop("torch.Tensor", None)
        ip.run_line_magic("load_ext", "torchmagic")


def test_a_failing_summary_leaves_torchs_repr(summary: Any, monkeypatch: Any, capture: Any) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr("torchmagic.tensors.summary.tensor_row", broken)
    with capture() as cap:
        data = _shown(summary, "x")
    assert data["text/plain"] == "tensor([ 1.,  0., -1.,  4.])"
    assert cap.stderr.count("torchmagic:") == 2  # once per format, one line each, no traceback
    assert "Traceback" not in cap.stderr

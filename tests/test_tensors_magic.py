"""The %tensorinfo line magic through a real in-process IPython shell."""

from __future__ import annotations

import json
from typing import Any

import pytest


def _run(ip: Any, capture: Any, code: str) -> tuple[Any, str]:
    with capture() as cap:
        result = ip.run_cell(code)
    return result, cap.stdout + cap.stderr


def test_one_tensor(ip: Any, capture: Any) -> None:
    ip.run_cell("import torch\nx = torch.arange(6.).reshape(2, 3)")
    res, out = _run(ip, capture, "%tensorinfo x")
    assert res.success
    assert "x  matrix (2, 3) float32 cpu" in out and "strides (3, 1), contiguous" in out


def test_several_expressions_with_spaces(ip: Any, capture: Any) -> None:
    ip.run_cell("import torch\no = torch.zeros(3, 4)\nmodel = torch.nn.Linear(4, 2)")
    res, out = _run(ip, capture, "%tensorinfo o o[:, 1] model.weight o.sum() + 1")
    assert res.success
    for header in ["o  matrix (3, 4)", "o[:, 1]  vector (3,)", "model.weight  matrix (2, 4)",
                   "o.sum() + 1  scalar ()"]:
        assert header in out


def test_out_stores_report_and_namespace_is_otherwise_unchanged(ip: Any, capture: Any) -> None:
    ip.run_cell("import torch\nx = torch.ones(2)")
    before = set(ip.user_ns)
    _run(ip, capture, "%tensorinfo -o rep x")
    assert set(ip.user_ns) - before == {"rep"}
    rep = ip.user_ns["rep"]
    data = rep.to_dict()
    json.dumps(data)
    assert data["kind"] == "InfoReport" and data["items"][0]["shape"] == [2]


def test_no_argument_lists_the_namespace(ip: Any, capture: Any) -> None:
    ip.run_cell("import torch\nbig = torch.ones(100)\nsmall = torch.ones(1)\nnet = torch.nn.Linear(2, 2)")
    res, out = _run(ip, capture, "%tensorinfo")
    assert res.success
    assert out.index("big") < out.index("net") < out.index("small")


@pytest.mark.parametrize(
    "line, message",
    [
        ("%tensorinfo nope", "name 'nope' is not defined"),
        ("%tensorinfo 1/0", "raised ZeroDivisionError: division by zero"),
        ("%tensorinfo o[:", "cannot parse"),
        ("%tensorinfo x = 1", "not a Python expression"),
        ("%tensorinfo --bogus x", "unrecognized arguments: --bogus"),
        ("%tensorinfo -o 1x x", "-o needs a Python name"),
    ],
)
def test_bad_input_is_one_clear_line(ip: Any, capture: Any, line: str, message: str) -> None:
    ip.run_cell("import torch\nx = torch.ones(1)")
    before = dict(ip.user_ns)
    res, out = _run(ip, capture, line)
    assert not res.success
    assert type(res.error_in_exec).__name__ == "UsageError"
    assert message in str(res.error_in_exec)
    assert "Traceback" not in out and "torchmagic" not in out
    assert {k for k in ip.user_ns if not k.startswith("_")} == {k for k in before if not k.startswith("_")}


def test_config_traits_change_the_report(ip: Any, capture: Any, options: Any) -> None:
    ip.run_cell("import torch\nbig = torch.arange(10000.)")
    with options(stats_max_elements=100, precision=2):
        _, out = _run(ip, capture, "%tensorinfo big")
        assert "strided sample" in out
        _run(ip, capture, "%tensorinfo -o r big")
        assert ip.user_ns["r"].items[0].stats.count <= 100


def test_config_lists_documented_options(ip: Any, capture: Any) -> None:
    with capture() as cap:
        ip.run_line_magic("config", "TorchMagics")
    for name in ["stats_max_elements", "preview_items", "precision", "histogram_bins", "image_max_frames"]:
        assert name in cap.stdout


def test_help_shows_usage_and_examples(ip: Any) -> None:
    doc = ip.find_line_magic("tensorinfo").__doc__
    assert "%tensorinfo x y model.weight o[:, 1]" in doc
    assert "--image" in doc and "-o NAME" in doc


def test_image_option(ip: Any, capture: Any) -> None:
    ip.run_cell("import torch\nimgs = torch.rand(4, 3, 8, 8)")
    _, out = _run(ip, capture, "%tensorinfo --image imgs")
    assert "(N, C, H, W) = (4, 3, 8, 8): 4 images, RGB" in out and "▀" in out


def test_public_api_outside_ipython() -> None:
    import torch

    import torchmagic

    r = torchmagic.tensorinfo(torch.ones(2, 2), names=["w"])
    assert "w  matrix (2, 2)" in str(r)
    assert r._repr_mimebundle_()["text/html"].startswith("<style>")

"""tensors.namespace: the %whos-like listing, one line per tensor/array/module, largest first, fast."""

from __future__ import annotations

import math

import numpy as np
import torch

from torchmagic.core.report import rich_to_text
from torchmagic.tensors import render
from torchmagic.tensors.namespace import scan_namespace, summarize
from torchmagic.tensors.summary import SummaryOptions

OPTS = SummaryOptions(summary_max_elements=1 << 16)


def test_rows_sorted_largest_first_with_modules_and_arrays() -> None:
    w = torch.ones(10, requires_grad=True)
    w.grad = torch.zeros(10)
    ns = {
        "small": torch.ones(2),
        "big": torch.ones(100, 100),
        "w": w,
        "model": torch.nn.Linear(4, 3),
        "p": torch.nn.Parameter(torch.ones(3)),
        "arr": np.zeros((2, 3), dtype=np.float32),
        "_hidden": torch.ones(1000),
        "n": 3,
    }
    r = scan_namespace(ns, OPTS)
    assert [row.name for row in r.rows] == ["big", "model", "w", "arr", "p", "small"]
    by_name = {row.name: row for row in r.rows}
    assert by_name["model"].kind == "Linear" and by_name["model"].note == "15 parameters in 2 tensors"
    assert by_name["p"].kind == "Parameter" and by_name["p"].grad == "requires grad"
    assert by_name["w"].grad == "requires grad, .grad set"
    assert by_name["arr"].kind == "ndarray" and by_name["arr"].stats is not None
    assert r.total_bytes == 40000 + 60 + 40 + 24 + 12 + 8


def test_the_listing_includes_numpy_arrays() -> None:
    """Issue 14: `%tensorinfo` with no argument omitted NumPy arrays although the examples list them."""
    g = np.ones(3)
    t = torch.from_numpy(g)
    rows = scan_namespace({"g": g, "t": t}, OPTS).rows
    assert {(row.name, row.kind) for row in rows} == {("g", "ndarray"), ("t", "Tensor")}
    text = rich_to_text(render.to_rich(scan_namespace({"g": g}, OPTS)))
    assert "g  ndarray (3,) float64 cpu" in text


def test_each_line_has_range_mean_std_and_flags() -> None:
    b = torch.log(torch.tensor([1.0, 0.0, -1.0, 4.0]))
    y = (torch.ones(2, requires_grad=True) * 2).sum()
    r = summarize([("b", b), ("y", y), ("m", torch.ones(2, device="meta")), ("n", 7)], OPTS)
    assert r.asked and [row.name for row in r.rows] == ["b", "y", "m", "n"]
    text = rich_to_text(render.to_rich(r))
    lines = text.splitlines()
    assert lines[0].startswith("b  Tensor (4,) float32 cpu") and "[0, 1.386] μ=0.6931" in lines[0]
    assert lines[0].endswith("1 NaN, 1 −Inf")
    assert "SumBackward0" in lines[1] and "[4, 4] μ=4 σ=0" in lines[1]
    assert "meta tensor" in lines[2] and lines[3].startswith("n  int") and lines[-1] == "4 items, 28 B in all"
    html = render.to_html(r)
    assert html.count("<tr>") == 5 and 'class="tm-badge tm-error">1 NaN' in html


def test_big_tensors_are_sampled_and_marked() -> None:
    big = torch.randn(1000, 1000)
    big[0, 0] = math.nan
    (row,) = summarize([("big", big)], SummaryOptions(summary_max_elements=10_000)).rows
    assert row.stats is not None and row.stats.sampled and row.stats.count <= 10_000
    assert render.summary_values(row).startswith("~[")


def test_cap_counts_hidden_rows() -> None:
    ns = {f"t{i}": torch.ones(i + 1) for i in range(30)}
    r = scan_namespace(ns, OPTS, max_rows=10)
    assert len(r.rows) == 10 and r.hidden == 20 and r.rows[0].name == "t29"


def test_thousands_of_names() -> None:
    ns: dict[str, object] = {f"v{i}": i for i in range(5000)}
    ns.update({f"t{i}": torch.ones(1) for i in range(2000)})
    r = scan_namespace(ns, OPTS)
    assert len(r.rows) + r.hidden == 2000

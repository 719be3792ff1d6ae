"""tensorinfo.namespace: the %whos-like table, largest first, fast with many names."""

from __future__ import annotations

import torch

from torchmagic.tensors.namespace import scan_namespace


def test_rows_sorted_largest_first_with_modules() -> None:
    w = torch.ones(10, requires_grad=True)
    w.grad = torch.zeros(10)
    ns = {
        "small": torch.ones(2),
        "big": torch.ones(100, 100),
        "w": w,
        "model": torch.nn.Linear(4, 3),
        "p": torch.nn.Parameter(torch.ones(3)),
        "_hidden": torch.ones(1000),
        "n": 3,
    }
    r = scan_namespace(ns)
    assert [row.name for row in r.rows] == ["big", "model", "w", "p", "small"]
    by_name = {row.name: row for row in r.rows}
    assert by_name["model"].kind == "Linear" and by_name["model"].shape == "15 params"
    assert by_name["p"].kind == "Parameter" and by_name["p"].grad == "requires grad"
    assert by_name["w"].grad == "grad set"
    assert r.total_bytes == 40000 + 60 + 40 + 12 + 8


def test_cap_counts_hidden_rows() -> None:
    ns = {f"t{i}": torch.ones(i + 1) for i in range(30)}
    r = scan_namespace(ns, max_rows=10)
    assert len(r.rows) == 10 and r.hidden == 20 and r.rows[0].name == "t29"


def test_thousands_of_names() -> None:
    ns: dict[str, object] = {f"v{i}": i for i in range(5000)}
    ns.update({f"t{i}": torch.ones(1) for i in range(2000)})
    r = scan_namespace(ns)
    assert len(r.rows) + r.hidden == 2000

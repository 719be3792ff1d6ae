"""CellSite: the cell's frame, line, source text and names, asked from inside calls."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tests.autograd_cells import exec_cell, site


def test_frame_line_source_and_names_seen_from_a_torch_call() -> None:
    seen: dict[str, Any] = {}
    code = "w = torch.ones(2, requires_grad=True)\nh = w * 2\nprobe(h)\n"
    ns: dict[str, Any] = {"torch": torch}
    where = site(code, ns)

    def probe(t: torch.Tensor) -> None:
        frame = where.frame()
        seen["frame_line"] = frame.f_lineno if frame is not None else None
        seen["line"] = where.line()
        seen["names"] = where.names()

    ns["probe"] = probe
    exec_cell(code, ns)
    # line() finds the cell line from anywhere; frame() only through torch (probe lives in this file).
    assert seen["frame_line"] is None and seen["line"] == 3
    assert where.source(3) == "probe(h)" and where.source(0) == where.source(99) == ""
    assert seen["names"][id(ns["w"])] == "w" and seen["names"][id(ns["h"])] == "h"


def test_names_include_locals_of_functions_defined_in_the_cell() -> None:
    found: dict[int, str] = {}
    code = "def step():\n    hidden = torch.zeros(3)\n    probe()\n    return hidden\nout = step()\n"
    ns: dict[str, Any] = {"torch": torch}
    where = site(code, ns)
    ns["probe"] = lambda: found.update(where.names())
    exec_cell(code, ns)
    assert "hidden" in found.values()


def test_optimizer_and_init_code_has_no_cell_frame() -> None:
    frames: list[Any] = []
    code = "nn.init.constant_(lin.weight, 0.5)\n"
    ns: dict[str, Any] = {"nn": nn, "lin": nn.Linear(2, 2)}
    where = site(code, ns)
    original = torch.nn.init._no_grad_fill_

    def spy(tensor: torch.Tensor, val: float) -> torch.Tensor:
        frames.append(where.frame())  # called from inside torch/nn/init.py
        return original(tensor, val)

    torch.nn.init._no_grad_fill_ = spy  # type: ignore[assignment]
    try:
        exec_cell(code, ns)
    finally:
        torch.nn.init._no_grad_fill_ = original  # type: ignore[assignment]
    assert frames == [None]
    assert where.frame() is None  # called from this test, not from the cell

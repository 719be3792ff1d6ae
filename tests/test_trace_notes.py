"""trace.notes: silent surprises named in the trace (uninitialised memory, changed values, no-ops, int ÷ int)."""

from __future__ import annotations

import torch

from tests.tracing import rows, trace
from torchmagic.trace.notes import UNINITIALISED, op_notes, source_notes


def _notes(rep, op):
    return [n for r in rows(rep, op) for v in r.variants for n in v.notes]


def test_learners_cells(ip, capture):
    rep = trace(ip, capture, "e = torch.empty(2)\nt = torch.tensor(1.7, dtype=torch.int8)\n"
                             "w = torch.tensor([300, 2]).to(torch.uint8)\nh = torch.tensor([0.1, 0.5]).half()\n"
                             "r = torch.ones(2, 3).unsqueeze(1)\ns = r.squeeze(0)\nv = r.view(2, 1, 3)\n"
                             "q = torch.tensor([1, 2]) / 2\nk = torch.tensor([1.5, 2.5]).long()")
    assert _notes(rep, "empty") == [UNINITIALISED]
    assert _notes(rep, "tensor")[0] == "1.7 → 1 (int8 keeps no fraction: truncated toward zero)"
    assert _notes(rep, "to") == ["1 of 2 values changed, e.g. 300 → 44 (outside uint8's range 0…255: it wraps around)"]
    assert _notes(rep, "half") == ["1 of 2 values changed, e.g. 0.1 → 0.0999756 (rounded to float16)"]
    assert _notes(rep, "squeeze") == ["no-op: dim 0 has size 2; squeeze removes only size-1 dims"]
    assert _notes(rep, "view") == ["no-op: the shape is already (2, 1, 3)"]
    assert "int64 ÷ int → float32 (true division; // keeps integers)" in _notes(rep, "div")
    assert _notes(rep, "long") == ["2 of 2 values changed, e.g. 1.5 → 1 (int64 keeps no fraction: truncated toward zero)"]
    assert ip.user_ns["t"].item() == 1 and ip.user_ns["w"][0].item() == 44  # what torch did, unchanged


def test_legacy_constructors_are_found_in_the_source(ip, capture):
    rep = trace(ip, capture, "f = torch.FloatTensor(2, 3)\nn = 4\ng = torch.Tensor(n, 2)\nd = torch.Tensor([1, 2])")
    assert [line for line, _ in rep.notes] == [2, 4]
    assert rep.notes[0][1].startswith("torch.FloatTensor(2, 3) makes a tensor of uninitialised memory")
    assert "⚠ line 2: torch.FloatTensor(2, 3)" in rep.to_text()


def test_nothing_to_say_for_plain_ops():
    x = torch.ones(2, 3)
    assert op_notes("to", (x, torch.float64), {}, x.double()) == []
    assert op_notes("long", (torch.tensor([1.0, 2.0]),), {}, torch.tensor([1, 2])) == []
    assert op_notes("squeeze", (torch.ones(2, 1),), {}, torch.ones(2)) == []
    assert op_notes("view", (x, 6), {}, x.view(6)) == []
    assert source_notes("x = torch.zeros(2)\ny = torch.Tensor(data)\n") == []
    assert source_notes("not python (") == []

"""trace.rows: the recorder's records stay compact (a loop bumps them millions of times)."""

from __future__ import annotations

import torch

from torchmagic.core.funcs import func_info
from torchmagic.trace.rows import Row, Var
from torchmagic.trace.source import Site


def test_records_have_slots_and_start_empty():
    row = Row(0, 2, func_info(torch.Tensor.add), Site("x + 1"), "")
    var = Var()
    assert not hasattr(row, "__dict__") and not hasattr(var, "__dict__")
    assert (row.op, row.count, row.variants, row.other, var.effect, var.count) == ("add", 0, {}, 0, "new", 1)

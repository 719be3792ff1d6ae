"""trace.build: a finished recording becomes a report, with names resolved after the cell."""

from __future__ import annotations

import linecache
from typing import Any

import torch

from torchmagic.core.names import user_names
from torchmagic.options import options_for
from torchmagic.trace.build import finish
from torchmagic.trace.modules import ModuleNames
from torchmagic.trace.options import TraceOptions
from torchmagic.trace.recorder import Recorder
from torchmagic.trace.report import TraceReport

CELL = "<ipython-input-11-build>"


def _record(body: str, ns: dict[str, Any], **flags: Any) -> tuple[Recorder, list[str]]:
    source = "# %%tensorinfo\n" + body
    linecache.cache[CELL] = (len(source), None, source.splitlines(keepends=True), CELL)
    options = options_for(TraceOptions, **flags)
    rec = Recorder(CELL, options, names=user_names(ns), modules=ModuleNames(ns) if options.trace_modules else None)
    with rec:
        exec(compile(source, CELL, "exec"), ns)
    return rec, source.splitlines()


def test_names_resolved_after_the_cell():
    ns: dict[str, Any] = {"torch": torch, "w": torch.ones(3, 2)}
    rec, lines = _record("h = torch.ones(4, 3) @ w\nout = h.relu()\n", ns)
    rep = finish(rec, lines, user_names(ns))
    assert isinstance(rep, TraceReport)
    ones, mm, relu = rep.rows
    assert (ones.op, mm.op, relu.op) == ("ones", "matmul", "relu")
    assert [o.label for o in mm.variants[0].inputs] == ["torch.ones(4, 3)", "w"]
    assert mm.variants[0].outputs[0].label == "h"
    assert relu.variants[0].inputs[0].label == "h" and relu.source == "out = h.relu()"
    assert rep.total_ops == 3 and rep.distinct_ops == 3 and rep.dropped_ops == 0


def test_unnamed_library_inputs_are_named_by_what_made_them_or_their_later_names():
    lin = torch.nn.Linear(3, 2)
    ns: dict[str, Any] = {"torch": torch, "lin": lin}
    rec, lines = _record("y = lin(torch.ones(4, 3))\n", ns, trace_modules=False)
    rep = finish(rec, lines, user_names(ns))
    (linear,) = [r for r in rep.rows if r.op == "linear"]
    labels = [o.label for o in linear.variants[0].inputs]
    assert labels == ["torch.ones(4, 3) →", "lin.weight", "lin.bias"]
    assert linear.variants[0].outputs[0].label == "y" and linear.variants[0].outputs[0].named


def test_broadcast_diagram_relabelled_and_annotated_source():
    ns: dict[str, Any] = {"torch": torch}
    rec, lines = _record("a = torch.ones(2, 3)\nb = torch.ones(3)\nc = a + b\n", ns)
    rep = finish(rec, lines, user_names(ns), view="source")
    (add,) = [r for r in rep.rows if r.op == "add"]
    bc = add.variants[0].broadcast
    assert bc is not None and [o.label for o in bc.operands] == ["a", "b"]
    assert rep.view == "source"
    assert [(a.line, a.comment) for a in rep.annotated] == [(2, "(2, 3) float32"), (3, "(3,) float32"), (4, "(2, 3)")]


def test_row_cap_counts_what_is_left_out():
    ns: dict[str, Any] = {"torch": torch}
    rec, lines = _record("a = torch.ones(2)\nb = a + 1\nc = b * 2\nd = c - 1\n", ns, trace_max_rows=2)
    rep = finish(rec, lines, user_names(ns))
    assert len(rep.rows) == 2 and rep.dropped_ops == 2 and rep.max_rows == 2
    assert "2 more beyond the 2-row cap" in rep.summary()

"""BackwardRecorder on its own: what one backward call records, called as the watcher calls it."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tests.autograd_cells import exec_cell, site
from torchmagic.autograd.backward import BackwardRecorder
from torchmagic.autograd.ledger import GradLedger
from torchmagic.autograd.log import WatchLog
from torchmagic.autograd.options import WatchOptions
from torchmagic.options import options_for


def recorder(code: str, ns: dict[str, Any], ledger: GradLedger | None = None, run: int = 1,
             **options: Any) -> BackwardRecorder:
    ns.setdefault("torch", torch)
    rec = BackwardRecorder(site(code, ns), WatchLog(), GradLedger() if ledger is None else ledger,
                           options_for(WatchOptions, **options), run=run, cell_key="k")
    ns["rec"] = rec
    return rec


BACKWARD = "rec.record('backward', torch.Tensor.backward, (loss,), {})"


def test_one_call_records_leaves_before_and_after() -> None:
    code = f"w = torch.tensor([1., 2.], requires_grad=True)\nloss = (w * 3).sum()\n{BACKWARD}\n"
    ns: dict[str, Any] = {}
    rec = recorder(code, ns)
    exec_cell(code, ns)
    (call,) = rec.log.calls
    assert (call.index, call.kind, call.root, call.line) == (1, "backward", "loss", 3)
    assert call.gradient == "implicit 1 (scalar output)" and call.graph_nodes == 4
    (leaf,) = call.leaves
    assert (leaf.name, leaf.before.text, leaf.after.text, leaf.added.text) == ("w", "None", "[3, 3]", "[3, 3]")
    assert not leaf.accumulated and leaf.status == "ok" and rec.log.notes == [] and rec.log.accumulated == {}
    assert call.loss == 9.0
    assert torch.equal(ns["w"].grad, torch.tensor([3.0, 3.0]))
    assert [g.nodes[g.roots[0]].label for g in rec.log.graphs] == ["SumBackward0"]


def test_second_call_without_zeroing_is_an_accumulation_with_its_origin() -> None:
    code = f"loss = (w * w).sum()\n{BACKWARD}\n"
    ledger = GradLedger()
    ns: dict[str, Any] = {"w": torch.tensor([1.0, 2.0], requires_grad=True)}
    recorder(code, ns, ledger, run=1)
    exec_cell(code, ns)
    rec = recorder(code, ns, ledger, run=2)
    exec_cell(code, ns)
    (leaf,) = rec.log.calls[0].leaves
    assert leaf.accumulated and (leaf.before.text, leaf.after.text) == ("[2, 4]", "[4, 8]")
    assert leaf.previous == "the backward() at line 2 of the previous run of this cell"
    (entry,) = rec.log.accumulated.values()
    assert (entry.name, entry.line, entry.first, entry.steps) == ("w", 2, 1, 1)
    assert entry.values is not None and [v.text for v in entry.values] == ["[2, 4]", "[2, 4]", "[4, 8]"]


def test_calls_past_the_detail_limit_are_counted_and_still_checked() -> None:
    code = f"w = torch.ones(2, requires_grad=True)\nfor i in range(5):\n    loss = (w * 2).sum()\n    {BACKWARD}\n"
    ns: dict[str, Any] = {}
    rec = recorder(code, ns, autograd_max_calls=2)
    exec_cell(code, ns)
    assert rec.log.calls_total == 5 and len(rec.log.calls) == 2
    (entry,) = rec.log.accumulated.values()
    assert (entry.first, entry.steps) == (2, 4)  # calls 2..5 each added onto the last
    assert rec.log.lines == [4] * 5
    assert torch.equal(ns["w"].grad, torch.tensor([10.0, 10.0]))


def test_autograd_grad_results_and_no_grad_touched() -> None:
    code = ("x = torch.tensor([1., 2.], requires_grad=True)\ny = (x ** 2).sum()\n"
            "(g,) = rec.record('torch.autograd.grad', torch.autograd.grad, (y, [x]), {})\n")
    ns: dict[str, Any] = {}
    rec = recorder(code, ns)
    exec_cell(code, ns)
    (call,) = rec.log.calls
    assert call.kind == "torch.autograd.grad" and call.leaves == ()
    assert call.results == (("x", "[2, 4]"),)
    assert ns["x"].grad is None and torch.equal(ns["g"], torch.tensor([2.0, 4.0]))


def test_a_failing_call_is_recorded_and_raises_unchanged() -> None:
    code = f"v = torch.ones(2, requires_grad=True)\nloss = v.exp().sum()\n{BACKWARD}\n{BACKWARD}\n"
    ns: dict[str, Any] = {}
    rec = recorder(code, ns)
    with pytest.raises(RuntimeError, match="second time") as info:
        exec_cell(code, ns)
    assert [c.error != "" for c in rec.log.calls] == [False, True]
    (exc, graph, label) = rec.log.errors[0]
    assert exc is info.value and label == "loss" and graph is not None
    assert any("freed" in n.note for n in graph.nodes)


def test_hooks_are_removed_after_each_call() -> None:
    retained = "rec.record('backward', torch.Tensor.backward, (loss,), {'retain_graph': True})"
    code = f"w = torch.ones(2, requires_grad=True)\nloss = (w * w).sum()\n{retained}\n"
    ns: dict[str, Any] = {}
    rec = recorder(code, ns)
    exec_cell(code, ns)
    assert rec.log.op_grads  # node hooks ran during the call
    before = dict(rec.log.op_grads)
    rec.log.op_grads.clear()
    ns["loss"].backward()  # a plain backward afterwards reaches none of our hooks
    assert rec.log.op_grads == {} and before


def test_bookkeeping_failure_leaves_the_call_alone(monkeypatch: Any) -> None:
    import torchmagic.autograd.backward as backward

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("boom")

    monkeypatch.setattr(backward, "walk", broken)
    code = f"w = torch.ones(2, requires_grad=True)\nloss = (w * 5).sum()\n{BACKWARD}\n"
    ns: dict[str, Any] = {}
    rec = recorder(code, ns)
    exec_cell(code, ns)
    assert torch.equal(ns["w"].grad, torch.tensor([5.0, 5.0]))
    assert rec.log.calls == [] and "could not record backward call #1" in rec.log.notes[0].message

"""AutogradSession as a collector (no magic): which graph it reads, its report, the line form."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from torchmagic.autograd.ledger import GradLedger
from torchmagic.autograd.options import GraphOptions, WatchOptions
from torchmagic.autograd.report import AutogradReport
from torchmagic.autograd.session import AutogradSession, tensor_report
from torchmagic.core.cell import Cell
from torchmagic.options import options_for


def collect(ip: Any, body: str, **graph: Any) -> AutogradReport:
    """Compile ``body`` as a cell, run it inside the session, and return the session's report."""
    ip.run_cell("import torch\nfrom torch import nn")
    cell = Cell.compile(ip, body, "%%autograd")
    session = AutogradSession(cell, GradLedger(), options_for(WatchOptions), options_for(GraphOptions, **graph))
    error: BaseException | None = None
    with session:
        try:
            cell.run()
        except Exception as exc:
            error = exc
    return session.report(error)


def test_graph_comes_from_new_names_and_backward_roots(ip: Any) -> None:
    ip.run_cell("import torch\nold = torch.ones(2, requires_grad=True) * 3")
    r = collect(ip, "w = torch.ones(2, requires_grad=True)\nh = (w * 2).exp()\nloss = (h * 4).sum()\nloss.backward()")
    assert r.graph is not None and not r.failed
    labels = {n.label for n in r.graph.nodes}
    assert {"w", "ExpBackward0", "SumBackward0"} <= labels
    assert not any("old" in n.names for n in r.graph.nodes)  # bound before the cell: not an output
    assert [c.root for c in r.calls] == ["loss"]
    root = r.graph.nodes[r.graph.roots[0]]
    assert root.label == "SumBackward0" and root.names == ("loss",)


def test_failing_cell_is_explained_with_the_tensor_names(ip: Any) -> None:
    r = collect(ip, "v = torch.ones(2, requires_grad=True)\ny = v.exp().sum()\ny.backward()\ny.backward()")
    assert r.failed and r.explanation is not None
    assert r.explanation.kind == "second-backward" and "`y`" in r.explanation.plain
    assert "ExpBackward0" in r.explanation.plain  # the node whose saved tensors were freed


def test_nothing_to_draw_says_why(ip: Any) -> None:
    r = collect(ip, "a = torch.ones(2)\nb = a * 2")
    assert r.graph is None and "no tensor in this cell requires grad" in r.nothing
    r = collect(ip, "p = torch.ones(2, requires_grad=True)")
    assert "p requires grad, but the cell computed nothing from it" in r.nothing


def test_big_graphs_are_folded_unless_asked_not_to(ip: Any) -> None:
    body = "m = nn.Sequential(*[nn.Sequential(nn.Linear(2, 2), nn.Tanh()) for _ in range(40)])\nout = m(torch.ones(1, 2)).sum()"
    folded = collect(ip, body)
    full = collect(ip, body, autograd_collapse=False)
    assert folded.graph is not None and full.graph is not None
    assert len(folded.graph.nodes) < 40 < len(full.graph.nodes)
    assert any(n.kind == "collapsed" for n in folded.graph.nodes)


def test_line_form_reports_graph_and_leaf_grads() -> None:
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    t = (w * w).sum()
    t.backward(retain_graph=True)
    opts, graph = options_for(WatchOptions), options_for(GraphOptions)
    r = tensor_report("t", t, {"w": w, "t": t}, opts, graph)
    assert r.leaves == [("w", "[2, 4]")]
    assert r.graph is not None and r.graph.nodes[r.graph.roots[0]].names == ("t",)
    assert "not a tensor" in tensor_report("n", 3, {}, opts, graph).nothing
    assert "does not require grad" in tensor_report("c", torch.ones(1), {}, opts, graph).nothing


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt()])
def test_interrupted_cell_reports_what_ran_without_an_explanation(ip: Any, interrupt: BaseException) -> None:
    ip.run_cell("import torch")
    cell = Cell.compile(ip, "w = torch.ones(2, requires_grad=True)\nloss = (w * 2).sum()\nloss.backward()", "%%autograd")
    session = AutogradSession(cell, GradLedger(), options_for(WatchOptions), options_for(GraphOptions))
    with session:
        cell.run()
    r = session.report(interrupt)
    assert r.explanation is None and r.calls_total == 1

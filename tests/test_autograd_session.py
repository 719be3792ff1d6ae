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


MLP = """torch.manual_seed(0)
model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.05)
x = torch.randn(64, 16); t = torch.randn(64, 1)"""
LOOP = """for step in range(20):
{zero}    loss = ((model(x) - t) ** 2).mean()
    loss.backward()
    opt.step()"""


def _masked(text: str) -> str:
    """Numbers and sparklines replaced, so the snapshot pins the structure only."""
    import re

    text = re.sub(r"[▁▂▃▄▅▆▇█!]{3,}", "<spark>", text)
    text = re.sub(r"-?\d+(\.\d+)?(e[-+]?\d+)?", "#", text)
    return "\n".join(re.sub(r"(?<=\S) {2,}", "  ", line) for line in text.splitlines())


def test_training_loop_without_zero_grad_snapshot(ip: Any) -> None:
    ip.run_cell("import torch\nfrom torch import nn\n" + MLP)
    r = collect(ip, LOOP.format(zero=""))
    assert r.loop is not None and r.loop.steps == 20 and r.loop.loop_line == 2 and r.loop.line == 4
    assert r.loop.optimizers == ("opt",) and r.loop.optimizer_steps == 20
    assert len(r.loop.losses) == 20 and r.loop.detailed == len(r.calls) == 3
    assert set(r.loop.accumulated) == {"model.0.weight", "model.0.bias", "model.2.weight", "model.2.bias"}
    (note,) = r.accumulated
    assert note.message.startswith("4 parameters accumulated over 19 steps: `opt.zero_grad()` missing in the "
                                   "loop at line 2.")
    lines = _masked(r.to_text()).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Training loop"))
    assert lines[start:start + 6] == [
        "Training loop: # backward() calls on loss (line #, in the loop at line #); opt stepped # times",
        "  <spark>  loss # → # (min # at step #)",
        "Gradient flow: each layer's gradient norm, first → last of # sampled steps:",
        "  model.#  # → #  <spark>  update/weight #",
        "  model.#  # → #  <spark>  update/weight #",
        "The first # of # backward() calls are kept in full in the report (-o NAME: NAME.calls).",
    ]
    assert r.loop.flow is not None and all(layer.flag == "" for layer in r.loop.flow.layers)
    assert all(layer.norms[-1] > layer.norms[0] for layer in r.loop.flow.layers)  # accumulating: it only grows


def test_training_loop_with_zero_grad_has_no_warning(ip: Any) -> None:
    ip.run_cell("import torch\nfrom torch import nn\n" + MLP)
    r = collect(ip, LOOP.format(zero="    opt.zero_grad()\n"))
    assert r.loop is not None and not r.accumulated and r.loop.accumulated == ()
    assert r.loop.losses[-1] < r.loop.losses[0]
    assert r.loop.flow is not None and all(0 < layer.ratios[-1] < 1 for layer in r.loop.flow.layers)


def test_a_nan_in_a_loop_is_flagged_per_layer(ip: Any) -> None:
    ip.run_cell("import torch\nfrom torch import nn\n" + MLP)
    body = ("for step in range(6):\n    opt.zero_grad()\n    out = model(x)\n"
            "    loss = (out - t).pow(2).mean() + (out.mean() - step).sqrt()\n    loss.backward()\n    opt.step()")
    r = collect(ip, body)
    assert r.loop is not None and r.loop.flow is not None
    assert {layer.flag for layer in r.loop.flow.layers} == {"non-finite"}
    assert any(n.kind == "nonfinite" for n in r.notes)
    nan = next(n for n in r.notes if n.kind == "nonfinite")
    assert "SqrtBackward0" in nan.message or "PowBackward0" in nan.message

"""%%autograd and %autograd through a real in-process IPython shell."""

from __future__ import annotations

import gc
import json
import weakref
from typing import Any

import pytest
import torch

from torchmagic.autograd.report import AutogradReport

MLP = """torch.manual_seed(0)
model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
x = torch.randn(8, 3); t = torch.randn(8, 1)
for step in range(3):
    opt.zero_grad()
    loss = ((model(x) - t) ** 2).mean()
    loss.backward()
    opt.step()
"""


def run(ip: Any, cell: str, line: str = "") -> AutogradReport:
    ip.run_cell("import torch\nfrom torch import nn")
    res = ip.run_cell(f"%%autograd -o _r {line}\n{cell}")
    assert res.error_in_exec is None, res.error_in_exec
    report = ip.user_ns.pop("_r")
    assert isinstance(report, AutogradReport)
    json.dumps(report.to_dict())
    return report


def test_simple_graph_and_backward(ip: Any, capture: Any) -> None:
    with capture() as cap:
        r = run(ip, "w = torch.tensor([1., 2.], requires_grad=True)\nloss = (w * 3).sum()\nloss.backward()")
    assert r.graph is not None
    labels = sorted(n.label for n in r.graph.nodes)
    assert labels == ["MulBackward0", "SumBackward0", "constant 3", "w"]
    (call,) = r.calls
    assert call.root == "loss" and call.line == 4 and call.source == "loss.backward()"
    (leaf,) = call.leaves
    assert (leaf.name, leaf.before.text, leaf.after.text, leaf.accumulated) == ("w", "None", "[3, 3]", False)
    assert "SumBackward0" in cap.stdout and "w" in cap.stdout  # terminal rich output
    assert torch.equal(ip.user_ns["w"].grad, torch.tensor([3.0, 3.0]))


def test_last_expression_is_returned(ip: Any) -> None:
    ip.run_cell("import torch")
    res = ip.run_cell("%%autograd\nw = torch.ones(2, requires_grad=True)\n(w * 2).sum()")
    assert res.error_in_exec is None
    assert isinstance(res.result, torch.Tensor) and res.result.item() == 4.0


def test_accumulation_across_two_runs_of_the_same_cell(ip: Any) -> None:
    ip.run_cell("import torch\nw = torch.tensor([1., 2.], requires_grad=True)")
    cell = "loss = (w * w).sum()\nloss.backward()"
    first = run(ip, cell)
    assert not first.accumulated
    second = run(ip, cell)
    (note,) = second.accumulated
    assert "w.grad accumulated" in note.message
    assert "[2, 4]" in note.message and "[4, 8]" in note.message  # both values
    assert "previous run of this cell" in note.message
    assert "zero_grad()" in note.fix and "w.grad = None" in note.fix
    assert second.calls[0].leaves[0].accumulated


@pytest.mark.parametrize(
    "zeroing",
    [
        "opt.zero_grad()",
        "opt.zero_grad(set_to_none=False)",
        "model.zero_grad()",
        "model.weight.grad = None; model.bias.grad = None",
        "model.weight.grad.zero_(); model.bias.grad.zero_()",
    ],
)
def test_every_zeroing_form_is_recognised(ip: Any, zeroing: str) -> None:
    ip.run_cell(
        "import torch\nfrom torch import nn\nmodel = nn.Linear(2, 1)\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.1)\nx = torch.randn(4, 2)"
    )
    first = run(ip, "model(x).sum().backward()")
    assert not first.accumulated
    zeroed = run(ip, f"{zeroing}\nmodel(x).sum().backward()")
    assert not zeroed.accumulated, zeroed.notes
    assert all(not leaf.accumulated for leaf in zeroed.calls[0].leaves)
    again = run(ip, "model(x).sum().backward()")  # no zeroing: now it accumulates
    assert {n.subject for n in again.accumulated} == {"model.weight", "model.bias"}


def test_mlp_with_sgd_over_several_steps(ip: Any) -> None:
    r = run(ip, MLP)
    assert r.calls_total == 3 and len(r.calls) == 3
    assert not r.accumulated  # zero_grad every step
    assert r.graph is not None
    leaves = {n.label for n in r.graph.leaves()}
    assert leaves == {"model.0.weight", "model.0.bias", "model.2.weight", "model.2.bias"}
    assert {n.label for n in r.graph.nodes if n.kind == "const"} >= {"x"}
    assert all(call.root == "loss" for call in r.calls)
    # The optimizer's own no_grad updates are not reported as untracked user code.
    assert r.untracked == []


def test_gradients_are_bit_for_bit_those_of_a_plain_run(ip: Any) -> None:
    ip.run_cell("import torch\nfrom torch import nn")
    ip.run_cell(MLP)
    plain = {k: (v.detach().clone(), v.grad.clone()) for k, v in ip.user_ns["model"].named_parameters()}
    run(ip, MLP)
    watched = dict(ip.user_ns["model"].named_parameters())
    for k, (value, grad) in plain.items():
        assert torch.equal(watched[k].detach(), value)
        assert torch.equal(watched[k].grad, grad)


def test_hooks_are_removed_after_the_cell(ip: Any) -> None:
    r = run(ip, "w = torch.ones(3, requires_grad=True)\nv = torch.ones(3, requires_grad=True)\n"
                "(w * v).sum().backward()")
    assert r.calls
    for name in ("w", "v"):
        hooks = ip.user_ns[name]._post_accumulate_grad_hooks
        assert not hooks


def test_hooks_are_removed_when_backward_fails(ip: Any) -> None:
    ip.run_cell("import torch")
    res = ip.run_cell(
        "%%autograd\nw = torch.ones(3, requires_grad=True)\ny = (w.exp()).sum()\n"
        "y.backward()\ny.backward()"
    )
    assert isinstance(res.error_in_exec, RuntimeError)
    assert not ip.user_ns["w"]._post_accumulate_grad_hooks


def test_nothing_is_kept_alive(ip: Any) -> None:
    r = run(
        ip,
        "w = torch.randn(50, requires_grad=True)\nc = torch.randn(50)\n"
        "h = w.sigmoid()\nloss = (h * c).sum()\nloss.backward(retain_graph=True)",
        line="--jacobian",
    )
    assert r.graph is not None and r.calls
    # `w` is referenced by its AccumulateGrad node, so if torchmagic kept any grad_fn of this
    # graph, `w` would stay alive; `c` is a tensor MulBackward0 saved; `loss` is a backward root.
    refs = {k: weakref.ref(ip.user_ns[k]) for k in ("w", "c", "h", "loss")}
    grad_ref = weakref.ref(ip.user_ns["w"].grad)
    for k in refs:
        del ip.user_ns[k]
    ip.run_cell("pass")  # flush IPython's _/__ history of results
    gc.collect()
    assert all(ref() is None for ref in refs.values()), [k for k, v in refs.items() if v()]
    assert grad_ref() is None
    # The report is still whole without them.
    assert "SigmoidBackward0" in r.to_text() and r.svg.startswith("<svg")


def test_autograd_grad_retain_graph_and_nonscalar(ip: Any) -> None:
    r = run(ip, "a = torch.tensor([1., 2.], requires_grad=True)\nb = (a ** 3).sum()\n"
                "(ga,) = torch.autograd.grad(b, a, retain_graph=True)\nb.backward()")
    grad_call, back = r.calls
    assert grad_call.kind == "torch.autograd.grad" and grad_call.results == (("a", "[3, 12]"),)
    assert grad_call.leaves == ()  # autograd.grad never touches .grad
    assert grad_call.retain_graph and back.leaves[0].after.text == "[3, 12]"
    r2 = run(ip, "a = torch.tensor([1., 2.], requires_grad=True)\ny = a * a\n"
                 "y.backward(gradient=torch.tensor([1., 0.5]))")
    (call,) = r2.calls
    assert call.gradient == "[1, 0.5]" and call.root_shape == (2,)
    assert call.leaves[0].after.text == "[2, 2]"


def test_retain_graph_twice_accumulates_within_the_cell(ip: Any) -> None:
    r = run(ip, "a = torch.tensor([1., 2.], requires_grad=True)\nb = (a * a).sum()\n"
                "b.backward(retain_graph=True)\nb.backward()")
    assert len(r.calls) == 2 and r.calls[0].retain_graph
    (note,) = r.accumulated
    assert "line 4 of this cell" in note.message and "[4, 8]" in note.message


def test_complex_and_half_precision(ip: Any) -> None:
    r = run(ip, "c = torch.tensor([1+1j, 2-1j], requires_grad=True)\nr = (c * c.conj()).real.sum()\n"
                "r.backward()")
    assert r.calls[0].leaves[0].after.text == "[2+2j, 4-2j]"
    assert r.calls[0].leaves[0].dtype == "complex64"
    h = run(ip, "p16 = torch.tensor([1., 2.], dtype=torch.float16, requires_grad=True)\n"
                "o16 = (p16 * p16).sum()\no16.backward()", line="--jacobian")
    assert h.calls[0].leaves[0].after.text == "[2, 4]" and h.calls[0].root_dtype == "float16"
    assert h.jacobians and h.jacobians[0].matches is True


def test_tensors_that_never_required_grad(ip: Any, capture: Any) -> None:
    with capture() as cap:
        r = run(ip, "p = torch.ones(3)\nq = p * 2")
    assert r.graph is None and not r.calls
    assert "Nothing to show" in r.nothing and "requires_grad=True" in r.nothing
    assert "Nothing to show" in cap.stdout
    line = run(ip, "pass")
    assert "Nothing to show" in line.nothing


def test_no_grad_inference_mode_detach_and_cut(ip: Any) -> None:
    r = run(
        ip,
        "w = torch.ones(3, requires_grad=True)\nwith torch.no_grad():\n    z = w * 2\n"
        "with torch.inference_mode():\n    i = w + 1\nh = (w * 2).detach()\ny = (h * w).sum()\ny.backward()",
    )
    kinds = {(u.kind, u.line, u.output) for u in r.untracked}
    assert ("no_grad", 4, "z") in kinds and ("inference_mode", 6, "i") in kinds
    assert any(u.kind == "detach" and u.line == 7 and u.output == "h" for u in r.untracked)
    assert r.graph is not None
    cut = [n for n in r.graph.nodes if n.kind == "const" and n.label.startswith("✂")]
    assert cut and "graph cut" in cut[0].note


def test_data_inplace_after_save_warns(ip: Any) -> None:
    r = run(ip, "w = torch.tensor([1., 2.], requires_grad=True)\ny = (w * w).sum()\n"
                "w.data.mul_(2)\ny.backward()")
    (note,) = [n for n in r.notes if n.kind == "data-inplace"]
    assert "w.data was modified in place" in note.message and "MulBackward0" in note.message
    assert "silently" in note.message and ".detach()" in note.fix
    assert any(u.kind == "data" and u.line == 4 for u in r.untracked)
    # .data before any graph saved w is harmless: no warning.
    r2 = run(ip, "w = torch.tensor([1., 2.], requires_grad=True)\nw.data.mul_(2)\ny = (w * w).sum()\ny.backward()")
    assert not [n for n in r2.notes if n.kind == "data-inplace"]


def test_second_backward_error_is_explained_and_still_fails(ip: Any, capture: Any) -> None:
    ip.run_cell("import torch")
    with capture() as cap:
        res = ip.run_cell(
            "%%autograd -o r\nw = torch.ones(2, requires_grad=True)\nloss = w.exp().sum()\n"
            "loss.backward()\nloss.backward()"
        )
    assert isinstance(res.error_in_exec, RuntimeError)
    assert "second time" in str(res.error_in_exec)
    r = ip.user_ns["r"]
    assert r.failed and r.explanation is not None and r.explanation.kind == "second-backward"
    assert "`loss`" in r.explanation.plain and "retain_graph=True" in r.explanation.fix
    assert "(for ExpBackward0)" in r.explanation.plain  # the op whose saved result is gone
    assert "retain_graph=True" in cap.stdout


def test_inplace_error_names_the_tensor(ip: Any) -> None:
    ip.run_cell("import torch")
    res = ip.run_cell(
        "%%autograd -o r\na = torch.tensor([1., 2.], requires_grad=True)\nh = a.exp()\n"
        "s = h.sum() * 1\nh += 1\ns.backward()"
    )
    assert isinstance(res.error_in_exec, RuntimeError)
    ex = ip.user_ns["r"].explanation
    assert ex.kind == "inplace" and ex.tensors == ("h",) and "`h`" in ex.plain


def test_user_errors_keep_their_type(ip: Any) -> None:
    ip.run_cell("import torch")
    res = ip.run_cell("%%autograd\nw = torch.ones(2, requires_grad=True)\nraise KeyError('mine')")
    assert isinstance(res.error_in_exec, KeyError)


def test_line_form(ip: Any, capture: Any) -> None:
    ip.run_cell("import torch\nfrom torch import nn\nmodel = nn.Sequential(nn.Linear(2, 2))\n"
                "out = model(torch.ones(1, 2)).sum()\nout.backward(retain_graph=True)")
    with capture() as cap:
        ip.run_line_magic("autograd", "-o r out")
    r = ip.user_ns["r"]
    assert r.title == "%autograd out"
    assert {name for name, _ in r.leaves} == {"model.0.weight", "model.0.bias"}
    assert all(grad != "None" for _, grad in r.leaves)
    assert "AddmmBackward0" in cap.stdout
    ip.run_line_magic("autograd", "-o r2 torch.ones(2)")
    assert "does not require grad" in ip.user_ns["r2"].nothing


def test_line_form_bad_input(ip: Any) -> None:
    from IPython.core.error import UsageError

    with pytest.raises(UsageError):
        ip.run_line_magic("autograd", "")
    with pytest.raises(UsageError):
        ip.run_line_magic("autograd", "a b")
    with pytest.raises(UsageError, match=r"%autograd: name .undefined_name_xyz. is not defined"):
        ip.run_line_magic("autograd", "undefined_name_xyz")


def test_big_chain_is_collapsed_and_can_be_drawn_in_full(ip: Any) -> None:
    cell = ("layers = []\nfor _ in range(60):\n    layers += [nn.Linear(4, 4), nn.Tanh()]\n"
            "net = nn.Sequential(*layers)\nout = net(torch.randn(2, 4)).sum()")
    r = run(ip, cell)
    assert r.graph is not None and any(n.kind == "collapsed" for n in r.graph.nodes)
    assert r.graph.total_nodes > 250 and len(r.graph.nodes) < 40
    full = run(ip, cell, line="--no-collapse")
    assert full.graph is not None and len(full.graph.nodes) == full.graph.total_nodes


def test_node_cap_message(ip: Any, options: Any) -> None:
    with options(autograd_max_nodes=20):
        r = run(ip, "x = torch.ones(1, requires_grad=True)\ny = x\nfor _ in range(40):\n    y = y * 1.5")
    assert r.graph is not None and r.graph.truncated > 0
    assert "cap" in r.to_text()


def test_max_calls_still_detects_accumulation(ip: Any) -> None:
    r = run(ip, "w = torch.ones(2, requires_grad=True)\nfor _ in range(15):\n    (w * 2).sum().backward()")
    assert r.calls_total == 15 and len(r.calls) == 3
    (note,) = r.accumulated
    assert note.count == 14
    assert note.message.startswith("1 parameter accumulated over 14 steps: `w.grad = None` missing in the loop at line 3")
    assert r.loop is not None and r.loop.detailed == 3 and r.loop.accumulated == ("w",)
    text = " ".join(r.to_text().split())
    assert "The first 3 of 15 backward() calls are kept in full in the report" in text
    assert ".grad before" not in text  # one summary, not one table per call
    html = r.to_html()
    assert "The first 3 of 15 backward() calls in detail" in html and html.count("#3 backward on") == 1


def test_internal_failure_never_changes_the_users_run(ip: Any, monkeypatch: Any) -> None:
    import torchmagic.autograd.backward as watcher
    import torchmagic.autograd.session as session

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("boom")

    monkeypatch.setattr(watcher, "walk", broken)
    r = run(ip, "w = torch.ones(2, requires_grad=True)\n(w * 5).sum().backward()")
    assert torch.equal(ip.user_ns["w"].grad, torch.tensor([5.0, 5.0]))
    assert any("could not record backward call #1" in n.message for n in r.notes)
    monkeypatch.setattr(session.AutogradSession, "report", broken)
    ip.run_cell("import torch")
    res = ip.run_cell("%%autograd\nv = torch.ones(2, requires_grad=True)\n(v * 2).sum().backward()\n7")
    assert res.error_in_exec is None and res.result == 7
    assert torch.equal(ip.user_ns["v"].grad, torch.tensor([2.0, 2.0]))


def test_ops_remember_the_gradient_that_reached_them(ip: Any, monkeypatch: Any) -> None:
    r = run(ip, "w = torch.tensor([1., 2.], requires_grad=True)\ny = w * w\n"
                "loss = (y * torch.tensor([1., 10.])).sum()\nloss.backward(retain_graph=True)")
    assert r.graph is not None
    ops = {n.names[0]: n for n in r.graph.nodes if n.kind == "op" and n.names}
    assert ops["y"].grad == "[1, 10]"  # dloss/dy
    assert ops["loss"].grad == "1"
    assert any("gradient w.r.t. its output (last backward): [1, 10]" in line for line in ops["y"].details())
    assert "[1, 10]" in r.svg
    # The node hooks are gone: a plain backward after the cell calls none of our code.
    import torchmagic.autograd.backward as watcher

    calls: list[Any] = []
    monkeypatch.setattr(watcher, "summarize", lambda *a, **k: calls.append(a))
    ip.user_ns["loss"].backward()
    assert calls == []
    assert torch.equal(ip.user_ns["w"].grad, torch.tensor([4.0, 80.0]))


def test_help_and_options_are_documented(ip: Any, capture: Any) -> None:
    magic = ip.find_cell_magic("autograd")
    doc = magic.__doc__ or ""
    assert "%%autograd" in doc and "%autograd loss" in doc and "--jacobian" in doc and "--expand" in doc
    from torchmagic.magics import TorchMagics

    traits = TorchMagics.class_traits(config=True)
    for name in ("autograd_max_nodes", "autograd_collapse", "autograd_collapse_above",
                 "autograd_min_repeats", "autograd_value_elements", "autograd_max_calls",
                 "jacobian_max_elements", "autograd_fold", "autograd_fold_above", "autograd_fold_boxes"):
        assert name in traits and traits[name].help and name in doc, name
    from IPython.core.error import UsageError

    with pytest.raises(UsageError):
        ip.run_cell_magic("autograd", "--bogus", "pass")
    with pytest.raises(UsageError):
        ip.run_cell_magic("autograd", "-o 1x", "ran_anyway_xyz = 1")
    assert "ran_anyway_xyz" not in ip.user_ns  # rejected before the cell ran


def test_modules_option(ip: Any) -> None:
    r = run(ip, MLP, line="--modules")
    assert r.graph is not None
    assert not r.graph.leaves()
    assert {n.label for n in r.graph.nodes if "·" in n.label} == {
        "AddmmBackward0 · model.0", "AddmmBackward0 · model.2"}


def test_outputs_inside_lists_and_dicts(ip: Any) -> None:
    r = run(ip, "w = torch.ones(2, requires_grad=True)\nouts = [w * 2, w.exp()]\nd = {'h': w.sin()}")
    assert r.graph is not None
    named = {name for n in r.graph.nodes for name in n.names}
    assert {"outs[0]", "outs[1]", "d['h']", "w"} <= named
    assert len(r.graph.roots) == 3


def test_data_assignment_after_save_warns(ip: Any) -> None:
    r = run(ip, "w = torch.tensor([1., 2.], requires_grad=True)\ny = (w * w).sum()\n"
                "w.data = torch.tensor([5., 5.])\ny.backward()")
    (note,) = [n for n in r.notes if n.kind == "data-inplace"]
    assert "w.data was replaced (.data = ..., line 4)" in note.message
    assert "MulBackward0" in note.message


def test_leaf_without_ops_and_custom_functions(ip: Any) -> None:
    r = run(ip, "w = torch.ones(2, requires_grad=True)")
    assert r.nothing.startswith("Nothing to draw yet: w requires grad")
    r2 = run(ip, """class Sq(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * g
w = torch.ones(2, requires_grad=True)
Sq.apply(w).sum().backward()""")
    assert r2.untracked == []  # a custom Function's forward runs without grad by design
    assert r2.graph is not None and any(n.label == "SqBackward" for n in r2.graph.nodes)
    assert r2.calls[0].leaves[0].after.text == "[2, 2]"


def test_manual_sgd_with_data_after_backward_does_not_warn(ip: Any) -> None:
    r = run(ip, "model = nn.Linear(3, 1)\nx = torch.randn(4, 3)\nfor _ in range(3):\n"
                "    model.zero_grad()\n    loss = model(x).pow(2).mean()\n    loss.backward()\n"
                "    for p in model.parameters():\n        p.data -= 0.1 * p.grad")
    assert not [n for n in r.notes if n.kind == "data-inplace"]  # the graph was already used
    assert any(u.kind == "data" for u in r.untracked)


def test_traceback_is_the_plain_one(ip: Any) -> None:
    """No torchmagic frame, no mode dispatch (overrides.py), Tensor.backward once, at its real line."""
    ip.run_cell("import torch")
    res = ip.run_cell("%%autograd\nw = torch.ones(2, requires_grad=True)\ny = w.exp().sum()\ny.backward()\ny.backward()")
    err = res.error_in_exec
    assert isinstance(err, RuntimeError) and "second time" in str(err)
    frames = []
    tb = err.__traceback__
    while tb is not None:
        frames.append((tb.tb_frame.f_code.co_filename, tb.tb_frame.f_code.co_name))
        tb = tb.tb_next
    cell_at = max(i for i, (f, _) in enumerate(frames) if f in ip.compile._filename_map)  # the magic's body
    names = [f.rsplit("/", 1)[-1] + ":" + n for f, n in frames[cell_at:]]
    assert not any(n.startswith("overrides.py") for n in names), names
    assert names.count("_tensor.py:backward") == 1, names
    assert not any("/torchmagic/" in f for f, _ in frames[cell_at:]), names


# -- issue 14: reports that tell the whole truth ------------------------------------------
def test_sqrt_at_zero_gives_a_non_finite_status_and_its_origin(ip: Any) -> None:
    r = run(ip, "w = torch.tensor([0., 4., 16.], requires_grad=True)\nloss = w.sqrt().sum()\nloss.backward()")
    (leaf,) = r.calls[0].leaves
    assert leaf.status == "non-finite" and leaf.after.text == "[inf, 0.25, 0.125]" and leaf.after.inf == 1
    (note,) = [n for n in r.notes if n.kind == "nonfinite"]
    assert "w: 1 inf" in note.message and "It appeared in SqrtBackward0" in note.message
    assert r.graph is not None
    flags = {n.label: n.flag for n in r.graph.nodes}
    assert flags["SqrtBackward0"] == "origin" and flags["SumBackward0"] == ""
    assert "⚠ non-finite" in r.to_text() and "non-finite gradient" in r.to_html()


def test_no_grad_then_a_graph_is_not_called_no_graph(ip: Any) -> None:
    ip.run_cell("import torch\nx = torch.tensor([1., 2., 3.], requires_grad=True)")
    r = run(ip, "with torch.no_grad():\n    y = x * 2\nz = x ** 2")
    assert r.graph is not None and "PowBackward0" in {n.label for n in r.graph.nodes} and not r.nothing
    r = run(ip, "with torch.no_grad():\n    y = x * 2\nx ** 2")  # the graph is the unnamed last value
    assert r.graph is None and "built an autograd graph but bound no result to a new name" in r.nothing
    assert "built no autograd graph" not in r.nothing
    r = run(ip, "with torch.no_grad():\n    y = x * 2")
    assert "the cell built no autograd graph" in r.nothing  # true here


def test_reading_data_is_not_a_change_autograd_misses(ip: Any, capture: Any) -> None:
    with capture():
        r = run(ip, "x = torch.tensor([1., 2.], requires_grad=True)\nprint(x.data)\nv = x.data.sum().item()\n"
                    "y = (x * 2).sum()")
    assert r.untracked == [] and not r.notes
    r = run(ip, "x = torch.tensor([1., 2.], requires_grad=True)\nx.data.mul_(2)\nx.data = torch.zeros(2)")
    assert [(u.kind, u.line, u.op) for u in r.untracked] == [("data", 3, "mul_"), ("data", 4, ".data =")]


def test_a_raising_backward_shows_what_it_added_first(ip: Any) -> None:
    ip.run_cell("import torch")
    res = ip.run_cell("%%autograd -o r\nx1 = torch.tensor(1., requires_grad=True)\n"
                      "x2 = torch.tensor(1., requires_grad=True)\ny = x2.exp() + x1\ny.backward()\ny.backward()")
    assert isinstance(res.error_in_exec, RuntimeError)
    assert ip.user_ns["x1"].grad.item() == 2.0  # plain torch added before raising, so did we
    r = ip.user_ns["r"]
    second = r.calls[1]
    assert second.error == "RuntimeError"
    (leaf,) = second.leaves
    assert (leaf.name, leaf.before.text, leaf.added.text, leaf.after.text) == ("x1", "1", "1", "2")
    assert leaf.status == "accumulated"
    (partial,) = [n for n in r.notes if n.kind == "partial"]
    assert "raised after it had already added to 1 gradient: x1.grad 1 → 2 (+1)" in partial.message


def test_the_error_text_appears_once(ip: Any, capture: Any) -> None:
    ip.run_cell("import torch")
    with capture() as cap:
        res = ip.run_cell("%%autograd -o r\nv = torch.ones(2, requires_grad=True)\ny = v.exp().sum()\n"
                          "y.backward()\ny.backward()")
    message = str(res.error_in_exec).splitlines()[0]
    r = ip.user_ns["r"]
    for view in (r.to_text(), r.to_html()):
        assert "Trying to backward through the graph a second time" not in view
        assert "raised RuntimeError (the message is in the traceback below)" in view
    assert message.startswith("Trying to backward through the graph a second time")
    assert (cap.stdout + cap.stderr).count("Trying to backward") == 1  # the traceback, once


def test_in_a_large_graph_a_non_finite_gradient_is_traced_to_its_module(ip: Any) -> None:
    ip.run_cell(
        "import torch\nfrom torch import nn\n"
        "class Root(nn.Module):\n    def forward(self, x):\n        return (x * 0).sqrt() + x\n"
        "deep = nn.Sequential(*[nn.Sequential(nn.Linear(3, 3), nn.Tanh()) for _ in range(30)], Root(),"
        " nn.Linear(3, 1))"
    )
    r = run(ip, "loss = deep(torch.ones(2, 3)).sum()\nloss.backward()")
    assert r.graph is not None and r.graph.total_nodes > 100
    (note,) = [n for n in r.notes if n.kind == "nonfinite"]
    assert "It appeared inside deep.30:" in note.message, note.message
    assert "deep.29.0.weight: 9 NaN" in note.message and " and 57 more" in note.message  # 60 leaves, 3 named

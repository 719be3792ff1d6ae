"""What the recorder sees: ops, names, views, in-place, -1, promotion, filtering, caps."""

from __future__ import annotations

import os

import pytest

from tests.tracing import rows, trace


def test_rows_have_line_source_expression_and_shapes(ip, capture):
    rep = trace(ip, capture, "x = torch.ones(4, 3)\nw = torch.ones(5, 3)\ny = (x + 1) @ w.T")
    add, = rows(rep, "add")
    mm, = rows(rep, "matmul")
    assert add.line == 4 and mm.line == 4  # line 1 is %%tensorinfo, as in the notebook
    assert add.source == mm.source == "y = (x + 1) @ w.T"
    assert add.expression == "x + 1"
    assert mm.expression == "(x + 1) @ w.T"
    v = mm.variants[0]
    assert [(o.label, o.shape) for o in v.inputs] == [("x + 1", (4, 3)), ("w.T", (3, 5))]
    assert (v.outputs[0].label, v.outputs[0].shape, v.outputs[0].named) == ("y", (4, 5), True)
    assert v.inputs[0].dtype == "float32" and v.inputs[0].device == "cpu"


def test_names_from_before_the_cell_and_module_parameters(ip, capture):
    ip.run_cell("import torch\nlin = torch.nn.Linear(3, 2)\nbatch = torch.ones(4, 3)")
    rep = trace(ip, capture, "h = lin(batch)")
    lin, = rows(rep, "linear")
    assert lin.via == "lin(batch)"
    labels = [o.label for o in lin.variants[0].inputs]
    assert labels == ["batch", "lin.weight", "lin.bias"]
    assert lin.variants[0].outputs[0].label == "h"


def test_library_call_inputs_named_by_the_call_arguments(ip, capture):
    ip.run_cell("import torch\nlin = torch.nn.Linear(3, 2)")
    rep = trace(ip, capture, "x = torch.ones(4, 3)\nh = lin(x)\nx = torch.zeros(1)")  # x rebound after
    lin, = rows(rep, "linear")
    assert lin.variants[0].inputs[0].label == "x"


@pytest.mark.parametrize(
    "expr, effect",
    [
        ("x.view(6)", "view"),
        ("x.reshape(3, 2)", "view"),
        ("x.T.reshape(6)", "new"),  # reshape of a transposed tensor must copy
        ("x[:, 1]", "view"),
        ("x[[0, 1]]", "new"),  # advanced indexing copies
        ("x.detach()", "view"),
        ("x.unsqueeze(0)", "view"),
        ("x.contiguous()", "same"),
        ("x.clone()", "new"),
        ("x * 2", "new"),
        ("x.add_(1)", "in-place"),
    ],
)
def test_view_copy_inplace(ip, capture, expr, effect):
    rep = trace(ip, capture, f"x = torch.ones(2, 3)\nr = {expr}")
    last = rep.rows[-1]
    assert last.variants[0].effect == effect, (expr, [r.op for r in rep.rows])


def test_data_and_setitem_and_augassign(ip, capture):
    rep = trace(ip, capture, "x = torch.ones(2, 3)\nd = x.data\nx[0] = 5\nx += 1")
    assert rows(rep, "data")[0].variants[0].effect == "view"
    assert rows(rep, "__setitem__")[0].variants[0].effect == "in-place"
    aug = [r for r in rep.rows if r.line == 5]
    assert aug and aug[0].variants[0].effect == "in-place"


def test_minus_one_resolved(ip, capture):
    rep = trace(ip, capture, "x = torch.ones(4, 6)\ny = x.view(-1, 3)\nz = x.reshape(2, -1, 4)")
    assert "-1 → 8" in rows(rep, "view")[0].variants[0].notes
    assert "-1 → 3" in rows(rep, "reshape")[0].variants[0].notes


def test_inplace_on_saved_tensor_warns_and_backward_really_fails(ip, capture):
    body = "a = torch.ones(3, requires_grad=True)\ns = (a * 2).sigmoid()\ns.mul_(2)"
    rep = trace(ip, capture, body)
    mul_, = rows(rep, "mul_")
    assert mul_.warnings and "SigmoidBackward0" in mul_.warnings[0] and mul_.warnings[0].startswith("s ")
    with capture():
        res = ip.run_cell("s.sum().backward()")
    assert "modified by an inplace operation" in str(res.error_in_exec)


def test_inplace_on_saved_input_warns(ip, capture):
    rep = trace(ip, capture, "a = torch.ones(3, requires_grad=True) * 1\nb = torch.ones(3)\nz = a * b\nb.add_(1)")
    assert rows(rep, "add_")[0].warnings  # mul saved b (it needs b for a's gradient)


def test_no_warning_after_backward_freed_the_graph(ip, capture):
    body = (
        "w = torch.ones(3, requires_grad=True)\n"
        "loss = (w * w).sum()\n"
        "loss.backward()\n"
        "with torch.no_grad():\n"
        "    w -= 0.1 * w.grad\n"
    )
    rep = trace(ip, capture, body)
    assert not any(r.warnings for r in rep.rows)
    assert not any(r.op == "_set_grad_enabled" for r in rep.rows)


def test_no_warning_for_inplace_on_unsaved_tensor(ip, capture):
    rep = trace(ip, capture, "a = torch.ones(3, requires_grad=True)\nc = a + 1\nc.add_(1)")
    assert not rows(rep, "add_")[0].warnings  # add saves nothing


def test_dtype_promotion_noted(ip, capture):
    rep = trace(
        ip,
        capture,
        "a = torch.arange(3) + 0.5\nb = torch.ones(2, dtype=torch.int32) + torch.ones(2, dtype=torch.int64)\nc = torch.ones(2) * 2",
    )
    adds = rows(rep, "add")
    assert "int64 + float → float32" in adds[0].variants[0].notes
    assert "int32 + int64 → int64" in adds[1].variants[0].notes
    assert not rows(rep, "mul")[0].variants[0].notes  # float32 * int stays float32: nothing to say


def test_broadcast_alignment_recorded(ip, capture):
    rep = trace(ip, capture, "a = torch.ones(1, 2)\nb = torch.ones(3, 1)\nc = a + b\nd = a + a")
    add = rows(rep, "add")
    bc = add[0].variants[0].broadcast
    assert bc is not None and bc.result == (3, 2)
    assert [o.label for o in bc.operands] == ["a", "b"]
    assert add[1].variants[0].broadcast is None  # same shapes: no diagram


def test_devices_recorded(ip, capture):
    rep = trace(ip, capture, "m = torch.ones(2, 3, device='meta')\nn = m * 2")
    mul, = rows(rep, "mul")
    assert mul.variants[0].inputs[0].device == "meta"
    assert mul.variants[0].outputs[0].device == "meta"


def test_display_len_iteration_properties_not_recorded(ip, capture):
    body = (
        "x = torch.ones(2, 3)\n"
        "print(x)\n"
        "repr(x); str(x); f'{x}'; len(x)\n"
        "for row in x:\n    pass\n"
        "s = x.shape; g = x.grad; d = x.dtype; r = x.requires_grad\n"
        "x\n"
    )
    rep = trace(ip, capture, body)
    assert [r.op for r in rep.rows] == ["ones"]


def test_torchmagic_own_ops_not_recorded(ip, capture):
    body = (
        "import ast, sys\n"
        "from torchmagic.errors.frames import _safe_eval\n"
        "x = torch.ones(2, 3)\n"
        "t = _safe_eval(ast.parse('x.T', mode='eval').body, sys._getframe())\n"
    )
    rep = trace(ip, capture, body)
    assert [r.op for r in rep.rows] == ["ones"]
    assert tuple(ip.user_ns["t"].shape) == (3, 2)  # the op did run


def test_functions_defined_in_the_cell_report_their_own_lines(ip, capture):
    rep = trace(ip, capture, "def f(t):\n    return t.relu()\ny = f(torch.ones(2))")
    relu, = rows(rep, "relu")
    assert relu.line == 3 and relu.source == "return t.relu()"


def test_loop_aggregates_into_one_row(ip, capture):
    rep = trace(ip, capture, "x = torch.ones(3)\nfor i in range(100):\n    x = x * 1.0")
    mul, = rows(rep, "mul")
    assert mul.count == 100 and mul.variants[0].count == 100


def test_shapes_beyond_cap_are_counted(ip, capture, options):
    with options(trace_max_shapes=3):
        rep = trace(ip, capture, "for i in range(1, 11):\n    y = torch.ones(i) * 2")
    mul, = rows(rep, "mul")
    assert len(mul.variants) == 3 and mul.other_count == 7 and mul.count == 10


def test_rows_beyond_cap_are_counted_in_summary(ip, capture):
    body = "x = torch.ones(2)\n" + "".join(f"y{i} = x + {i}\n" for i in range(30))
    rep = trace(ip, capture, body, "--max-rows 10")
    assert len(rep.rows) == 10
    assert rep.total_ops == 31 and rep.dropped_ops == 21
    assert "21 more beyond the 10-row cap" in rep.summary()


def test_deep_nests_aten_ops_under_their_op(ip, capture):
    rep = trace(ip, capture, "a = torch.ones(2, 3)\nb = torch.ones(3, 4)\nc = (a @ b).relu()", "--deep")
    mm, = rows(rep, "matmul")
    assert any(name.startswith("aten.mm") for name, _ in mm.children)
    relu, = rows(rep, "relu")
    assert [name for name, _ in relu.children] == ["aten.relu"]


def test_without_deep_no_children(ip, capture):
    rep = trace(ip, capture, "c = torch.ones(2, 3) @ torch.ones(3, 4)")
    assert all(not r.children for r in rep.rows)


def test_annotated_source(ip, capture):
    rep = trace(ip, capture, "x = torch.ones(2, 3)\ny = x.sum(0)\n# nothing here\nz = y.long()", "--source")
    assert rep.view == "source"
    by_line = {a.line: a for a in rep.annotated}
    assert by_line[2].comment == "(2, 3) float32"  # a factory: no input dtype to compare with
    assert by_line[3].comment == "(3,)"
    assert by_line[4].comment == ""
    assert by_line[5].comment == "(3,) int64"  # dtype changed


def _rss_mib() -> float:
    with open(f"/proc/{os.getpid()}/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.slow
def test_million_ops_bounded(ip, capture):
    """10^6 recorded ops: the log stays a handful of rows and memory does not grow with it."""
    ip.run_cell("import torch\nx = torch.zeros(1)")
    before = _rss_mib()
    body = "for i in range(250_000):\n    x.add_(1)\n    y = x * 2\n    z = torch.ones(i % 7 + 1)\n    w = z.sum()\n"
    rep = trace(ip, capture, body)
    grew = _rss_mib() - before
    assert rep.total_ops == 1_000_000
    assert len(rep.rows) == 4
    assert all(len(r.variants) <= 4 for r in rep.rows)
    assert rows(rep, "ones")[0].other_count == 250_000 - sum(v.count for v in rows(rep, "ones")[0].variants)
    assert grew < 50, f"RSS grew {grew:.1f} MiB"
    assert float(ip.user_ns["x"]) == 250_000.0


def test_nan_found_where_it_starts_and_carried_to_later_rows(ip, capture):
    rep = trace(ip, capture, "x = torch.tensor([1., 0., -1., 4.])\nb = torch.log(x)\nc = b - b\nd = x * 2")
    assert rep.nan is not None
    assert rep.nan.sentence() == "line 3: torch.log(x) made 1 NaN and 1 −Inf (log of a negative number and of 0)"
    log, sub, mul = rows(rep, "log")[0], rows(rep, "sub")[0], rows(rep, "mul")[0]
    assert log.nan_origin and log.nonfinite == 1 and sub.nonfinite == 1 and not sub.nan_origin
    assert mul.nonfinite == 0
    text = rep.to_text()
    assert text.splitlines()[1].startswith("NaN/Inf line 3: torch.log(x) made 1 NaN")
    assert "NaN/Inf start here" in text and 'class="tm-error"' in rep.to_html()


def test_nan_from_before_the_cell_is_not_blamed_on_the_cell(ip, capture):
    ip.run_cell("import torch\nold = torch.tensor([float('nan'), 1.])")
    rep = trace(ip, capture, "y = old * 2")
    assert rep.nan is not None and rep.nan.came_in == ("old",)
    assert "held non-finite values already" in rep.nan.sentence()


def test_nan_in_a_training_loop_names_the_module(ip, capture):
    body = ("model = torch.nn.Linear(2, 1)\nopt = torch.optim.SGD(model.parameters(), lr=1e20)\n"
            "xb = torch.ones(4, 2)\nfor i in range(6):\n    opt.zero_grad()\n"
            "    loss = model(xb).pow(2).mean()\n    loss.backward()\n    opt.step()")
    rep = trace(ip, capture, body)
    assert rep.nan is not None and rep.nan.line in (7, 8)
    assert "overflow" in rep.nan.why or "NaN" in rep.nan.made
    assert ip.user_ns["loss"].isfinite().item() is False  # the trace changed nothing: the loss blew up as bare

"""%%tensorinfo through a real IPython shell: the cell runs exactly as it would bare."""

from __future__ import annotations

import gc
import json

import pytest
import torch
from torch.utils._python_dispatch import _get_current_dispatch_mode

MLP_CELL = """\
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
xb = torch.randn(32, 8)
yb = torch.randint(0, 2, (32,))
for step in range(3):
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(xb), yb)
    loss.backward()
    opt.step()
h = (xb @ xb.T).softmax(-1)[:, :3].reshape(-1, 1)
h.add_(1)
"""


def _snapshot(ns: dict) -> dict:
    return {
        k: v for k, v in ns.items() if not k.startswith("_") and k not in ("In", "Out", "exit", "quit", "get_ipython")
    }


def _tensor_state(ns: dict) -> dict:
    out = {}
    for k, v in _snapshot(ns).items():
        if isinstance(v, torch.Tensor):
            out[k] = v.detach().clone()
        elif isinstance(v, torch.nn.Module):
            for pn, p in v.state_dict().items():
                out[f"{k}.{pn}"] = p.clone()
    return out


def _run(ip, cell, capture):
    with capture() as cap:
        res = ip.run_cell(cell)
    return res, cap


def test_results_and_namespace_identical_to_bare(ip, capture):
    ip.run_cell("import torch")
    before = set(ip.user_ns)
    bare, _ = _run(ip, MLP_CELL, capture)
    assert bare.success
    bare_ns = _snapshot(ip.user_ns)
    bare_t = _tensor_state(ip.user_ns)
    for k in set(ip.user_ns) - before:
        del ip.user_ns[k]
    traced, _ = _run(ip, "%%tensorinfo\n" + MLP_CELL, capture)
    assert traced.success, traced.error_in_exec
    traced_ns = _snapshot(ip.user_ns)
    assert set(traced_ns) == set(bare_ns)
    traced_t = _tensor_state(ip.user_ns)
    assert set(traced_t) == set(bare_t)
    for k in bare_t:
        assert torch.equal(bare_t[k], traced_t[k]), k  # bit for bit
        assert bare_t[k].dtype == traced_t[k].dtype
    assert traced_ns["step"] == bare_ns["step"] == 2


def test_last_expression_still_displays(ip, capture):
    res, cap = _run(ip, "%%tensorinfo\nimport torch\nx = torch.ones(2)\nx.sum() + 40", capture)
    assert res.success
    assert torch.equal(res.result, torch.tensor(42.0))
    assert "%%tensorinfo" in cap.stdout  # the report was shown


def test_no_output_value_for_statement_cells(ip, capture):
    res, _ = _run(ip, "%%tensorinfo\nimport torch\nx = torch.ones(2)", capture)
    assert res.success and res.result is None


@pytest.mark.parametrize(
    "body, exc",
    [
        ("a = torch.ones(2, 3)\nb = torch.ones(4)\na + b", RuntimeError),
        ("torch.ones(2, 3) @ torch.ones(5, 4)", RuntimeError),
        ("torch.ones(2, 3).view(4, 4)", RuntimeError),
        ("raise ValueError('mine')", ValueError),
        ("torch.ones(2, 3).shape()", TypeError),
        ("undefined_name + 1", NameError),
        ("x = (", SyntaxError),
    ],
)
def test_errors_still_fail_the_cell(ip, capture, body, exc):
    ip.run_cell("import torch")
    res, _ = _run(ip, "%%tensorinfo\n" + body, capture)
    assert type(res.error_in_exec) is exc
    assert not res.success


def _clean_state() -> None:
    assert torch._C._len_torch_function_stack() == 0
    assert _get_current_dispatch_mode() is None
    assert torch.is_grad_enabled()
    assert torch.get_default_dtype() == torch.float32


@pytest.mark.parametrize("deep", ["", "--deep"])
def test_torch_state_restored_after_exception(ip, capture, deep):
    ip.run_cell("import torch")
    res, _ = _run(ip, f"%%tensorinfo {deep}\nx = torch.ones(3)\nx @ torch.ones(4)", capture)
    assert isinstance(res.error_in_exec, RuntimeError)
    _clean_state()


@pytest.mark.parametrize("deep", ["", "--deep"])
def test_torch_state_restored_after_keyboard_interrupt(ip, capture, deep):
    ip.run_cell("import torch")
    cell = (
        f"%%tensorinfo {deep}\n"
        "def boom(v):\n    raise KeyboardInterrupt\n"
        "x = torch.ones(3) * 2\n"
        "x.apply_(boom)\n"  # interrupted *inside* a torch op
    )
    res, _ = _run(ip, cell, capture)
    assert isinstance(res.error_in_exec, KeyboardInterrupt)
    _clean_state()
    res, _ = _run(ip, f"%%tensorinfo {deep}\nx = torch.ones(3)\nraise KeyboardInterrupt", capture)
    assert isinstance(res.error_in_exec, KeyboardInterrupt)
    _clean_state()
    # and the next cell runs normally, untraced
    ok, _ = _run(ip, "y = torch.ones(2) + 1", capture)
    assert ok.success


def test_out_option_and_to_dict(ip, capture):
    ip.run_cell("import torch")
    res, _ = _run(ip, "%%tensorinfo -o rep\nx = torch.ones(2, 3)\ny = x.view(3, -1)", capture)
    assert res.success
    rep = ip.user_ns["rep"]
    data = rep.to_dict()
    json.dumps(data)
    assert data["kind"] == "TraceReport"
    ops = [r["op"] for r in data["rows"]]
    assert ops == ["ones", "view"]
    view = data["rows"][1]["variants"][0]
    assert view["effect"] == "view" and "-1 → 2" in view["notes"]


def test_bad_options_are_one_line_usage_errors(ip, capture):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError):
        ip.run_cell_magic("tensorinfo", "--max-rows 0", "x = 1")
    with pytest.raises(UsageError):
        ip.run_cell_magic("tensorinfo", "-o 1bad", "x = 1")
    with pytest.raises(UsageError):
        ip.run_cell_magic("tensorinfo", "x", "x = 1")


def test_traced_loop_keeps_no_tensor_alive(ip, capture):
    ip.run_cell("import torch, weakref\nrefs = []")
    cell = (
        "%%tensorinfo -o rep\n"
        "for i in range(30):\n"
        "    big = torch.ones(512, 512)\n"
        "    out = (big * 2).sum(0)\n"
        "    refs.append(weakref.ref(big))\n"
        "    refs.append(weakref.ref(out))\n"
    )
    res, _ = _run(ip, cell, capture)
    assert res.success
    del ip.user_ns["big"], ip.user_ns["out"]
    gc.collect()
    alive = [r for r in ip.user_ns["refs"] if r() is not None]
    assert alive == []  # the report (still held as `rep`) keeps nothing alive
    assert ip.user_ns["rep"].rows[0].count == 30


def test_default_explainer_not_repeated_after_trace(ip, capture):
    ip.run_cell("import torch")
    res, cap = _run(ip, "%%tensorinfo\ntorch.ones(2, 3) @ torch.ones(5, 4)", capture)
    assert isinstance(res.error_in_exec, RuntimeError)
    assert cap.stdout.count("inner dims 3 ≠ 5") == 1
    assert "torchmagic explains" not in cap.stdout


def test_compiled_code_runs_compiled(ip, capture):
    from torch._dynamo.utils import counters

    ip.run_cell("import torch")
    counters.clear()
    cell = (
        "%%tensorinfo -o rep\n"
        "f = torch.compile(lambda t: t * 2 + 1, backend='eager')\n"
        "for i in range(4):\n"
        "    r2 = f(torch.ones(3))\n"
    )
    res, _ = _run(ip, cell, capture)
    assert res.success, res.error_in_exec
    assert torch.equal(ip.user_ns["r2"], torch.full((3,), 3.0))
    # compiled once, not retraced per call through the mode's __torch_function__
    assert counters["stats"]["unique_graphs"] == 1 and counters["frames"]["ok"] == 1
    _clean_state()

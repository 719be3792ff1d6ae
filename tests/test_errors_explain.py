"""Each error kind is explained with operand names, shapes and the clashing dims,
both by %%tensorinfo (exact operands) and by the default explainer (frames only)."""

from __future__ import annotations

import pytest

from torchmagic.errors.explain import FailedOp, explain
from torchmagic.errors.report import Operand

SETUP = (
    "import torch\n"
    "a = torch.ones(2, 3)\n"
    "b = torch.ones(4)\n"
    "w = torch.ones(4, 5)\n"
    "lin = torch.nn.Linear(5, 2)\n"
    "m = torch.ones(3, device='meta')\n"
    "c = torch.ones(3)\n"
)

# (failing code, kind, fragments the title must contain)
CASES = [
    ("a + b", "broadcast", ["a is (2, 3)", "b is (4,)", "3 ≠ 4"]),
    ("a @ w", "matmul", ["a is (2, 3)", "w is (4, 5)", "inner dims 3 ≠ 4"]),
    ("torch.matmul(a, w.T)", "matmul", ["w.T is (5, 4)", "inner dims 3 ≠ 5"]),
    ("a.view(4, 4)", "view", ["a (2, 3) has 6 elements", "(4, 4) holds 16"]),
    ("a.reshape(-1, 4)", "view", ["6 elements", "multiple of 4"]),
    ("torch.cat([a, w])", "cat", ["cat along dim 0", "a is (2, 3)", "w is (4, 5)", "dim 1: 3 ≠ 5"]),
    ("torch.stack([a, a.T])", "stack", ["a is (2, 3)", "a.T is (3, 2)", "dim 0: 2 ≠ 3"]),
    ("lin(a)", "linear", ["input a is (2, 3)", "in_features=5", "3 ≠ 5"]),
    ("c + m", "device", ["c on cpu", "m on meta"]),
]


def _run(ip, capture, code):
    ip.run_cell(SETUP)
    with capture() as cap:
        res = ip.run_cell(code)
    return res, cap


@pytest.mark.parametrize("code, kind, fragments", CASES)
def test_traced_cell_explains(ip, capture, code, kind, fragments):
    res, cap = _run(ip, capture, f"%%tensorinfo -o rep\nx = 1\ny = {code}")
    assert res.error_in_exec is not None  # the cell still fails, same exception
    rep = ip.user_ns["rep"]
    e = rep.error
    assert e is not None and e.kind == kind, (e, cap.stdout)
    for frag in fragments:
        assert frag in e.title, (frag, e.title)
    assert e.line == 3 and e.source == f"y = {code}"
    assert e.message == str(res.error_in_exec).strip().splitlines()[0]
    assert fragments[0] in cap.stdout  # shown in the terminal


@pytest.mark.parametrize("code, kind, fragments", CASES)
def test_default_explainer_explains(ip, capture, code, kind, fragments):
    res, cap = _run(ip, capture, f"x = 1\ny = {code}")
    assert res.error_in_exec is not None
    assert "torchmagic explains" in cap.stdout, cap.stdout
    text = " ".join(cap.stdout.split())
    for frag in fragments:
        assert " ".join(frag.split()) in text, (frag, cap.stdout)
    assert "line 2: y = " in text


def test_matmul_suggests_transpose():
    ops = [Operand("x", "tensor", (4, 3), "float32", "cpu"), Operand("w", "tensor", (5, 3), "float32", "cpu")]
    e = explain(
        FailedOp("matmul", ops, "x @ w"), "RuntimeError", "mat1 and mat2 shapes cannot be multiplied (4x3 and 5x3)"
    )
    assert e is not None and "inner dims 3 ≠ 5" in e.title
    assert "x @ w.T" in e.hint


def test_broadcast_explanation_carries_alignment():
    ops = [Operand("a", "tensor", (2, 3), "float32", "cpu"), Operand("b", "tensor", (4,), "float32", "cpu")]
    e = explain(FailedOp("add", ops, "a + b"), "RuntimeError",
                "The size of tensor a (3) must match the size of tensor b (4) at non-singleton dimension 1")
    assert e is not None and e.broadcast is not None
    assert e.broadcast.clashes == (1,)


def test_unrelated_error_gives_nothing():
    assert explain(FailedOp("foo", []), "ValueError", "something else") is None


def test_hint_only_errors_through_default_explainer(ip, capture):
    res, cap = _run(ip, capture, "a.shape()")
    assert isinstance(res.error_in_exec, TypeError)
    assert "`.shape` is an attribute" in cap.stdout
    res, cap = _run(ip, capture, "a.size[0]")
    assert "`.size` is a method" in cap.stdout
    res, cap = _run(ip, capture, "if a > 0:\n    pass")
    assert ".any()" in cap.stdout


def test_plain_python_errors_are_left_alone(ip, capture):
    res, cap = _run(ip, capture, "raise ValueError('mine')")
    assert isinstance(res.error_in_exec, ValueError)
    assert "torchmagic" not in cap.stdout
    res, cap = _run(ip, capture, "{}['k']")
    assert "torchmagic" not in cap.stdout


def test_default_explainer_reruns_nothing(ip, capture):
    """Calls in the failing expression are not evaluated again (only names and attributes)."""
    ip.run_cell(SETUP + "calls = []\ndef make():\n    calls.append(1)\n    return torch.ones(7)\n")
    with capture() as cap:
        res = ip.run_cell("a + make()")
    assert isinstance(res.error_in_exec, RuntimeError)
    assert ip.user_ns["calls"] == [1]
    assert "torchmagic explains" in cap.stdout and "a is (2, 3)" in cap.stdout and "3 ≠ 7" in cap.stdout


def test_explainer_can_be_turned_off(ip, capture, options):
    with options(explain_errors=False):
        res, cap = _run(ip, capture, "a + b")
    assert isinstance(res.error_in_exec, RuntimeError)
    assert "torchmagic" not in cap.stdout


def test_error_in_function_called_from_cell(ip, capture):
    res, cap = _run(ip, capture, "def f(p, q):\n    return p @ q\nf(a, w)")
    assert isinstance(res.error_in_exec, RuntimeError)
    assert "inner dims 3 ≠ 4" in cap.stdout


def test_inline_operands_get_their_shapes_from_the_message(ip, capture):
    """Issue 14: `torch.ones(2, 3) @ torch.ones(2, 3)` in a plain cell was not explained (calls are never re-run)."""
    with capture() as cap:
        res = ip.run_cell("import torch\ntorch.ones(2, 3) @ torch.ones(2, 3)")
    assert isinstance(res.error_in_exec, RuntimeError)
    text = " ".join(cap.stdout.split())
    assert "torchmagic explains" in text
    assert "matmul: torch.ones(2, 3) is (2, 3), torch.ones(2, 3) is (2, 3): inner dims 3 ≠ 2" in text


@pytest.mark.parametrize("magic", ["", "%%tensorinfo -o rep\n"])
def test_view_of_a_transpose_names_the_operand_and_says_not_contiguous(ip, capture, magic):
    """Issue 14: `o.t().view(-1)` listed "`-1`: scalar int" as the operand."""
    ip.run_cell("import torch\no = torch.ones(2, 3)")
    with capture() as cap:
        res = ip.run_cell(f"{magic}o.t().view(-1)")
    assert isinstance(res.error_in_exec, RuntimeError)
    text = " ".join(cap.stdout.split())
    assert "view: o.t() (3, 2) is not contiguous" in text
    assert "o.t(): (3, 2) float32, not contiguous" in text
    assert "-1: scalar" not in text and "`-1`" not in text
    if magic:
        assert [o.label for o in ip.user_ns["rep"].error.operands] == ["o.t()"]


def test_view_methods_are_made_again_only_from_names_and_literals(ip, capture):
    ip.run_cell("import torch\ncalls = []\ndef f():\n    calls.append(1)\n    return torch.ones(2, 3)")
    with capture():
        res = ip.run_cell("f().t().view(-1)")
    assert isinstance(res.error_in_exec, RuntimeError) and ip.user_ns["calls"] == [1]  # f() was not run again

"""--jacobian: J, v and v·J for small functions, checked against hand-computed values."""

from __future__ import annotations

from typing import Any


def _run(ip: Any, cell: str, line: str = "--jacobian") -> Any:
    ip.run_cell("import torch")
    res = ip.run_cell(f"%%autograd -o r {line}\n{cell}")
    assert res.error_in_exec is None, res.error_in_exec
    return ip.user_ns["r"]


def test_elementwise_square_with_gradient_argument(ip: Any) -> None:
    r = _run(ip, "x = torch.tensor([1., 2.], requires_grad=True)\ny = x ** 2\n"
                 "y.backward(gradient=torch.tensor([1., 0.5]))")
    (j,) = r.jacobians
    # y_i = x_i^2 -> J = diag(2 x) = [[2, 0], [0, 4]]; v = [1, .5] -> vJ = [2, 2]
    assert j.matrix == ((2.0, 0.0), (0.0, 4.0))
    assert j.v == (1.0, 0.5) and j.vj == (2.0, 2.0) and j.backward == (2.0, 2.0)
    assert j.matches is True
    assert j.rows == ("y[0]", "y[1]") and j.columns == ("x[0]", "x[1]")


def test_two_leaves_and_accumulated_grad(ip: Any) -> None:
    ip.run_cell("import torch\na = torch.tensor([3.], requires_grad=True)\n"
                "b = torch.tensor([4.], requires_grad=True)\n(a * b).sum().backward()")
    r = _run(ip, "out = (a * b).sum()\nout.backward()")
    (j,) = r.jacobians
    assert dict(zip(j.columns, j.matrix[0])) == {"a[0]": 4.0, "b[0]": 3.0}  # d(ab)/da = b, d(ab)/db = a
    # What this backward added, not the accumulated total (8, 6).
    assert dict(zip(j.columns, j.backward)) == {"a[0]": 4.0, "b[0]": 3.0}
    assert j.matches is True


def test_limit_and_complex_give_a_note(ip: Any, options: Any) -> None:
    r2 = _run(ip, "x = torch.ones(3, requires_grad=True)\ny = (x * 2).sum()\ny.backward()")
    assert r2.jacobians[0].matrix == ((2.0, 2.0, 2.0),)
    with options(jacobian_max_elements=4):
        lim = _run(ip, "x = torch.ones(3, requires_grad=True)\n(x * 2).backward(gradient=torch.ones(3))")
    assert "limit of 4" in lim.jacobians[0].note and not lim.jacobians[0].matrix
    c = _run(ip, "z = torch.tensor([1+1j], requires_grad=True)\n(z * z).abs().sum().backward()")
    assert "complex" in c.jacobians[0].note


def test_without_backward_uses_ones(ip: Any) -> None:
    r = _run(ip, "x = torch.tensor([1., 2.], requires_grad=True)\ny = x * 3")
    (j,) = r.jacobians
    assert j.matrix == ((3.0, 0.0), (0.0, 3.0)) and j.vj == (3.0, 3.0)
    assert "no backward()" in j.note and j.matches is None


def test_jacobian_does_not_change_gradients(ip: Any) -> None:
    cell = (
        "torch.manual_seed(1)\nW = torch.randn(2, 3, requires_grad=True)\nv = torch.randn(3)\n(W @ v).sum().backward()"
    )
    ip.run_cell("import torch\n" + cell)
    plain = ip.user_ns["W"].grad.clone()
    _run(ip, cell)
    assert (ip.user_ns["W"].grad == plain).all()

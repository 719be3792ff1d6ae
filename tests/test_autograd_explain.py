"""Autograd errors in plain words (pure functions)."""

from __future__ import annotations

from torchmagic.autograd.explain import explain, parse_inplace

SECOND = (
    "Trying to backward through the graph a second time (or directly access saved tensors after "
    "they have already been freed). Saved intermediate values of the graph are freed when you "
    "call .backward() or autograd.grad()."
)
INPLACE = (
    "one of the variables needed for gradient computation has been modified by an inplace "
    "operation: [torch.FloatTensor [2, 3]], which is output 0 of ExpBackward0, is at version 2; "
    "expected version 0 instead. Hint: enable anomaly detection"
)


def test_second_backward_names_the_tensor_and_both_fixes() -> None:
    ex = explain(SECOND, root="loss")
    assert ex is not None and ex.kind == "second-backward"
    assert "`loss`.backward()" in ex.plain and "freed" in ex.plain
    assert "retain_graph=True" in ex.fix and "Recompute `loss`" in ex.fix
    assert ex.tensors == ("loss",)


def test_inplace_parses_shape_versions_and_names_suspects() -> None:
    info = parse_inplace(INPLACE)
    assert info == {"type": "torch.FloatTensor", "shape": "2, 3", "out": "0", "op": "ExpBackward0",
                    "now": "2", "then": "0"}
    ex = explain(INPLACE, root="s", suspects=["h"])
    assert ex is not None and ex.kind == "inplace"
    assert "`h`" in ex.plain and "from 0 to 2" in ex.plain and "ExpBackward0" in ex.plain
    assert "out-of-place" in ex.fix
    anonymous = explain(INPLACE)
    assert anonymous is not None and "shape (2, 3)" in anonymous.plain


def test_other_autograd_errors() -> None:
    nog = explain("element 0 of tensors does not require grad and does not have a grad_fn", "y")
    assert nog is not None and nog.kind == "no-grad" and "requires_grad=True" in nog.fix
    ns = explain("grad can be implicitly created only for scalar outputs", "y")
    assert ns is not None and "gradient=torch.ones_like(y)" in ns.fix
    leaf = explain("a leaf Variable that requires grad is being used in an in-place operation.")
    assert leaf is not None and "torch.no_grad()" in leaf.fix


def test_unrelated_errors_are_not_explained() -> None:
    assert explain("name 'x' is not defined") is None
    assert explain("") is None

"""trace.variants: the signature that tells executions apart, and what a new variant records."""

from __future__ import annotations

import pytest
import torch

from torchmagic.core.funcs import func_info
from torchmagic.trace.rows import Row
from torchmagic.trace.source import Site
from torchmagic.trace.variants import describe, inputs_of, is_name, requested_shape, signature


def _row(code: str, func: object, arg_texts: list[str], target: str = "") -> Row:
    """A row for ``code`` as :func:`~torchmagic.trace.source.site_of` reads it (tested on its own)."""
    info = func_info(func)  # type: ignore[arg-type]
    return Row(0, 2, info, Site(code, arg_texts, target=target, top=True), "")


_TENSORS = {"x": torch.ones(2, 3), "col": torch.ones(2, 1), "i": torch.arange(3)}


def test_signature_tells_shapes_and_dtypes_apart():
    a, b = torch.ones(2, 3), torch.ones(3)
    out = a + b
    assert signature((a, b), {}, out) == signature((torch.zeros(2, 3), torch.zeros(3)), {}, torch.zeros(2, 3))
    assert signature((a, b), {}, out) != signature((a.double(), b), {}, out.double())
    assert signature((a, b), {}, out) != signature((a, torch.ones(1)), {}, out)
    assert signature((a, 2), {}, out) != signature((a, 2.0), {}, out)  # int vs float scalar promote differently
    assert signature((a,), {"other": b}, out) != signature((a,), {"other": torch.ones(1)}, out)


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")
def test_signature_of_nested_tensors_uses_their_sizes():
    nt = torch.nested.nested_tensor([torch.ones(2), torch.ones(3)])
    with pytest.raises(RuntimeError):
        nt.shape  # noqa: B018 - the reason for the fallback
    assert signature((nt,), {}, nt) == (((2, -1), torch.float32), ((2, -1), torch.float32))


def test_requested_shape_and_names():
    x = torch.ones(4, 6)
    assert requested_shape((x, 2, -1)) == (2, -1)
    assert requested_shape((x, (2, -1))) == (2, -1)
    assert requested_shape((x, torch.Size([3, 8]))) == (3, 8)
    assert requested_shape((x, "nope")) == ()
    assert is_name("x") and is_name("model.fc.weight") and is_name("layers.0")
    assert not is_name("x + 1") and not is_name("") and not is_name("w.T @ x")


def test_describe_labels_operands_as_the_source_writes_them():
    x, col = _TENSORS["x"], _TENSORS["col"]
    row = _row("x * col", torch.Tensor.mul, ["x", "col"])
    var = describe(row, (x, col), {}, x * col, {id(x): "x"})
    assert [(o.label, o.shape) for o, *_ in var.inputs] == [("x", (2, 3)), ("col", (2, 1))]
    assert var.inputs[0][2] == "x"  # the name before the cell
    assert var.broadcast is not None and var.broadcast.result == (2, 3)
    assert var.effect == "new"
    assert var.outputs[0][0].label == "x * col"
    row = _row("x * col", torch.Tensor.mul, ["x", "col"], target="y")
    assert describe(row, (x, col), {}, x * col, {}).outputs[0][0].label == "y"


@pytest.mark.parametrize(
    "code, func, make, effect",
    [
        ("x.view(6)", torch.Tensor.view, lambda x: x.view(6), "view"),
        ("x.contiguous()", torch.Tensor.contiguous, lambda x: x.contiguous(), "same"),
        ("x.clone()", torch.Tensor.clone, lambda x: x.clone(), "new"),
    ],
)
def test_effect_on_memory(code, func, make, effect):
    x = _TENSORS["x"]
    row = _row(code, func, ["x", "6"] if "view" in code else ["x"])
    args = (x, 6) if "view" in code else (x,)
    assert describe(row, args, {}, make(x), {}).effect == effect


def test_minus_one_and_promotion_notes():
    x = torch.ones(4, 6)
    row = _row("x.view(-1, 3)", torch.Tensor.view, ["x", "-1", "3"])
    assert "-1 → 8" in describe(row, (x, -1, 3), {}, x.view(-1, 3), {}).notes
    i = _TENSORS["i"]
    row = _row("i + 0.5", torch.Tensor.add, ["i", "0.5"])
    assert "int64 + float → float32" in describe(row, (i, 0.5), {}, i + 0.5, {}).notes


def test_inputs_of_lists_and_keywords():
    a, b = torch.ones(2), torch.ones(3)
    row = _row("torch.cat([a, b])", torch.cat, ["[a, b]"])
    row.site.elts[0] = ["a", "b"]
    items = inputs_of(row, ([a, b],), {"out": torch.empty(5)}, {id(a): "a"})
    labels = [op.label for op, *_ in items]
    assert labels == ["a", "b", "out"]
    assert items[0][1] is not None and items[0][1]() is a  # a weak reference, not the tensor

"""Device-mismatch explanations: each operand's device, the user's names, a hint."""

from __future__ import annotations

import torch

from torchmagic.device.mismatch import explain, hint, is_mismatch_message, tensor_operands
from torchmagic.device.report import Operand


def test_torch_messages_are_recognised() -> None:
    assert is_mismatch_message(
        "Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!"
    )
    assert is_mismatch_message("Tensor on device cpu is not on the expected device meta!")
    assert is_mismatch_message(
        "Input type (torch.FloatTensor) and weight type (torch.cuda.FloatTensor) should be the same"
    )
    assert not is_mismatch_message("mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)")


def test_explain_names_each_operand_and_its_device() -> None:
    a = torch.ones(3, device="meta")
    x = torch.ones(2, 3)
    try:
        a + x
    except RuntimeError as exc:
        err = exc
    mm = explain(err, tensor_operands((a, x), {}), "__add__", 3, "b = a + x", "meta", {"a": a, "x": x})
    assert mm is not None
    assert [(o.name, o.shape, o.device) for o in mm.operands] == [("a", (3,), "meta"), ("x", (2, 3), "cpu")]
    assert mm.line == 3 and mm.source == "b = a + x"
    assert "x (2, 3) is on cpu" in mm.hint and "x.to('meta')" in mm.hint
    assert mm.message.startswith("Tensor on device")


def test_other_errors_are_not_explained() -> None:
    a, b = torch.ones(2, 3), torch.ones(4, 5)
    err = RuntimeError("mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)")
    assert explain(err, tensor_operands((a, b), None), "mm", 1, "", "cpu", {}) is None


def test_operands_on_two_devices_count_even_with_an_unknown_message() -> None:
    a, b = torch.ones(2), torch.ones(2, device="meta")
    mm = explain(RuntimeError("odd"), tensor_operands(([a, b],), {"out": None}), "cat", 1, "", "cpu", None)
    assert mm is not None and [o.name for o in mm.operands] == ["argument 1[0]", "argument 1[1]"]
    # unnamed operands get a generic move hint
    assert "Move it with .to('cpu')" in mm.hint


def test_cpu_scalars_mix_with_any_device() -> None:
    a, s = torch.ones(2, device="meta"), torch.tensor(2.0)
    assert explain(RuntimeError("odd"), tensor_operands((a, s), None), "mul", 1, "", "meta", None) is None


def test_hint_when_every_operand_is_on_the_cells_device_elsewhere() -> None:
    ops = [Operand("w", (2,), "float32", "cuda:0"), Operand("v", (2,), "float32", "cuda:1")]
    assert "cuda:1" in hint(ops, "cuda") and "v.to('cuda')" in hint(ops, "cuda")
    same = [Operand("w", (2,), "float32", "cuda:0"), Operand("v", (2,), "float32", "cuda:0")]
    assert "move them to one device" in hint(same, "cuda")

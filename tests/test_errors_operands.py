"""errors.operands: what an argument value says as an operand."""

from __future__ import annotations

import torch

from torchmagic.errors.operands import operand


def test_tensor_operand():
    t = torch.ones(2, 3, dtype=torch.float64, requires_grad=True)
    op = operand(t, "w", named=True)
    assert (op.label, op.kind, op.shape, op.dtype, op.device, op.named, op.requires_grad) == (
        "w", "tensor", (2, 3), "float64", "cpu", True, True)
    assert operand(torch.ones(4, device="meta"), "m").device == "meta"


def test_scalar_and_other_values():
    assert (operand(2, "").label, operand(2, "").kind, operand(2, "").dtype) == ("2", "scalar", "int")
    assert operand(0.5, "lr").label == "lr" and operand(True, "").dtype == "bool"
    other = operand([1, 2], "")
    assert (other.kind, other.label) == ("value", "list")

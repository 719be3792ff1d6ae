"""core.meta: how torchmagic writes shapes, ranks, sizes and tensor facts."""

from __future__ import annotations

import torch

from torchmagic.core.meta import fmt_shape, human_bytes, rank_word, tensor_meta


def test_fmt_shape_is_python_tuple_syntax() -> None:
    assert fmt_shape(()) == "()"
    assert fmt_shape((3,)) == "(3,)"
    assert fmt_shape((2, 3)) == "(2, 3)"
    assert fmt_shape(torch.Size([2, 3])) == repr((2, 3))


def test_rank_words() -> None:
    assert [rank_word(n) for n in range(5)] == ["scalar", "vector", "matrix", "3-d tensor", "4-d tensor"]


def test_human_bytes() -> None:
    assert human_bytes(512) == "512 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(64 * 2**20) == "64.0 MiB"
    assert human_bytes(3 * 2**40) == "3.0 TiB"


def test_tensor_meta_reads_grad_state() -> None:
    w = torch.ones(2, 3, requires_grad=True)
    y = w * 2
    m = tensor_meta(y)
    assert m.shape == (2, 3) and m.dtype == "float32" and m.device == "cpu"
    assert m.requires_grad and not m.is_leaf and m.grad_fn == "MulBackward0"
    assert tensor_meta(w).is_leaf and tensor_meta(w).grad_fn is None
    assert m.short() == "(2, 3) float32"
    assert tensor_meta(torch.ones(1, device="meta")).short() == "(1,) float32 meta"

"""Gradient summaries: values when small, shape and norm when large."""

from __future__ import annotations

import torch

from torchmagic.autograd.values import difference, fmt_number, summarize


def test_small_large_none_complex_half() -> None:
    assert summarize(None).text == "None"
    s = summarize(torch.tensor([1.5, -2.0]))
    assert s.text == "[1.5, -2]" and s.flat == (1.5, -2.0) and s.nonzero
    big = summarize(torch.ones(100, 100), small_elements=16)
    assert big.flat is None and big.text == "shape (100, 100), norm 100"
    c = summarize(torch.tensor([1 + 2j]))
    assert c.text == "[1+2j]" and c.flat is None
    h = summarize(torch.tensor([0.5, 0.25], dtype=torch.float16))
    assert h.text == "[0.5, 0.25]" and h.dtype == "float16"
    z = summarize(torch.zeros(3))
    assert not z.nonzero
    assert summarize(torch.tensor(3.0)).text == "3"


def test_summarize_does_not_modify_or_track() -> None:
    t = torch.tensor([1.0, 2.0], requires_grad=True)
    v = t._version
    summarize(t)
    assert t._version == v and t.grad is None


def test_difference_and_numbers() -> None:
    a, b = summarize(torch.tensor([3.0, 4.0])), summarize(torch.tensor([1.0, 1.0]))
    assert difference(a, b) == "[2, 3]"
    m1, m2 = summarize(torch.ones(2, 2)), summarize(torch.zeros(2, 2))
    assert difference(m1, m2) == "[1, 1, 1, 1] (flattened)"
    big1, big2 = summarize(torch.ones(50)), summarize(torch.zeros(50))
    assert difference(big1, big2).startswith("norm 0 → 7.071")
    assert fmt_number(float("nan")) == "nan" and fmt_number(3) == "3"

"""Gradient summaries: values when small, shape and norm when large."""

from __future__ import annotations

import torch

from torchmagic.autograd.values import fmt_number, nonfinite_text, summarize


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


def test_non_finite_values_are_counted_not_hidden() -> None:
    small = summarize(torch.tensor([float("inf"), 0.5, float("nan")]))
    assert (small.nan, small.inf, small.finite) == (1, 1, False)
    big = torch.ones(100)
    big[3] = float("-inf")
    s = summarize(big)
    assert (s.nan, s.inf) == (0, 1) and s.text == "shape (100,), norm inf (1 inf)"
    assert s.short == "norm inf (1 inf)"
    assert summarize(torch.ones(100)).short == "norm 10" and summarize(torch.ones(2)).short == "[1, 1]"
    assert summarize(None).short == "None"
    assert nonfinite_text(2, 0) == "2 NaN" and nonfinite_text(1, 3) == "1 NaN, 3 inf"


def test_numbers() -> None:
    assert fmt_number(float("nan")) == "nan" and fmt_number(3) == "3"
    assert fmt_number(0.30000001) == "0.3" and fmt_number(1 + 2j) == "1+2j"

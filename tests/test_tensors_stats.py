"""tensorinfo.stats: correct statistics, bounded cost, no autograd, no copies."""

from __future__ import annotations

import math

import pytest
import torch

from torchmagic.tensors.stats import (
    compute_histogram,
    compute_stats,
    preview,
    preview_label,
    skip_reason,
    strided_sample,
)


def test_float_stats_match_torch() -> None:
    t = torch.randn(50, 40, dtype=torch.float64)
    s = compute_stats(t, 10_000)
    assert not s.sampled and s.count == 2000
    assert s.minimum == t.min().item() and s.maximum == t.max().item()
    assert s.mean == pytest.approx(t.mean().item()) and s.std == pytest.approx(t.std().item())


def test_special_values_counted_and_excluded() -> None:
    t = torch.tensor([1.0, 0.0, math.nan, math.inf, -math.inf, 3.0])
    s = compute_stats(t, 100)
    assert (s.nans, s.posinf, s.neginf, s.zeros) == (1, 1, 1, 1)
    assert (s.minimum, s.maximum) == (0.0, 3.0)
    assert s.mean == pytest.approx(4 / 3)


def test_all_nan_has_no_summary() -> None:
    s = compute_stats(torch.full((3,), math.nan), 100)
    assert s.minimum is None and s.note == "no finite values" and s.nans == 3


def test_int_bool_complex_half() -> None:
    s = compute_stats(torch.tensor([3, 0, -2], dtype=torch.int64), 100)
    assert (s.minimum, s.maximum, s.zeros) == (-2, 3, 1) and isinstance(s.minimum, int)
    assert s.mean == pytest.approx(1 / 3)
    b = compute_stats(torch.tensor([True, False, True, True]), 100)
    assert b.mean == 0.75 and b.zeros == 1 and b.note == "3 True, 1 False"
    c = compute_stats(torch.tensor([3 + 4j, 0j]), 100)
    assert c.of.startswith("|z|") and c.maximum == pytest.approx(5.0)
    h = compute_stats(torch.tensor([0.5, 1.5], dtype=torch.float16), 100)
    assert h.mean == pytest.approx(1.0)
    bf = compute_stats(torch.tensor([0.5, 1.5], dtype=torch.bfloat16), 100)
    assert bf.maximum == pytest.approx(1.5)


def test_large_tensor_uses_a_labelled_strided_view() -> None:
    t = torch.randn(1000, 1000)
    view, sampled = strided_sample(t, 10_000)
    assert sampled and view.numel() <= 10_000
    assert view.untyped_storage().data_ptr() == t.untyped_storage().data_ptr()  # a view, no copy
    s = compute_stats(t, 10_000)
    assert s.sampled and "sample" in s.of and s.count <= 10_000


def test_non_contiguous_sample_is_still_a_view() -> None:
    t = torch.randn(600, 500).t()
    view, sampled = strided_sample(t, 1000)
    assert (sampled and view._base is t._base) or view._base is t


def test_stats_do_not_track_autograd() -> None:
    w = torch.randn(5, requires_grad=True)
    compute_stats(w, 100)
    compute_histogram(w, 4, 100)
    assert w.grad is None and w.grad_fn is None


def test_histogram_counts_everything_finite() -> None:
    t = torch.tensor([0.0, 0.1, 0.9, 1.0, math.nan])
    h = compute_histogram(t, 2, 100)
    assert h is not None and h.counts == [2, 2] and (h.low, h.high) == (0.0, 1.0)
    assert compute_histogram(torch.full((2,), math.nan), 4, 100) is None
    assert compute_histogram(torch.ones(3), 4, 100).counts == [3]  # type: ignore[union-attr]


def test_skip_reasons() -> None:
    assert "meta" in skip_reason(torch.ones(2, device="meta"))
    assert "empty" in skip_reason(torch.ones(0))
    assert "sparse" in skip_reason(torch.ones(2, 2).to_sparse())
    assert skip_reason(torch.ones(2)) == ""
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        fake = torch.ones(3)
    assert "fake" in skip_reason(fake)


def test_preview_elides_the_middle() -> None:
    text = preview(torch.arange(100).reshape(10, 10), 4, 4)
    lines = text.splitlines()
    assert lines[0] == "[[0, 1, …, 8, 9],"
    assert " …," in lines and lines[-1] == " [90, 91, …, 98, 99]]"
    assert preview(torch.tensor(2.0), 4, 4) == "2."
    assert preview(torch.tensor([1.5, 2.0]), 4, 4) == "[1.5, 2.]"
    assert preview_label("x", 4) == "x[0, 0, :, :]" and preview_label("x", 2) == "x"
    assert preview(torch.zeros(2, 3, 4), 6, 4).count("\n") == 2  # only x[0]: 3 rows

"""tensorinfo.stats: correct statistics, bounded cost, no autograd, no copies."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from torchmagic.tensors.stats import compute_histogram, compute_stats, skip_reason, strided_sample


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
    assert (s.finite, s.nonfinite, s.of) == (3, 3, "the 3 finite values (of 6)")


def test_the_reported_log_cell_says_its_statistics_are_of_the_finite_values() -> None:
    """Issue 14: `%tensorinfo b` for b = log([1, 0, -1, 4]) said "statistics of all values"."""
    b = torch.log(torch.tensor([1.0, 0.0, -1.0, 4.0]))
    s = compute_stats(b, 100)
    assert s.of == "the 2 finite values (of 4)" and (s.nans, s.neginf, s.posinf) == (1, 1, 0)
    assert (s.minimum, s.mean) == (0.0, pytest.approx(math.log(4) / 2))
    clean = compute_stats(torch.tensor([1.0, 2.0]), 100)
    assert clean.of == "all values" and clean.finite == 2 and clean.nonfinite == 0


def test_a_sample_with_non_finite_values_says_both() -> None:
    t = torch.randn(1000, 1000)
    t[::2, ::2] = math.nan
    s = compute_stats(t, 10_000)
    assert s.sampled and s.of.startswith(f"the {s.finite:,} finite values of a strided sample of")


def test_means_of_large_float32_values_do_not_overflow() -> None:
    s = compute_stats(torch.full((1000,), 3e38), 10_000)
    assert s.mean == pytest.approx(3e38, rel=1e-6) and s.std == 0.0


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    values=hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=8),
        elements=st.floats(-1e6, 1e6, width=32),
    ),
    data=st.data(),
)
def test_finite_statistics_equal_numpys_nan_statistics(values: np.ndarray, data: st.DataObject) -> None:
    """Property (issue 14): with NaN/±Inf injected, the statistics are NumPy's of the finite values."""
    flat = values.reshape(-1)
    spots = data.draw(st.lists(st.integers(0, flat.size - 1), max_size=flat.size, unique=True))
    kinds = data.draw(st.lists(st.sampled_from([math.nan, math.inf, -math.inf]), min_size=len(spots),
                               max_size=len(spots)))
    for i, kind in zip(spots, kinds):
        flat[i] = kind
    s = compute_stats(torch.from_numpy(values), 10_000)
    finite_only = np.where(np.isfinite(values), values, np.nan).astype(np.float64)
    assert (s.nans, s.posinf, s.neginf) == (
        int(np.isnan(values).sum()), int(np.isposinf(values).sum()), int(np.isneginf(values).sum()))
    assert s.finite == int(np.isfinite(values).sum())
    if s.finite == 0:
        assert s.minimum is None and s.mean is None and s.note == "no finite values"
        return
    assert s.minimum == float(np.nanmin(finite_only)) and s.maximum == float(np.nanmax(finite_only))
    assert s.mean == pytest.approx(float(np.nanmean(finite_only)), rel=1e-9, abs=1e-9)
    if s.finite > 1:
        assert s.std == pytest.approx(float(np.nanstd(finite_only, ddof=1)), rel=1e-7, abs=1e-6)
    assert ("finite values" in s.of) == (s.nonfinite > 0)


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


def test_values_that_look_uninitialised_get_a_hedged_note() -> None:
    """Issue 14: `torch.FloatTensor(2, 3)` / `torch.empty` showed 1.3e+26 with no note."""
    from torchmagic.tensors.stats import looks_uninitialised

    huge = looks_uninitialised(compute_stats(torch.tensor([1.3e26, 0.0, 1.0]), 100))
    assert "magnitudes up to 1.3e+26" in huge and "If the tensor came from torch.empty" in huge
    tiny = looks_uninitialised(compute_stats(torch.tensor([4.6e-41, 0.0]), 100))
    assert "1 subnormal value" in tiny
    assert looks_uninitialised(compute_stats(torch.randn(100), 1000)) == ""
    assert looks_uninitialised(compute_stats(torch.tensor([1e-7], dtype=torch.float16), 10)) == ""  # fp16 data
    assert looks_uninitialised(compute_stats(torch.full((3,), math.nan), 10)) == ""

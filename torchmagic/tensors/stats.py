"""Bounded statistics and histogram of a tensor's values.

Costs stay bounded for huge tensors: above ``max_elements`` we take a strided
*view* (every k-th index along each dimension, so nothing is copied first)
and label the result as a sample.  Everything runs under ``no_grad`` on the
tensor's own device; only a handful of scalars travel to the host, in one
transfer, so a CUDA tensor costs one synchronisation.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from torchmagic.i18n import tr, trn
from torchmagic.tensors.report import Histogram, Stats

if TYPE_CHECKING:
    import torch

__all__ = ["skip_reason", "strided_sample", "compute_stats", "compute_histogram", "looks_uninitialised", "HUGE"]


def skip_reason(t: torch.Tensor) -> str:
    """Why this tensor's values cannot be read (empty string if they can)."""
    import torch

    if t.device.type == "meta":
        return tr("meta tensor: it has a shape but no values")
    try:
        from torch._subclasses.fake_tensor import FakeTensor

        if isinstance(t, FakeTensor):
            return tr("fake tensor: it has a shape but no values")
    except ImportError:  # pragma: no cover - old torch
        pass
    if getattr(t, "is_nested", False):
        return tr("nested tensor: statistics are not computed")
    if t.layout != torch.strided:
        return tr("{layout} layout: statistics are not computed", layout=str(t.layout).removeprefix("torch."))
    if t.is_quantized:
        return tr("quantized tensor: statistics are not computed (use t.dequantize())")
    if t.numel() == 0:
        return tr("empty tensor: no values")
    return ""


def strided_sample(t: torch.Tensor, max_elements: int) -> tuple[torch.Tensor, bool]:
    """A view of ``t`` with at most ``max_elements`` elements, and whether it is a sample."""
    n = t.numel()
    if n <= max_elements or t.dim() == 0:
        return t, False
    steps = [1] * t.dim()
    sizes = list(t.shape)
    while math.prod(math.ceil(s / k) for s, k in zip(sizes, steps)) > max_elements:
        # Grow the step of the dimension that currently keeps the most elements.
        i = max(range(len(sizes)), key=lambda d: math.ceil(sizes[d] / steps[d]))
        steps[i] *= 2
    view = t[tuple(slice(None, None, k) for k in steps)]
    return view, True


def _described(count: int, total: int, sampled: bool, finite: int | None = None) -> str:
    """What the statistics are of: ``all values``, ``the 2 finite values (of 4)``, a sample's."""
    fields = {"count": f"{count:,}", "total": f"{total:,}", "finite": f"{finite or 0:,}"}
    if finite is None or finite == count:
        return tr("a strided sample of {count} of {total} values", **fields) if sampled else tr("all values")
    if sampled:
        return tr("the {finite} finite values of a strided sample of {count} of {total} values", **fields)
    return tr("the {finite} finite values (of {count})", **fields)


def compute_stats(t: torch.Tensor, max_elements: int) -> Stats:
    """Min, max, mean, std and special-value counts of ``t`` (or of a labelled sample).

    With NaN or ±Inf present, min/max/mean/std are those of the finite values
    only (as ``numpy.nanmin`` etc. after Inf is set aside) and ``of`` says so:
    "the 2 finite values (of 4)".  Means and standard deviations of
    floating-point values are accumulated in float64, so a float32 tensor of
    large values does not overflow into a mean of ``inf``.
    """
    import torch

    with torch.no_grad():
        x, sampled = strided_sample(t.detach(), max_elements)
        x = x.reshape(-1)
        count = x.numel()
        if x.dtype == torch.bool:
            trues = int(x.sum().item())
            return Stats(
                of=_described(count, t.numel(), sampled),
                count=count,
                minimum=bool(trues == count),
                maximum=bool(trues > 0),
                mean=trues / count,
                zeros=count - trues,
                sampled=sampled,
                note=tr("{trues} True, {falses} False", trues=format(trues, ","), falses=format(count - trues, ",")),
                finite=count,
            )
        magnitudes = x.is_complex()
        if magnitudes:
            x = x.abs()
        if count <= SMALL and x.is_floating_point():
            tiny = torch.finfo(x.dtype).tiny if x.dtype != torch.float16 else 0.0
            return _small_float_stats(x.tolist(), tiny, magnitudes)
        if not x.is_floating_point():
            small = torch.stack([x.min(), x.max(), (x == 0).sum()]).tolist()
            xf = x.double()
            mean, std = torch.stack([xf.mean(), xf.std() if count > 1 else xf.new_zeros(())]).tolist()
            return Stats(of=_described(count, t.numel(), sampled), count=count, minimum=int(small[0]),
                         maximum=int(small[1]), mean=mean, std=std, zeros=int(small[2]), sampled=sampled,
                         finite=count)
        work = x.double() if x.dtype == torch.float64 else x.float()
        finite = torch.isfinite(work)
        values = work[finite].double()
        # the smallest normal number of the tensor's own dtype; float16's subnormals are common in real
        # data (its normal range stops at 6e-5), so they are not counted there
        tiny = torch.finfo(x.dtype).tiny if x.dtype != torch.float16 else 0.0
        magnitude = work.abs()
        counts = torch.stack([
            torch.isnan(work).sum(),
            (work == math.inf).sum(),
            (work == -math.inf).sum(),
            (work == 0).sum(),
            ((magnitude < tiny) & (magnitude > 0)).sum(),
        ])
        if values.numel():
            summary = torch.stack([
                values.min(), values.max(), values.mean(),
                values.std() if values.numel() > 1 else values.new_zeros(()),
            ])
        else:
            summary = work.new_full((4,), math.nan).double()
        nan, pinf, ninf, zeros, subnormal = (int(v) for v in counts.tolist())
        mn, mx, mean, std = summary.tolist()  # one transfer for all of them
        n_finite = count - nan - pinf - ninf
        stats = Stats(of=_of(magnitudes, _described(count, t.numel(), sampled, n_finite)), count=count, zeros=zeros,
                      nans=nan, posinf=pinf, neginf=ninf, sampled=sampled, finite=n_finite, subnormal=subnormal)
        if values.numel():
            stats.minimum, stats.maximum, stats.mean, stats.std = mn, mx, mean, std
        else:
            stats.note = tr("no finite values")
        return stats


#: up to this many values, floating-point statistics are computed in Python: a listing of thousands
#: of small tensors would otherwise pay a dozen kernel launches for each
SMALL = 64


def _of(magnitudes: bool, described: str) -> str:
    """What the statistics describe; of a complex tensor, its values' magnitudes."""
    return tr("|z| of {what}", what=described) if magnitudes else described


def _small_float_stats(values: list[float], tiny: float, magnitudes: bool) -> Stats:
    """:func:`compute_stats` of a few floats, in Python (float64 throughout, as the tensor path)."""
    count = len(values)
    finite = [v for v in values if math.isfinite(v)]
    nans = sum(1 for v in values if v != v)
    posinf = sum(1 for v in values if v == math.inf)
    stats = Stats(of=_of(magnitudes, _described(count, count, False, len(finite))), count=count,
                  zeros=sum(1 for v in values if v == 0), nans=nans, posinf=posinf,
                  neginf=count - len(finite) - nans - posinf, finite=len(finite),
                  subnormal=sum(1 for v in finite if 0 < abs(v) < tiny))
    if not finite:
        stats.note = tr("no finite values")
        return stats
    n = len(finite)
    mean = math.fsum(finite) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in finite) / (n - 1)) if n > 1 else 0.0
    stats.minimum, stats.maximum, stats.mean, stats.std = min(finite), max(finite), mean, std
    return stats


def compute_histogram(t: torch.Tensor, bins: int, max_elements: int) -> Histogram | None:
    """Equal-width histogram of the finite values (of the same sample as the stats)."""
    import torch

    with torch.no_grad():
        x, _ = strided_sample(t.detach(), max_elements)
        x = x.reshape(-1)
        if x.is_complex():
            x = x.abs()
        x = x.double() if x.dtype == torch.float64 else x.float()
        x = x[torch.isfinite(x)]
        if x.numel() == 0:
            return None
        lo, hi = torch.stack([x.min(), x.max()]).tolist()
        if lo == hi:
            return Histogram(low=lo, high=hi, counts=[int(x.numel())])
        counts = torch.histc(x, bins=bins, min=lo, max=hi)
        return Histogram(low=lo, high=hi, counts=[int(c) for c in counts.tolist()])


#: finite values at least this large look like uninitialised memory read as floats
HUGE = 1e20


def looks_uninitialised(s: Stats) -> str:
    """A hedged note when the values look like uninitialised memory, else ``''``.

    Whether a tensor came from ``torch.empty`` cannot be known afterwards;
    what its values say can: subnormal numbers and magnitudes of 1e20 and
    more are rare in data and common in memory never written.
    """
    big = max((abs(v) for v in (s.minimum, s.maximum) if isinstance(v, float)), default=0.0)
    if not s.subnormal and big < HUGE:
        return ""
    seen = []
    if big >= HUGE:
        seen.append(tr("magnitudes up to {big}", big=format(big, ".2g")))
    if s.subnormal:
        seen.append(trn("{count} subnormal value (nonzero, below the smallest normal number)",
                        "{count} subnormal values (nonzero, below the smallest normal number)",
                        s.subnormal, count=format(s.subnormal, ",")))
    return tr("These values look like uninitialised memory ({seen}). If the tensor came from torch.empty, "
              "empty_like or a legacy constructor such as torch.FloatTensor(2, 3), it holds whatever was in "
              "memory: fill it first (torch.zeros, .fill_(), .normal_()).", seen=tr(", ").join(seen))

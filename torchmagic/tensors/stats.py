"""Bounded statistics, histogram and preview of a tensor's values.

Costs stay bounded for huge tensors: above ``max_elements`` we take a strided
*view* (every k-th index along each dimension, so nothing is copied first)
and label the result as a sample.  Everything runs under ``no_grad`` on the
tensor's own device; only a handful of scalars travel to the host, in one
transfer, so a CUDA tensor costs one synchronisation.
"""

from __future__ import annotations

import math
from typing import Any

from torchmagic.tensors.report import Histogram, Stats

__all__ = ["skip_reason", "strided_sample", "compute_stats", "compute_histogram", "preview", "preview_label"]


def skip_reason(t: Any) -> str:
    """Why this tensor's values cannot be read (empty string if they can)."""
    import torch

    if t.device.type == "meta":
        return "meta tensor: it has a shape but no values"
    try:
        from torch._subclasses.fake_tensor import FakeTensor

        if isinstance(t, FakeTensor):
            return "fake tensor: it has a shape but no values"
    except ImportError:  # pragma: no cover - old torch
        pass
    if getattr(t, "is_nested", False):
        return "nested tensor: statistics are not computed"
    if t.layout != torch.strided:
        return f"{str(t.layout).removeprefix('torch.')} layout: statistics are not computed"
    if t.is_quantized:
        return "quantized tensor: statistics are not computed (use t.dequantize())"
    if t.numel() == 0:
        return "empty tensor: no values"
    return ""


def strided_sample(t: Any, max_elements: int) -> tuple[Any, bool]:
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


def compute_stats(t: Any, max_elements: int) -> Stats:
    """Min, max, mean, std and special-value counts of ``t`` (or of a labelled sample)."""
    import torch

    with torch.no_grad():
        x, sampled = strided_sample(t.detach(), max_elements)
        x = x.reshape(-1)
        count = x.numel()
        of = f"strided sample of {count:,} of {t.numel():,} values" if sampled else "all values"
        if x.dtype == torch.bool:
            trues = int(x.sum().item())
            return Stats(
                of=of,
                count=count,
                minimum=bool(trues == count),
                maximum=bool(trues > 0),
                mean=trues / count,
                zeros=count - trues,
                sampled=sampled,
                note=f"{trues:,} True, {count - trues:,} False",
            )
        if x.is_complex():
            of = "|z| of " + of
            x = x.abs()
        if not x.is_floating_point():
            small = torch.stack([x.min(), x.max(), (x == 0).sum()]).tolist()
            xf = x.double()
            mean, std = torch.stack([xf.mean(), xf.std() if count > 1 else xf.new_zeros(())]).tolist()
            return Stats(of=of, count=count, minimum=int(small[0]), maximum=int(small[1]),
                         mean=mean, std=std, zeros=int(small[2]), sampled=sampled)
        work = x.double() if x.dtype == torch.float64 else x.float()
        finite = torch.isfinite(work)
        values = work[finite]
        counts = torch.stack([
            torch.isnan(work).sum(),
            (work == math.inf).sum(),
            (work == -math.inf).sum(),
            (work == 0).sum(),
        ])
        if values.numel():
            summary = torch.stack([
                values.min(), values.max(), values.mean(),
                values.std() if values.numel() > 1 else values.new_zeros(()),
            ]).double()
        else:
            summary = work.new_full((4,), math.nan).double()
        nan, pinf, ninf, zeros = (int(v) for v in counts.tolist())
        mn, mx, mean, std = summary.tolist()  # one transfer for all of them
        stats = Stats(of=of, count=count, zeros=zeros, nans=nan, posinf=pinf, neginf=ninf,
                      sampled=sampled)
        if values.numel():
            stats.minimum, stats.maximum, stats.mean, stats.std = mn, mx, mean, std
        else:
            stats.note = "no finite values"
        return stats


def compute_histogram(t: Any, bins: int, max_elements: int) -> Histogram | None:
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


def _fmt(value: Any, precision: int) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        text = f"{value:.{precision}g}"
        # Keep floats recognisable as floats, as torch prints them: 1. not 1
        return text if any(c in text for c in ".eninf") else text + "."
    if isinstance(value, complex):
        return f"{value.real:.{precision}g}{value.imag:+.{precision}g}j"
    return str(value)


def preview_label(name: str, rank: int) -> str:
    """What :func:`preview` shows: the whole tensor, or its first matrix for rank > 2."""
    if rank <= 2:
        return name
    return f"{name}[{', '.join(['0'] * (rank - 2))}, :, :]"


def preview(t: Any, items: int, precision: int) -> str:
    """The first and last ``items // 2`` values along each dimension, nested like a list.

    For rank > 2 only the first matrix is shown (see :func:`preview_label`):
    the nesting of a 4-d batch is better told by the shape than by brackets.
    """
    import torch

    k = max(items // 2, 1)
    with torch.no_grad():
        x = t.detach()
        while x.dim() > 2:
            x = x[0]
        keep: list[list[int | None]] = []
        for size in x.shape:
            if size > 2 * k:
                idx: list[int | None] = [*range(k), None, *range(size - k, size)]
            else:
                idx = list(range(size))
            real = [i for i in idx if i is not None]
            x = x.index_select(len(keep), torch.tensor(real, dtype=torch.long, device=x.device))
            keep.append(idx)
        values = x.tolist()

    def render(v: Any, depth: int) -> str:
        if depth == len(keep):
            return _fmt(v, precision)
        parts: list[str] = []
        pos = 0
        for i in keep[depth]:
            if i is None:
                parts.append("…")
            else:
                parts.append(render(v[pos], depth + 1))
                pos += 1
        sep = ", " if depth == len(keep) - 1 else ",\n" + " " * (depth + 1)
        return "[" + sep.join(parts) + "]"

    return render(values, 0)

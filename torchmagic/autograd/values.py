"""Turn a gradient (or any tensor) into a short, plain-data summary.

Learners want to *see* small gradients (``[2., 4.]``) and only need the size
of large ones (shape and norm).  The summary holds strings and floats, never
the tensor, so reports can be kept around without keeping memory alive.
Everything here reads values under ``torch.no_grad()`` and never modifies
the tensor it is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from torchmagic.core.meta import dtype_name, fmt_shape

__all__ = ["Values", "NONE", "summarize", "difference", "fmt_number"]


@dataclass(frozen=True)
class Values:
    """A tensor's values as text, plus numbers for arithmetic (real, small tensors only)."""

    text: str
    shape: tuple[int, ...] = ()
    dtype: str = ""
    norm: float = 0.0
    flat: tuple[float, ...] | None = None  # every value, for small real tensors
    nonzero: bool = False

    @property
    def small(self) -> bool:
        return self.flat is not None


NONE = Values(text="None")


def fmt_number(value: Any, digits: int = 4) -> str:
    """``0.30000001`` -> ``0.3``; complex numbers as ``1+2j``; ints unchanged."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, complex):
        return f"{value.real:.{digits}g}{value.imag:+.{digits}g}j"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.{digits}g}"
    return str(value)


def _nested(values: Any, digits: int) -> str:
    if isinstance(values, list):
        return "[" + ", ".join(_nested(v, digits) for v in values) + "]"
    return fmt_number(values, digits)


def summarize(t: Any, small_elements: int = 16, digits: int = 4) -> Values:
    """Values of ``t`` (``None`` allowed): all of them when small, else shape and norm."""
    if t is None:
        return NONE
    import torch

    with torch.no_grad():
        d = t.detach()
        shape = tuple(int(s) for s in d.shape)
        dtype = dtype_name(d.dtype)
        if d.layout != torch.strided or d.device.type == "meta":
            return Values(text=f"{fmt_shape(shape)} {dtype} ({d.layout})", shape=shape, dtype=dtype)
        numel = d.numel()
        if numel <= small_elements:
            wide = d.to(torch.complex128) if d.is_complex() else d.to(torch.float64)
            norm = float(torch.linalg.vector_norm(wide)) if numel else 0.0
            listed = wide.tolist()
            flat: tuple[float, ...] | None = None
            if not d.is_complex():
                flat = tuple(float(v) for v in wide.reshape(-1).tolist())
            return Values(
                text=_nested(listed, digits),
                shape=shape,
                dtype=dtype,
                norm=norm,
                flat=flat,
                nonzero=bool(norm != 0.0),
            )
        real = d.abs() if d.is_complex() else d
        if not real.is_floating_point():
            real = real.double()
        norm = float(torch.linalg.vector_norm(real, dtype=torch.float64))
        nonzero = norm != 0.0
        text = f"shape {fmt_shape(shape)}, norm {fmt_number(norm, digits)}"
        return Values(text=text, shape=shape, dtype=dtype, norm=norm, nonzero=nonzero)


def difference(after: Values, before: Values, digits: int = 4) -> str:
    """What one backward added: ``after - before`` for small tensors, else the norms."""
    if after.flat is not None and before.flat is not None and len(after.flat) == len(before.flat):
        diff = [a - b for a, b in zip(after.flat, before.flat)]
        if not after.shape:
            return fmt_number(diff[0], digits)
        text = "[" + ", ".join(fmt_number(v, digits) for v in diff) + "]"
        return text if len(after.shape) == 1 else text + " (flattened)"
    return f"norm {fmt_number(before.norm, digits)} → {fmt_number(after.norm, digits)}"

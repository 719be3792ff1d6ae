"""Turn a gradient (or any tensor) into a short, plain-data summary.

Learners want to *see* small gradients (``[2., 4.]``) and only need the size
of large ones (shape and norm).  Non-finite values are counted, never hidden
in a norm: a gradient with an ``inf`` says so.  The summary holds strings and
floats, never the tensor, so reports can be kept around without keeping
memory alive.  Everything here reads values under ``torch.no_grad()`` and
never modifies the tensor it is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torchmagic.core.meta import dtype_name, fmt_shape
from torchmagic.i18n import tr

if TYPE_CHECKING:
    import torch

__all__ = ["Values", "NONE", "summarize", "fmt_number", "nonfinite_text", "norm_text", "pad", "clip"]


@dataclass(frozen=True)
class Values:
    """A tensor's values as text, plus numbers for arithmetic (real, small tensors only)."""

    text: str  # every value when small, else "shape (64,), norm 3.3"
    shape: tuple[int, ...] = ()
    dtype: str = ""
    norm: float = 0.0
    flat: tuple[float, ...] | None = None  # every value, for small real tensors
    nonzero: bool = False
    nan: int = 0  # how many values are NaN
    inf: int = 0  # ... +inf or -inf
    sized: bool = False  # ``text`` gives shape and norm (too many values to list)

    @property
    def small(self) -> bool:
        return self.flat is not None

    @property
    def finite(self) -> bool:
        return not (self.nan or self.inf)

    @property
    def short(self) -> str:
        """For a table whose other columns give shape and dtype: the values, or ``norm N``."""
        if not self.sized:
            return self.text
        extra = f" ({nonfinite_text(self.nan, self.inf)})" if not self.finite else ""
        return tr("norm {norm}", norm=fmt_number(self.norm)) + extra


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


def pad(text: str, width: int) -> str:
    """``text`` padded with spaces to ``width`` terminal cells (a Chinese character takes two)."""
    from rich.cells import cell_len

    return text + " " * (width - cell_len(text))


def clip(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` terminal cells, ending in ``…`` when cut."""
    from rich.cells import cell_len, set_cell_size

    if cell_len(text) <= width:
        return text
    return set_cell_size(text, width - 1) + "…"


def nonfinite_text(nan: int, inf: int) -> str:
    """``"1 NaN, 2 inf"``: how many values are not finite."""
    parts = ([tr("{n} NaN", n=nan)] if nan else []) + ([tr("{n} inf", n=inf)] if inf else [])
    return ", ".join(parts)


def norm_text(shape: tuple[int, ...] | None, norm: float, digits: int = 4) -> str:
    """``"shape (64,), norm 3.3"``: the size of a tensor too large to list (no shape when unknown)."""
    if shape is None:
        return tr("norm {norm}", norm=fmt_number(norm, digits))
    return tr("shape {shape}, norm {norm}", shape=fmt_shape(shape), norm=fmt_number(norm, digits))


def _nested(values: Any, digits: int) -> str:
    if isinstance(values, list):
        return "[" + ", ".join(_nested(v, digits) for v in values) + "]"
    return fmt_number(values, digits)


def summarize(t: torch.Tensor | None, small_elements: int = 16, digits: int = 4) -> Values:
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
            flat: tuple[float, ...] | None = None
            nan = inf = 0
            if not d.is_complex():
                flat = tuple(wide.reshape(-1).tolist())
                norm = math.sqrt(sum(v * v for v in flat))
                nan = sum(1 for v in flat if v != v)
                inf = sum(1 for v in flat if v in (math.inf, -math.inf))
            else:
                norm = float(torch.linalg.vector_norm(wide)) if numel else 0.0
                if not math.isfinite(norm):
                    nan, inf = _count_nonfinite(d)
            return Values(
                text=_nested(wide.tolist(), digits), shape=shape, dtype=dtype, norm=norm, flat=flat,
                nonzero=bool(norm != 0.0), nan=nan, inf=inf,
            )
        real = d.abs() if d.is_complex() else d
        if not real.is_floating_point():
            real = real.double()
        norm = float(torch.linalg.vector_norm(real, dtype=torch.float64))
        nan, inf = _count_nonfinite(real) if not math.isfinite(norm) else (0, 0)
        text = norm_text(shape, norm, digits)
        if nan or inf:
            text += f" ({nonfinite_text(nan, inf)})"
        return Values(text=text, shape=shape, dtype=dtype, norm=norm, nonzero=norm != 0.0, nan=nan, inf=inf,
                      sized=True)


def _count_nonfinite(t: torch.Tensor) -> tuple[int, int]:
    """(NaN count, ±inf count) of a tensor whose norm already said it has some."""
    import torch

    return int(torch.isnan(t).sum()), int(torch.isinf(t).sum())

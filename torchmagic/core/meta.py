"""Compact, plain-data facts about one tensor, shared by every collector.

A :class:`TensorMeta` holds only strings, ints and tuples, never the tensor,
so reports can be kept, pickled and serialised without keeping memory alive.
The formatting helpers here (shapes, ranks, sizes) are the single source of
how torchmagic writes these things, in every renderer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from torchmagic.i18n import N_, tr

if TYPE_CHECKING:
    import torch

__all__ = [
    "TensorMeta",
    "tensor_meta",
    "fmt_shape",
    "rank_word",
    "human_bytes",
    "dtype_name",
    "device_name",
    "is_tensor",
]


@dataclass(frozen=True)
class TensorMeta:
    """Shape, dtype, device and grad state of a tensor at one moment."""

    shape: tuple[int, ...]
    dtype: str
    device: str
    requires_grad: bool = False
    grad_fn: str | None = None
    is_leaf: bool = True

    @property
    def rank(self) -> int:
        return len(self.shape)

    def short(self) -> str:
        """``(2, 3) float32`` plus the device when it is not the CPU."""
        text = f"{fmt_shape(self.shape)} {self.dtype}"
        if self.device != "cpu":
            text += f" {self.device}"
        return text


def is_tensor(obj: object) -> bool:
    """True for ``torch.Tensor`` instances (and subclasses such as Parameter)."""
    import torch

    return isinstance(obj, torch.Tensor)


def dtype_name(dtype: torch.dtype | str) -> str:
    """``torch.float32`` -> ``'float32'``."""
    return str(dtype).removeprefix("torch.")


def device_name(device: torch.device | str) -> str:
    """``device(type='cuda', index=0)`` -> ``'cuda:0'``."""
    return str(device)


def shape_of(t: torch.Tensor) -> tuple[int, ...]:
    """``t.shape`` as ints; a nested tensor's ragged dimensions are -1 (its ``.shape`` raises)."""
    try:
        return tuple(int(s) for s in t.shape)
    except RuntimeError:
        sizes = []
        for dim in range(t.dim()):
            try:
                sizes.append(int(t.size(dim)))
            except RuntimeError:
                sizes.append(-1)
        return tuple(sizes)


def tensor_meta(t: torch.Tensor) -> TensorMeta:
    """Read the metadata of ``t`` without touching its values (safe on meta/fake tensors)."""
    grad_fn = t.grad_fn
    return TensorMeta(
        shape=shape_of(t),
        dtype=dtype_name(t.dtype),
        device=device_name(t.device),
        requires_grad=bool(t.requires_grad),
        grad_fn=type(grad_fn).__name__ if grad_fn is not None else None,
        is_leaf=bool(t.is_leaf),
    )


def fmt_shape(shape: tuple[int, ...] | list[int]) -> str:
    """Write a shape as Python writes a tuple: ``()``, ``(3,)``, ``(2, 3)``."""
    dims = tuple(shape)
    if len(dims) == 1:
        return f"({dims[0]},)"
    return "(" + ", ".join(str(d) for d in dims) + ")"


_RANK_WORDS = {0: N_("scalar"), 1: N_("vector"), 2: N_("matrix")}


def rank_word(rank: int) -> str:
    """0 -> scalar, 1 -> vector, 2 -> matrix, n -> 'n-d tensor' (in the current language)."""
    word = _RANK_WORDS.get(rank)
    return tr(word) if word is not None else tr("{rank}-d tensor", rank=rank)


def human_bytes(n: int | float) -> str:
    """Bytes in binary units: ``512 B``, ``1.5 KiB``, ``64.0 MiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover - loop always returns

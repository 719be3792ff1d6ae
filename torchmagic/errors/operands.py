"""Operands from argument values: what the explainer and the trace say about each input of an op."""

from __future__ import annotations

from typing import Any

import torch

from torchmagic.core.meta import device_name, dtype_name, shape_of
from torchmagic.errors.report import Operand

__all__ = ["operand"]

_DTYPES: dict[torch.dtype, str] = {}  # names cached: the trace asks once per op, on a hot path
_DEVICES: dict[torch.device, str] = {}


def operand(value: Any, label: str, named: bool = False) -> Operand:
    """An :class:`~torchmagic.errors.report.Operand` for one argument value."""
    if isinstance(value, torch.Tensor):
        dt, dev = value.dtype, value.device
        dtype = _DTYPES.get(dt)
        if dtype is None:
            dtype = _DTYPES[dt] = dtype_name(dt)
        device = _DEVICES.get(dev)
        if device is None:
            if len(_DEVICES) > 64:
                _DEVICES.clear()
            device = _DEVICES[dev] = device_name(dev)
        try:
            shape = tuple(value.shape)  # ints already: the common case, without shape_of's conversions
        except RuntimeError:  # a nested tensor: its ragged sizes need shape_of
            shape = shape_of(value)
        try:
            contiguous = value.is_contiguous()
        except RuntimeError:  # a layout without strides (sparse, nested)
            contiguous = True
        return Operand(label, "tensor", shape, dtype, device, named, value.requires_grad, contiguous)
    if isinstance(value, (bool, int, float, complex)):
        return Operand(label=label or repr(value), kind="scalar", shape=(), dtype=type(value).__name__, named=named)
    return Operand(label=label or type(value).__name__, kind="value", named=named)


"""tensors.summary: the one-line facts of tensors, arrays, modules and other values."""

from __future__ import annotations

import math

import numpy as np
import torch

from torchmagic.tensors.render import summary_line
from torchmagic.tensors.summary import array_row, is_array, module_row, summary_row, tensor_row


def test_tensor_row_facts_and_finite_statistics() -> None:
    t = torch.tensor([[1.0, math.inf], [3.0, math.nan]])
    row = tensor_row("t", t, 1000)
    assert (row.kind, row.shape, row.dtype, row.device, row.nbytes, row.grad) == (
        "Tensor", (2, 2), "float32", "cpu", 16, "")
    assert row.stats is not None and (row.stats.minimum, row.stats.maximum, row.stats.finite) == (1.0, 3.0, 2)
    assert summary_line(row) == "Tensor (2, 2) float32 cpu · [1, 3] μ=2 σ=1.414 · 1 NaN, 1 +Inf"


def test_grad_states() -> None:
    w = torch.ones(2, requires_grad=True)
    assert tensor_row("w", w, 10).grad == "requires grad"
    (w * 2).sum().backward()
    assert tensor_row("w", w, 10).grad == "requires grad, .grad set"
    assert tensor_row("y", w * 3, 10).grad == "MulBackward0"
    p = torch.nn.Parameter(torch.ones(3))
    assert tensor_row("p", p, 10).kind == "Parameter"


def test_tensors_without_readable_values_say_why() -> None:
    row = tensor_row("m", torch.ones(3, device="meta"), 10)
    assert row.stats is None and row.note == "meta tensor"
    assert tensor_row("e", torch.ones(0), 10).note == "empty tensor"
    assert tensor_row("s", torch.ones(2, 2).to_sparse(), 10).note == "sparse_coo layout"


def test_arrays_modules_and_other_values() -> None:
    a = np.arange(6.0).reshape(2, 3)
    assert is_array(a) and not is_array(torch.ones(1)) and not is_array([1])
    row = array_row("a", a, 100)
    assert (row.kind, row.shape, row.dtype, row.nbytes) == ("ndarray", (2, 3), "float64", 48)
    assert row.stats is not None and row.stats.maximum == 5.0
    assert array_row("s", np.array(["x"]), 100).note == "dtype torch cannot read"
    model = torch.nn.Sequential(torch.nn.Linear(10, 20), torch.nn.ReLU(), torch.nn.Linear(20, 2))
    mod = module_row("model", model)
    assert (mod.kind, mod.note, mod.nbytes, mod.dtype) == ("Sequential", "262 parameters in 4 tensors", 1048,
                                                          "float32")
    assert module_row("r", torch.nn.ReLU()).note == "0 parameters"
    other = summary_row("n", [1, 2, 3], 10)
    assert (other.kind, other.note) == ("list", "[1, 2, 3]")
    assert summary_row("t", torch.ones(1), 10).kind == "Tensor"


def test_nothing_is_kept_and_nothing_tracks_autograd() -> None:
    import gc
    import weakref

    w = torch.randn(4, requires_grad=True)
    row = tensor_row("w", w, 10)
    ref = weakref.ref(w)
    del w
    gc.collect()
    assert ref() is None and row.stats is not None

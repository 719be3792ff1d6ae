"""tensorinfo.inspect: the facts of tensors, arrays, modules and values."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from torchmagic.options import options_for
from torchmagic.tensors.inspect import InfoOptions, inspect_many, inspect_one, sharing
from torchmagic.tensors.report import ArrayReport, ModuleReport, TensorReport, ValueReport

OPTS = options_for(InfoOptions)


def _tensor(name: str, obj: object, ns: dict[str, object] | None = None) -> TensorReport:
    r = inspect_one(name, obj, ns or {}, OPTS)
    assert isinstance(r, TensorReport)
    return r


def test_tensor_facts() -> None:
    x = torch.arange(6.0).reshape(2, 3)
    r = _tensor("x", x)
    assert (r.rank, r.rank_word, r.shape, r.dtype, r.device) == (2, "matrix", (2, 3), "float32", "cpu")
    assert r.strides == (3, 1) and r.contiguous is True and r.numel == 6 and r.nbytes == 24
    assert r.layout == "strided" and r.pinned is False and not r.requires_grad
    assert r.stats is not None and r.stats.maximum == 5.0
    assert r.preview.startswith("[[0., 1., 2.]")
    t = _tensor("xt", x.t())
    assert t.contiguous is False and t.strides == (1, 3)


def test_grad_state_and_grad_norm() -> None:
    w = torch.ones(3, requires_grad=True)
    (w * torch.tensor([3.0, 0.0, 4.0])).sum().backward()
    r = _tensor("w", w)
    assert r.requires_grad and r.is_leaf and r.grad_fn is None
    assert r.grad == "(3,) float32, norm 5"
    y = w * 2
    ry = _tensor("y", y)
    assert ry.grad_fn == "MulBackward0" and not ry.is_leaf and ry.grad is None
    assert any("Not a leaf" in n for n in ry.notes)


def test_inspection_keeps_nothing_alive_and_changes_nothing() -> None:
    import gc
    import weakref

    t = torch.randn(100, requires_grad=True)
    values = t.detach().clone()
    r = _tensor("t", t)
    assert t.grad is None and t.grad_fn is None and torch.equal(t.detach(), values)
    ref = weakref.ref(t)
    del t
    gc.collect()
    assert ref() is None
    json.dumps(r.to_dict())


def test_sharing_with_numpy_and_views() -> None:
    g = np.arange(4.0)
    shared = torch.from_numpy(g)
    copied = torch.tensor(g)
    ns = {"g": g, "shared": shared, "copied": copied}
    assert any("NumPy array `g`" in s for s in sharing("shared", shared, ns))
    assert sharing("copied", copied, ns) == []
    o = torch.zeros(3, 4)
    v = o[:, 1]
    ns2 = {"o": o, "v": v}
    assert sharing("v", v, ns2) == ["a view of tensor `o` (changing one changes the other)"]
    assert any("`v` is a view of it" in s for s in sharing("o", o, ns2))
    arr = inspect_one("g", g, ns, OPTS)
    assert isinstance(arr, ArrayReport)
    assert any("`shared`" in s for s in arr.sharing)
    assert "shares this memory" in arr.from_numpy and "copies" in arr.tensor_copy


def test_values_and_lists() -> None:
    r = inspect_one("v", [[1, 2], [3, 4]], {}, OPTS)
    assert isinstance(r, ValueReport) and r.ok
    assert "matrix of shape (2, 2), dtype int64" in r.as_tensor
    bad = inspect_one("v", [[1, 2], [3]], {}, OPTS)
    assert isinstance(bad, ValueReport) and not bad.ok and "fails" in bad.as_tensor
    f = inspect_one("f", 2.5, {}, OPTS)
    assert isinstance(f, ValueReport) and "scalar of shape (), dtype float32" in f.as_tensor
    s = inspect_one("s", "hello", {}, OPTS)
    assert isinstance(s, ValueReport) and not s.ok


def test_module_table() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    model[0].bias.requires_grad_(False)
    r = inspect_one("model", model, {}, OPTS)
    assert isinstance(r, ModuleReport)
    names = [row.name for row in r.rows]
    assert names[:4] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert "1.running_mean" in names
    assert r.total_params == 12 + 4 + 4 + 4 and r.trainable_params == 12 + 8
    assert r.devices == ["cpu"]


@pytest.mark.parametrize(
    "make",
    [
        lambda: torch.tensor(3.0),
        lambda: torch.ones(0, 3),
        lambda: torch.ones(10**6, 10**6, device="meta"),
        lambda: torch.randn(4, 4).to_sparse(),
        lambda: torch.randn(3, dtype=torch.complex64),
        lambda: torch.tensor([True, False]),
        lambda: torch.nn.Parameter(torch.ones(2)),
        lambda: torch.quantize_per_tensor(torch.rand(4), 0.1, 0, torch.quint8),
        lambda: torch.nested.nested_tensor([torch.ones(2), torch.ones(3)]),
        lambda: torch.ones(3, dtype=torch.float16),
    ],
)
def test_odd_tensors_do_not_crash(make: object) -> None:
    t = make()  # type: ignore[operator]
    report = inspect_many([("t", t)], {}, options_for(InfoOptions, image=True))
    text = report.to_text()
    assert "t" in text and report.to_html()
    json.dumps(report.to_dict())


def test_big_tensor_is_sampled() -> None:
    t = torch.randn(2048, 2048)
    r = _tensor("t", t)
    assert r.stats is not None and r.stats.sampled and r.stats.count <= OPTS.stats_max_elements


def test_a_bool_tensor_keeps_its_values_and_counts() -> None:
    """A bool tensor has no float magnitudes to judge: its preview and counts are shown, not a failure note."""
    r = inspect_one("b", torch.tensor([True, False, True]), {}, OPTS)
    assert isinstance(r, TensorReport)
    assert r.notes == [] and r.preview == "[ True, False,  True]"
    assert r.stats is not None and r.stats.note == "2 True, 1 False"

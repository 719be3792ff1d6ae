"""The pure rules of %%device: sync reasons, copies, directions, display frames (no mode, no cell)."""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any

import numpy as np
import pytest
import torch

from torchmagic.device import rules
from torchmagic.device.rules import (
    HOST_COPY_WHY,
    copy_devices,
    copy_source,
    direction,
    from_display,
    func_name,
    host_copy_waits,
    is_mask,
    sync_reason,
)

X = torch.arange(4.0)
MASK = X > 1
IDX = torch.tensor([0, 2])


def test_direction_words() -> None:
    assert direction("cpu", "cuda:0") == "host→device"
    assert direction("cuda:0", "cpu") == "device→host"
    assert direction("cuda:0", "cuda:1") == "device→device"
    assert direction("meta", "cuda") == "device→device"


def test_func_name_is_the_bare_name_rules_look_up() -> None:
    assert func_name(torch.Tensor.item) == "item"
    assert func_name(torch.where) == "where"
    assert func_name(torch.Tensor.__getitem__) == "__getitem__"
    assert func_name(torch.Tensor.shape.__get__) == "__get__"


@pytest.mark.parametrize("name", sorted(rules.SYNC_CALLS))
def test_every_always_waiting_call_has_a_reason(name: str) -> None:
    why = sync_reason(name, (X,), {})
    assert why == rules.SYNC_CALLS[name] and why


@pytest.mark.parametrize(
    ("index", "mask"),
    [(MASK, True), ((slice(None), MASK), True), ([MASK], True), (MASK.to(torch.uint8), True),
     (IDX, False), (0, False), ((slice(None), IDX), False), (None, False)],
)
def test_mask_indexing_waits_and_integer_indexing_does_not(index: Any, mask: bool) -> None:
    assert is_mask(index) is mask
    for name in ("__getitem__", "__setitem__", "index_put_", "index_put"):
        assert (sync_reason(name, (X, index), {}) is not None) is mask
    assert (sync_reason("index_put", (X,), {"indices": index}) is not None) is mask


def test_value_dependent_sizes() -> None:
    assert sync_reason("where", (MASK,), {}) is not None                       # torch.where(cond)
    assert sync_reason("where", (), {"condition": MASK}) is not None
    assert sync_reason("where", (MASK, X, 0.0), {}) is None                    # the three-argument form
    reps = torch.tensor([1, 0, 2, 1])
    assert sync_reason("repeat_interleave", (reps,), {}) is not None           # torch.repeat_interleave(r)
    assert sync_reason("repeat_interleave", (X, reps), {}) is not None
    assert sync_reason("repeat_interleave", (X,), {"repeats": reps}) is not None
    assert sync_reason("repeat_interleave", (X, 2), {}) is None                # a Python int: size known
    assert sync_reason("repeat_interleave", (X, reps), {"output_size": 4}) is None
    assert sync_reason("add", (X, X), {}) is None
    assert sync_reason("masked_fill", (X, MASK, 0.0), {}) is None


def test_copy_source_reads_the_argument_the_call_copies_from() -> None:
    meta = torch.empty(2, device="meta")
    assert copy_source("to", (meta, "cpu"), {}) == "meta"
    assert copy_source("copy_", (X, meta), {}) == "meta"
    assert copy_source("copy_", (X,), {"src": meta}) == "meta"
    assert copy_source("new_tensor", (X, [1.0]), {}) == "cpu"                 # host data
    assert copy_source("new_tensor", (X,), {"data": meta}) == "meta"
    assert copy_source("tensor", ([1, 2],), {}) == "cpu"
    assert copy_source("as_tensor", (np.ones(2),), {}) == "cpu"
    assert copy_source("asarray", (), {"obj": meta}) == "meta"
    assert copy_source("to", (), {}) is None


def test_copy_devices_only_when_the_output_moved() -> None:
    meta = torch.empty(2, device="meta")
    assert copy_devices("to", (X, "meta"), {}, meta) == ("cpu", "meta")
    assert copy_devices("to", (X, torch.float64), {}, X.double()) is None      # dtype only
    assert copy_devices("type", (X,), {}, "torch.FloatTensor") is None         # x.type() is a string
    assert copy_devices("tensor", ([1.0],), {"device": "meta"}, meta) == ("cpu", "meta")
    assert copy_devices("ones", ((2,),), {"device": "meta"}, meta) is None     # made there: not a copy
    assert copy_devices("empty_like", (X,), {"device": "meta"}, meta) is None


def test_blocking_copies_to_the_host_wait_on_async_devices_only() -> None:
    gpu = {"cuda"}
    assert host_copy_waits("to", (X, "cpu"), {}, "cuda:0", "cpu", gpu)
    assert host_copy_waits("copy_", (X, X), {}, "cuda:0", "cpu", gpu)
    assert not host_copy_waits("to", (X, "cpu"), {"non_blocking": True}, "cuda:0", "cpu", gpu)
    assert not host_copy_waits("copy_", (X, X, True), {}, "cuda:0", "cpu", gpu)     # copy_(src, True)
    assert not host_copy_waits("cpu", (X,), {}, "cuda:0", "cpu", gpu)               # flagged before the call
    assert not host_copy_waits("to", (X, "cuda"), {}, "cpu", "cuda:0", gpu)         # to the device
    assert not host_copy_waits("to", (X, "cpu"), {}, "meta", "cpu", gpu)            # meta is not async
    assert HOST_COPY_WHY


class _Code:
    def __init__(self, name: str, filename: str) -> None:
        self.co_name = name
        self.co_filename = filename


class _Frame:
    """A stand-in for a frame chain (only f_code and f_back are read)."""

    def __init__(self, chain: list[tuple[str, str]]) -> None:
        (name, filename), rest = chain[0], chain[1:]
        self.f_code = _Code(name, filename)
        self.f_back = _Frame(rest) if rest else None


def _chain(*frames: tuple[str, str]) -> FrameType:
    return _Frame(list(frames))  # type: ignore[return-value]


def test_calls_from_a_library_repr_are_display_machinery() -> None:
    cell = "<cell>"
    assert from_display(_chain(("__repr__", "lib.py"), ("<module>", cell)), torch.ones, cell)
    assert from_display(_chain(("_tensor_str", "torch/_tensor_str.py"), ("show", "ipy.py")), torch.ones, cell)
    assert not from_display(_chain(("forward", "nn.py"), ("<module>", cell)), torch.ones, cell)
    # the walk stops at the cell: a repr further out (IPython showing Out[N]) is not the cell's call's
    assert not from_display(_chain(("<module>", cell), ("__repr__", "ipy.py")), torch.ones, cell)
    # torch's own dispatch frames (torch/overrides.py) are not callers
    overrides = rules._OVERRIDES
    assert not from_display(_chain(("__repr__", overrides), ("<module>", cell)), torch.ones, cell)
    assert not from_display(None, torch.ones, cell)


def test_a_real_frame_walk() -> None:
    here = sys._getframe().f_code.co_filename

    class Box:
        def __repr__(self) -> str:
            return str(from_display(sys._getframe(), torch.ones, here))

    assert repr(Box()) == "True"
    assert from_display(sys._getframe(), torch.ones, here) is False

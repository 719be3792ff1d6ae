"""Memory: tracked storages (peak, net, views, other devices), allocator statistics."""

from __future__ import annotations

import gc
import weakref

import torch

from tests.device_fakes import FakeCuda
from torchmagic.device.memory import AllocatorStats, TensorTracker


def test_peak_and_net_follow_creation_and_freeing() -> None:
    tr = TensorTracker(top_k=3, device=torch.device("cpu"))
    a = torch.empty(1000)  # 4000 B
    tr.add(a, "torch.empty")
    b = torch.empty(500)  # 2000 B
    tr.add(b, "torch.empty")
    assert (tr.live, tr.peak) == (6000, 6000)
    del b
    gc.collect()
    assert (tr.live, tr.peak) == (4000, 6000)
    largest = tr.finish({"a": a})
    assert [t.nbytes for t in largest] == [4000, 2000]
    assert (largest[0].alive, largest[0].freed, largest[0].names) == (1, 0, ("a",))
    assert (largest[1].alive, largest[1].freed, largest[1].names) == (0, 1, ())
    assert largest[0].shape == (1000,) and largest[0].dtype == "float32"


def test_views_and_inplace_results_are_not_new_memory() -> None:
    tr = TensorTracker(device=torch.device("cpu"))
    before = torch.empty(100)  # made before the "cell"
    view_of_old = before[:10]
    tr.add(view_of_old, "Tensor.__getitem__", {int(before.untyped_storage()._cdata)})
    assert tr.live == 0
    new = torch.empty(100)
    tr.add(new, "torch.empty")
    tr.add(new, "Tensor.add_")  # in-place: same tensor
    v = new.view(10, 10)
    tr.add(v, "Tensor.view", {int(new.untyped_storage()._cdata)})
    assert tr.live == 400
    del new
    gc.collect()
    assert tr.live == 400  # the view keeps the storage alive
    del v
    gc.collect()
    assert tr.live == 0 and tr.peak == 400
    tr.finish()


def test_other_devices_are_listed_but_not_counted() -> None:
    tr = TensorTracker(device=torch.device("cpu"))
    m = torch.empty(1000, device="meta")
    tr.add(m, "Tensor.to")
    assert tr.live == 0
    (rec,) = tr.finish({"m": m})
    assert rec.device == "meta" and rec.nbytes == 4000 and rec.names == ("m",)


def test_tracker_keeps_no_tensor_alive() -> None:
    tr = TensorTracker(top_k=5)
    t = torch.empty(10)
    tr.add(t, "torch.empty")
    ref = weakref.ref(t)
    del t
    gc.collect()
    assert ref() is None
    (rec,) = tr.finish()
    assert rec.alive == 0 and rec.freed == 1


def test_largest_line_comes_from_where() -> None:
    tr = TensorTracker(top_k=1, where=lambda: (7, "y = x @ x", 0, ""))
    small, big = torch.empty(1), torch.empty(100)
    tr.add(small, "torch.empty")
    tr.add(big, "Tensor.matmul")
    (rec,) = tr.finish()
    assert (rec.line, rec.source, rec.op, rec.nbytes) == (7, "y = x @ x", "Tensor.matmul", 400)


def test_allocator_stats_reset_peak_first_and_report_relative_numbers() -> None:
    cuda = FakeCuda()
    stats = AllocatorStats(cuda, "cuda:0")
    stats.start()
    assert cuda.kinds() == ["memory_allocated", "reset_peak"]
    cuda.allocated, cuda.peak = 1500, 5000  # the cell: peak 4000 above, net +500
    mem = stats.stop([])
    assert (mem.before_bytes, mem.peak_bytes, mem.net_bytes) == (1000, 4000, 500)
    assert mem.source == "allocator" and mem.device == "cuda:0"


def test_a_parameter_made_from_a_tracked_tensor_keeps_it_counted_and_named() -> None:
    """nn.Linear wraps the torch.empty it made in a Parameter: another tensor object, same storage."""
    tr = TensorTracker(top_k=2, device=torch.device("cpu"))
    t = torch.empty(100)
    tr.add(t, "torch.empty")
    p = torch.nn.Parameter(t)
    del t
    gc.collect()
    assert tr.live == 400  # the storage lives on in the parameter
    lin = torch.nn.Linear(1, 1)
    lin.weight = p
    (rec,) = tr.finish({"lin": lin})
    assert rec.alive == 1 and rec.names == ("lin.weight",) and rec.op == "torch.empty"


def test_a_storage_is_freed_when_its_last_holder_goes() -> None:
    tr = TensorTracker(device=torch.device("cpu"))
    t = torch.empty(100)
    tr.add(t, "torch.empty")
    p = torch.nn.Parameter(t)
    view = p[:10]
    del t, p
    gc.collect()
    assert tr.live == 400  # a view of the parameter still holds the storage
    del view
    gc.collect()
    assert tr.live == 0 and tr.peak == 400
    tr.finish()


def test_a_freed_storage_whose_address_is_reused_keeps_its_own_row() -> None:
    """Issue 13: the (64, 20) activation of `out = model(xb)` was listed as "now: out".

    Its storage was freed and the output's storage was allocated at the same
    address; the row must say freed, and only the output's row is `out`.
    """
    tr = TensorTracker(top_k=5, device=torch.device("cpu"))
    first = torch.empty(64, 20)
    tr.add(first, "F.relu")
    key = int(first.untyped_storage()._cdata)
    del first
    gc.collect()
    out = None
    for _ in range(100):  # the allocator hands the freed block out again
        candidate = torch.empty(64, 20)
        if int(candidate.untyped_storage()._cdata) == key:
            out = candidate
            break
    if out is None:
        import pytest

        pytest.skip("the allocator did not reuse the address")
    tr.add(out, "F.linear")
    rows = tr.finish({"out": out})
    assert [(r.op, r.names, r.alive, r.freed) for r in rows] == [("F.relu", (), 0, 1), ("F.linear", ("out",), 1, 0)]


def test_tensors_made_on_one_line_by_one_op_are_one_row_with_a_count() -> None:
    tr = TensorTracker(top_k=3, where=lambda: (3, "out = model(xb)", 7, "<1>.0"), device=torch.device("cpu"))
    kept = []
    for i in range(5):
        t = torch.empty(64, 20)
        tr.add(t, "F.linear")
        if i == 4:
            kept.append(t)
    small = torch.empty(2)
    tr.add(small, "torch.empty")
    rows = tr.finish({"out": kept[0]}, modules=lambda keys: f"model.0 ({keys})")
    assert [(r.count, r.alive, r.freed, r.names, r.module) for r in rows] == [
        (5, 1, 4, ("out",), "model.0 ([7])"), (1, 1, 0, (), "model.0 ([7])"),
    ]
    assert rows[1].unnamed == 1 and rows[0].unnamed == 0


def test_a_loop_keeps_the_rows_memory_bounded() -> None:
    tr = TensorTracker(top_k=1, device=torch.device("cpu"))
    for _ in range(10_000):
        tr.add(torch.empty(16), "torch.empty")
    assert len(tr._storages) < 64  # freed storages are forgotten as the loop goes
    (row,) = tr.finish()
    assert (row.count, row.freed) == (10_000, 10_000)


def test_allocated_only_grows() -> None:
    tr = TensorTracker(device=torch.device("cpu"))
    a = torch.empty(100)
    tr.add(a, "torch.empty")
    del a
    gc.collect()
    tr.add(torch.empty(50), "torch.empty")
    assert (tr.allocated, tr.live, tr.peak) == (600, 0, 400)
    tr.finish()

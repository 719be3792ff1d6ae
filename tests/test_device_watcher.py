"""The %%device watcher in a real cell: copies across devices (meta stands in for the GPU), sync points."""

from __future__ import annotations

from typing import Any

import torch

from torchmagic.core.cell import Cell
from torchmagic.device.ops import OpTimer
from torchmagic.device.timing import HostClock
from torchmagic.device.watcher import Recorders, Watcher


def watch(ip: Any, src: str, sync_types: set[str] | None = None, target: str = "cpu") -> Watcher:
    ip.user_ns["torch"] = torch
    cell = Cell.compile(ip, src, "%%device test")
    kwargs: dict[str, Any] = {} if sync_types is None else {"sync_types": sync_types}
    w = Watcher(cell, target, Recorders(OpTimer(HostClock())), **kwargs)
    cell.run([w])
    return w


def test_to_copy_and_copy_are_transfers_with_line_direction_bytes(ip: Any) -> None:
    w = watch(
        ip,
        "x = torch.ones(8, 4)\n"          # line 2
        "m = x.to('meta')\n"              # line 3: 128 B cpu -> meta
        "buf = torch.empty(8, 4, device='meta')\n"
        "buf.copy_(x)\n"                  # line 5: copy_ cpu -> meta
        "y = x + 1\n",                    # no transfer
    )
    rows = w.transfer_rows()
    assert [(r.line, r.op, r.src, r.dst, r.direction, r.nbytes, r.count) for r in rows] == [
        (3, "Tensor.to", "cpu", "meta", "host→device", 128, 1),
        (5, "Tensor.copy_", "cpu", "meta", "host→device", 128, 1),
    ]
    assert rows[0].source == "m = x.to('meta')" and rows[0].shape == (8, 4) and rows[0].dtype == "float32"
    assert w.transfer_count == 2 and w.transfer_bytes == 256


def test_copies_in_a_loop_and_inside_modules_are_counted_on_the_users_line(ip: Any) -> None:
    w = watch(
        ip,
        "lin = torch.nn.Linear(4, 3)\n"
        "for i in range(5):\n"
        "    z = torch.ones(2, dtype=torch.float64).to('meta')\n"   # line 4, x5, 16 B each
        "lin = lin.to('meta')\n",                                    # line 5: weight + bias
    )
    by_line = {r.line: r for r in w.transfer_rows()}
    assert by_line[4].count == 5 and by_line[4].nbytes == 80 and by_line[4].dtype == "float64"
    assert by_line[5].count == 2 and by_line[5].nbytes == (12 + 3) * 4
    # Module.to calls Tensor.to once per parameter from nn.Module's own frames
    assert by_line[5].op == "Tensor.to" and by_line[5].direction == "host→device"
    assert sorted(by_line) == [4, 5]


def test_copy_like_calls_are_transfers_only_when_the_device_changes(ip: Any) -> None:
    w = watch(
        ip,
        "x = torch.ones(4)\n"                              # 2
        "a = torch.as_tensor(x, device='meta')\n"          # 3: 16 B cpu -> meta
        "b = x.new_tensor([1.0, 2.0], device='meta')\n"    # 4: host data -> meta, 8 B
        "c = torch.asarray([1, 2, 3], device='meta')\n"    # 5: host ints -> meta, 24 B
        "d = torch.zeros(4); d.copy_(x)\n"                 # 6: same device, no transfer
        "e = x.to(torch.float64); f = x.type(torch.int32)\n"  # 7: dtype only
        "g = torch.as_tensor(x); h = x.to('cpu')\n"        # 8: already there
        "m = torch.empty(2, device='meta'); m.copy_(torch.ones(2, dtype=torch.float64))\n",  # 9: src on cpu
    )
    got = [(r.line, r.op, r.src, r.dst, r.nbytes) for r in w.transfer_rows()]
    assert got == [
        (3, "torch.as_tensor", "cpu", "meta", 16),
        (4, "Tensor.new_tensor", "cpu", "meta", 8),
        (5, "torch.asarray", "cpu", "meta", 24),
        (9, "Tensor.copy_", "cpu", "meta", 8),  # the destination's bytes: 2 float32
    ]


def test_creating_a_tensor_on_a_device_is_not_a_transfer(ip: Any) -> None:
    w = watch(
        ip,
        "x = torch.ones(3, 4)\n"
        "a = torch.ones(3, device='meta')\n"
        "b = torch.empty_like(x, device='meta')\n"
        "c = torch.zeros_like(x, device='meta')\n"
        "d = x.new_zeros(5, device='meta')\n"
        "e = torch.full((2,), 7.0, device='meta')\n"
        "f = torch.randn(2, 2, device='meta')\n",
    )
    assert w.transfer_rows() == [] and w.transfer_count == 0


def test_torch_tensor_with_a_device_is_one_transfer(ip: Any) -> None:
    w = watch(ip, "t = torch.tensor([1.0, 2.0, 3.0], device='meta')\n")
    (row,) = w.transfer_rows()
    assert (row.line, row.op, row.direction, row.nbytes) == (2, "torch.tensor", "host→device", 12)


def test_sync_points_are_flagged_on_asynchronous_devices(ip: Any) -> None:
    ip.user_ns["torch"] = torch
    src = (
        "x = torch.arange(6.0)\n"   # 2
        "a = x.sum().item()\n"      # 3
        "b = x.tolist()\n"          # 4
        "print(x)\n"                # 5
        "nz = x.nonzero()\n"        # 6
        "if x.sum() > 0:\n"         # 7
        "    pass\n"
        "s = f'{x}'\n"              # 9
        "m = x[x > 2]\n"            # 10
        "x[x > 4] = 0\n"            # 11
        "x[x > 4.5] *= 2\n"           # 12 (reads and writes with a mask)
        "k = x.masked_fill(x > 1, 0)\n"  # 13: no sync
    )
    # the CPU is synchronous: nothing waits
    assert watch(ip, src).sync_rows() == []
    # pretend the CPU were asynchronous to exercise the path a GPU takes
    rows = watch(ip, src, sync_types={"cpu"}).sync_rows()
    got = [(r.line, r.op) for r in rows]
    assert got == [
        (3, "Tensor.item"), (4, "Tensor.tolist"), (5, "print"), (6, "Tensor.nonzero"), (7, "Tensor.__bool__"),
        (9, "print"), (10, "Tensor.__getitem__"), (11, "Tensor.__setitem__"),
        (12, "Tensor.__getitem__"), (12, "Tensor.__setitem__"),
    ]
    assert all(r.device == "cpu" and r.count == 1 and r.why for r in rows)
    assert rows[0].source == "a = x.sum().item()"


def test_value_dependent_ops_are_sync_points_and_their_cheap_forms_are_not(ip: Any) -> None:
    ip.user_ns["torch"] = torch
    src = (
        "x = torch.tensor([3.0, 0.0, 1.0, 2.0])\n"                   # 2
        "r = torch.tensor([1, 0, 2, 1])\n"                           # 3
        "w1 = torch.where(x > 1)\n"                                  # 4: sync
        "w3 = torch.where(x > 1, x, 0.0)\n"                          # 5: no
        "a = x.repeat_interleave(r)\n"                               # 6: sync
        "b = torch.repeat_interleave(x, 2)\n"                        # 7: no
        "c = torch.repeat_interleave(x, r, output_size=4)\n"         # 8: no
        "d = torch.repeat_interleave(r)\n"                           # 9: sync
        "e = torch.bincount(r)\n"                                    # 10: sync
        "f = x.unique_consecutive()\n"                               # 11: sync
        "g = torch.equal(x, x)\n"                                    # 12: sync
        "h = torch.allclose(x, x)\n"                                 # 13: sync
        "i = torch.isclose(x, x)\n"                                  # 14: no (a tensor)
        "j = x[:1].is_nonzero()\n"                                   # 15: sync
        "k = x.index_put((x > 1,), torch.tensor(0.0))\n"             # 16: sync
        "l = x.index_put((torch.tensor([0, 1]),), torch.tensor(0.0))\n"  # 17: no
        "m = x[torch.tensor([0, 2])]\n"                              # 18: no (integer index)
        "n = x.view(2, 2)[:, torch.tensor([True, False])]\n"         # 19: sync (mask inside a tuple)
        "o = x.masked_fill(x > 1, 0.0)\n"                            # 20: no
    )
    assert watch(ip, src).sync_rows() == []
    rows = watch(ip, src, sync_types={"cpu"}).sync_rows()
    assert [(r.line, r.op) for r in rows] == [
        (4, "torch.where"), (6, "Tensor.repeat_interleave"), (9, "torch.repeat_interleave"),
        (10, "torch.bincount"), (11, "Tensor.unique_consecutive"), (12, "torch.equal"),
        (13, "torch.allclose"), (15, "Tensor.is_nonzero"), (16, "Tensor.index_put"),
        (19, "Tensor.__getitem__"),
    ]
    assert all(r.count == 1 and r.why for r in rows)


def test_a_repr_is_display_machinery_not_an_op(ip: Any) -> None:
    w = watch(
        ip,
        "class Box:\n"
        "    def __repr__(self):\n"
        "        return 'Box(' + str(torch.ones(3).sum().item()) + ')'\n"
        "s = repr(Box())\n"
        "y = torch.ones(2) * 2\n",
        sync_types={"cpu"},
    )
    ops = {s.op for s in w.ops.stats(20)}
    assert ops == {"torch.ones", "Tensor.mul"}  # not the repr's ones/sum/item
    # its .item() still waits for the device: reported as printing, on the innermost
    # cell line (the __repr__ body, line 4, as for any function defined in the cell)
    assert [(r.line, r.op) for r in w.sync_rows()] == [(4, "print")]


def test_the_watcher_leaves_no_mode_behind(ip: Any) -> None:
    from torch.overrides import _get_current_function_mode_stack
    from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

    before = (len(_get_current_function_mode_stack()), len(_get_current_dispatch_mode_stack()))
    cell = Cell.compile(ip, "raise KeyboardInterrupt\n", "%%device test")
    w = Watcher(cell, "cpu", Recorders(OpTimer(HostClock())))
    try:
        cell.run([w])
    except KeyboardInterrupt:
        pass
    after = (len(_get_current_function_mode_stack()), len(_get_current_dispatch_mode_stack()))
    assert after == before

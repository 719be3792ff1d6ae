"""The watching modes: copies across devices (meta stands in for the GPU), sync points."""

from __future__ import annotations

from typing import Any

import torch

from torchmagic.core.cell import Cell
from torchmagic.device.ops import OpTimer
from torchmagic.device.timing import HostClock
from torchmagic.device.transfers import Watcher, direction


def watch(ip: Any, src: str, sync_types: set[str] | None = None, target: str = "cpu") -> Watcher:
    ip.user_ns["torch"] = torch
    cell = Cell.compile(ip, src, "%%device test")
    kwargs: dict[str, Any] = {} if sync_types is None else {"sync_types": sync_types}
    w = Watcher(cell.filename, cell.lines, target, OpTimer(HostClock()), None, cell.locals, **kwargs)
    cell.run([w])
    return w


def test_direction_words() -> None:
    assert direction("cpu", "cuda:0") == "host→device"
    assert direction("cuda:0", "cpu") == "device→host"
    assert direction("cuda:0", "cuda:1") == "device→device"


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
        (3, "aten._to_copy", "cpu", "meta", "host→device", 128, 1),
        (5, "aten.copy_", "cpu", "meta", "host→device", 128, 1),
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
        (3, "item"), (4, "tolist"), (5, "print"), (6, "nonzero"), (7, "bool"), (9, "print"),
        (10, "aten.index"), (11, "aten.index_put_"), (12, "aten.index"), (12, "aten.index_put_"),
    ]
    assert all(r.device == "cpu" and r.count == 1 and r.why for r in rows)
    assert rows[0].source == "a = x.sum().item()"


def test_the_watcher_leaves_no_mode_behind(ip: Any) -> None:
    from torch.overrides import _get_current_function_mode_stack
    from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

    before = (len(_get_current_function_mode_stack()), len(_get_current_dispatch_mode_stack()))
    cell = Cell.compile(ip, "raise KeyboardInterrupt\n", "%%device test")
    w = Watcher(cell.filename, cell.lines, "cpu", OpTimer(HostClock()))
    try:
        cell.run([w])
    except KeyboardInterrupt:
        pass
    after = (len(_get_current_function_mode_stack()), len(_get_current_dispatch_mode_stack()))
    assert after == before

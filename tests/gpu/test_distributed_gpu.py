"""%%distributed with nccl on real GPUs.  Skipped on machines without CUDA.

One rank per GPU (``-n`` is the number of GPUs, at most 2): the pool picks
nccl by itself (``--backend auto``), each rank's device is its
``LOCAL_RANK``, and the flight recorder (native in nccl) lists the
all-reduce with its cell line.  Run with ``python -m pytest tests/gpu -q``.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_nccl_pool_all_reduce_on_gpus(ip: Any, capture: Any) -> None:
    n = min(torch.cuda.device_count(), 2)
    try:
        with capture():
            ip.run_line_magic("distributed", f"start -n {n}")
        front = ip.magics_manager.registry["TorchMagics"]._front()
        assert front.pool.backend == "nccl" and front.pool.devices == [f"cuda:{r}" for r in range(n)]
        with capture():
            res = ip.run_cell(
                "%%distributed -o rep\nimport torch, torch.distributed as dist\n"
                "t = torch.ones(1024, device='cuda') * (dist.get_rank() + 1)\n"
                "dist.all_reduce(t)\ntorch.cuda.synchronize()\n(t[0].item(), str(t.device))"
            )
        assert res.error_in_exec is None, res.error_in_exec
        rep = ip.user_ns["rep"]
        total = float(sum(range(1, n + 1)))
        assert [g.text for g in rep.values] == [str((total, f"cuda:{r}")) for r in range(n)] or n == 1
        (row,) = [c for c in rep.collectives if c.op == "all_reduce"]
        assert row.line == 4 and row.shapes == ((1024,),) and row.dtype == "float32" and row.nbytes == 4096
    finally:
        with capture():
            ip.run_line_magic("distributed", "stop")


def test_nccl_refused_with_more_ranks_than_gpus(ip: Any) -> None:
    from IPython.core.error import UsageError

    res = ip.run_cell(f"%%distributed -n {torch.cuda.device_count() + 1} --backend nccl\nx = 1")
    assert isinstance(res.error_in_exec, UsageError) and "one GPU per rank" in str(res.error_in_exec)

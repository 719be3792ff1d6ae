"""Past one machine, without a cluster: engines started as separate processes join the notebook's pool.

``%distributed start --launcher external`` starts only the controller and
waits; here the engines are started by hand with ``ipengine --file=...``,
exactly what a launcher on another host (MPI, Slurm, SSH) does.  The
process group then spans processes the notebook did not start.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow


def _launch_when_ready(front: Any, procs: list[subprocess.Popen[bytes]], n: int) -> None:
    """What a remote host's launcher does: wait for the connection file, start engines with it."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pool = front.pool
        if pool.cluster is not None:
            path = Path(pool.engine_file())
            if path.exists():
                env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
                for _ in range(n):
                    procs.append(
                        subprocess.Popen(
                            [sys.executable, "-m", "ipyparallel.engine", f"--file={path}", "--log-level=40"],
                            env=env,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                        )
                    )
                return
        time.sleep(0.1)


def test_engines_started_elsewhere_join_and_run_collectives(ip: Any) -> None:
    from IPython.utils.capture import capture_output

    front = ip.magics_manager.registry["TorchMagics"]._front()
    procs: list[subprocess.Popen[bytes]] = []
    helper = threading.Thread(target=_launch_when_ready, args=(front, procs, 2))
    helper.start()
    try:
        with capture_output():
            ip.run_line_magic("distributed", "start -n 2 --launcher external")
        helper.join()
        assert sorted(front.pool.pids) == sorted(p.pid for p in procs)  # the ranks are the processes we started
        with capture_output():
            result = ip.run_cell(
                "%%distributed -o rep\nimport torch, torch.distributed as dist\n"
                "t = torch.tensor([dist.get_rank() + 1.0])\ndist.all_reduce(t)\nt.item()"
            )
        assert result.success, result.error_in_exec
        rep = ip.user_ns["rep"]
        assert [g.text for g in rep.values] == ["3.0"] and rep.collectives[0].op == "all_reduce"
        assert "launcher external" in front.pool.status().to_text()
    finally:
        with capture_output():
            ip.run_line_magic("distributed", "stop")
        helper.join()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                raise AssertionError(f"engine {p.pid} outlived %distributed stop") from None

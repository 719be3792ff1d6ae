"""%%distributed in a real Jupyter kernel: HTML reports, honest failures, interrupts, and no process left behind.

The kernel is this module's own (not the shared one): the last test shuts it
down the way Jupyter does and checks, by PID, that every rank process and the
ipyparallel controller went with it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from tests.kernel.conftest import Kernel, new_kernel

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def own() -> Iterator[tuple[Any, Kernel]]:
    with new_kernel() as pair:
        yield pair


def _html(out: Any, marker: str) -> str:
    found = [d["text/html"] for d in out.displays if marker in d.get("text/html", "")]
    assert found, [d.get("text/plain", "")[:80] for d in out.displays]
    return found[-1]


def test_start_and_a_cell_show_html_reports(own: tuple[Any, Kernel]) -> None:
    _, k = own
    out = k.run("%distributed start -n 2")
    assert out.status == "ok", out.error
    assert "2 ranks · gloo process group" in _html(out, "tm-distributed-pool")
    out = k.run(
        "%%distributed\nimport torch, torch.distributed as dist\nt = torch.ones(3)\ndist.all_reduce(t)\nprint('<b>', t)\nt"
    )
    assert out.status == "ok", out.error
    html = _html(out, "tm-distributed")
    assert "&lt;b&gt; tensor([2., 2., 2.])" in html and "all_reduce" in html and "all ranks" in html
    assert not out.results  # the values are per rank, in the report


def test_a_failing_rank_fails_the_cell(own: tuple[Any, Kernel]) -> None:
    _, k = own
    out = k.run("%%distributed\nif dist.get_rank() == 1:\n    raise KeyError('rank one')")
    assert out.status == "error" and out.error is not None
    assert out.error["ename"] == "DistributedCellError" and "rank 1 failed" in out.error["evalue"]
    assert "rank 1: KeyError" in _html(out, "tm-distributed")


def test_interrupting_the_kernel_interrupts_every_rank(own: tuple[Any, Kernel]) -> None:
    km, k = own
    threading.Timer(2.0, km.interrupt_kernel).start()
    t0 = time.monotonic()
    out = k.run("%%distributed\nimport time\ntime.sleep(60)", timeout=60)
    assert time.monotonic() - t0 < 15
    assert out.status == "error" and out.error["ename"] == "KeyboardInterrupt"
    assert k.run("%%distributed\ndist.barrier()").status == "ok"


def test_ending_the_kernel_leaves_no_process(own: tuple[Any, Kernel]) -> None:
    km, _ = own
    kernel_pid = km.provisioner.process.pid
    children = psutil.Process(kernel_pid).children(recursive=True)
    assert len(children) >= 3  # two ranks and the controller
    km.shutdown_kernel(now=False)  # the way Jupyter ends a kernel: a shutdown request, then exit
    _, alive = psutil.wait_procs(children, timeout=20)
    assert not alive, [(p.pid, p.cmdline()) for p in alive]

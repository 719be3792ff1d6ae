"""A real Jupyter kernel (jupyter_client) shared by the kernel tests."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Outputs:
    """What one execute request produced, by message type."""

    status: str = ""
    displays: list[dict[str, Any]] = field(default_factory=list)  # display_data bundles
    results: list[dict[str, Any]] = field(default_factory=list)  # execute_result bundles
    stdout: str = ""
    stderr: str = ""
    error: dict[str, Any] | None = None


class Kernel:
    def __init__(self, kc: Any) -> None:
        self.kc = kc

    def run(self, code: str, timeout: float = 120) -> Outputs:
        out = Outputs()

        def hook(msg: dict[str, Any]) -> None:
            kind, content = msg["msg_type"], msg["content"]
            if kind == "display_data":
                out.displays.append(content["data"])
            elif kind == "execute_result":
                out.results.append(content["data"])
            elif kind == "stream":
                if content["name"] == "stdout":
                    out.stdout += content["text"]
                else:
                    out.stderr += content["text"]
            elif kind == "error":
                out.error = content

        reply = self.kc.execute_interactive(code, output_hook=hook, timeout=timeout)
        out.status = reply["content"]["status"]
        return out


@contextlib.contextmanager
def new_kernel(**environ: str) -> Iterator[tuple[Any, Kernel]]:
    """A fresh kernel running this checkout, with torchmagic loaded: (its manager, the client).

    ``environ`` adds to the kernel's environment (``LANG="zh_CN.UTF-8"``).
    """
    from jupyter_client.manager import start_new_kernel

    env = {**os.environ, **environ}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    km, kc = start_new_kernel(kernel_name="python3", startup_timeout=120, env=env)
    try:
        k = Kernel(kc)
        assert k.run("%load_ext torchmagic").status == "ok"
        yield km, k
    finally:
        kc.stop_channels()
        if km.is_alive():
            km.shutdown_kernel(now=True)


@pytest.fixture(scope="session")
def kernel() -> Iterator[Kernel]:
    with new_kernel() as (_, k):
        yield k

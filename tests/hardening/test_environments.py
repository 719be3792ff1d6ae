"""Environments: torch.compile'd functions inside traced cells, and the IPython versions.

Compiled code must run compiled under every magic (the backend's graph is
called, not an eager fallback), must not recompile on every call, must give
bitwise the same values and gradients as without torchmagic, and must stay
compiled after the cell (dynamo skips a function it met under a dispatch mode
and, in torch 2.13, keeps skipping it — the modes opt out of that).

The whole in-process suite also runs on IPython 8 (``make test`` runs it in
``.venv-ipy8``, see the Makefile); the version test below names which one ran.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SETUP = """
import torch
compiles, runs = [], []

def counting_backend(gm, example_inputs):
    compiles.append(1)

    def run(*args):
        runs.append(1)
        return gm.forward(*args)

    return run

@torch.compile(backend=counting_backend)
def f(a, b):
    return (a @ b).relu().sum(0) * 2 + torch.sin(a).mean()

ca = torch.randn(8, 8, requires_grad=True)
cb = torch.randn(8, 8)
ref = f(ca, cb)
ref.sum().backward()
ref_grad = ca.grad.clone()
ca.grad = None
"""
CALLS = 5
BODY = f"outs = [f(ca, cb) for _ in range({CALLS})]\nouts[0].sum().backward()"
MAGICS = ["%%tensorinfo", "%%tensorinfo --deep", "%%autograd", "%%device cpu", "%%device meta"]
COUNTS = {"magics": len(MAGICS), "calls per cell": CALLS}


@pytest.fixture
def cip(hip: Any) -> Iterator[Any]:
    assert hip.run_cell(SETUP).success
    yield hip
    import torch

    # dynamo keeps entries in the cell's globals (the user namespace); drop its caches
    # before the shell fixture removes the test's names, or exit prints KeyErrors
    hip.user_ns.pop("f", None)
    torch._dynamo.reset()


def _same(a: Any, b: Any) -> bool:
    import torch

    return (torch.equal(a, b) and a.dtype == b.dtype and a.shape == b.shape and a.stride() == b.stride()
            and a.requires_grad == b.requires_grad)


@pytest.mark.parametrize("magic", MAGICS)
def test_compiled_function_runs_compiled_once_with_identical_results(cip: Any, capture: Any, magic: str) -> None:
    ns = cip.user_ns
    for attempt in range(2):  # the second run of the same cell compiles nothing new
        compiles, runs = len(ns["compiles"]), len(ns["runs"])
        ns["ca"].grad = None
        with capture():
            res = cip.run_cell(f"{magic}\n{BODY}")
        assert res.success, res.error_in_exec
        assert len(ns["runs"]) - runs == CALLS, "the compiled graph did not run (eager fallback)"
        new = len(ns["compiles"]) - compiles
        assert new <= (1 if attempt == 0 else 0), f"{new} compiles for {CALLS} calls"  # one: the mode guard
        assert all(_same(o, ns["ref"]) for o in ns["outs"])
        assert _same(ns["ca"].grad, ns["ref_grad"])
    compiles, runs = len(ns["compiles"]), len(ns["runs"])
    with capture():
        assert cip.run_cell("after = f(ca, cb)").success
    assert len(ns["runs"]) - runs == 1, "the function stopped running compiled after the cell"
    assert len(ns["compiles"]) == compiles and _same(ns["after"], ns["ref"])


def test_ipython_version_is_supported() -> None:
    import IPython

    assert IPython.version_info[0] in (8, 9), IPython.__version__


def test_make_test_runs_the_ipython8_suite() -> None:
    """CI (`make test`) runs the in-process suite on IPython 8 too."""
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    test_rule = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "test-ipython8" in test_rule
    assert '"ipython<9"' in makefile

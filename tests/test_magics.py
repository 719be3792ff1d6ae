"""magics: every cell magic runs its cell the one way (core.runner), as IPython would run it."""

from __future__ import annotations

import ast
import re
from typing import Any

import pytest

CELL_MAGICS = ["%%tensorinfo", "%%autograd", "%%device cpu"]


@pytest.mark.parametrize("magic", CELL_MAGICS)
def test_top_level_await(ip: Any, capture: Any, magic: str) -> None:
    ip.run_cell("import torch, asyncio")
    with capture():
        res = ip.run_cell(f"{magic}\nawait asyncio.sleep(0)\nx = torch.ones(2) * 3\nawait asyncio.sleep(0, result=7)")
    assert res.error_in_exec is None, res.error_in_exec
    assert res.result == 7 and ip.user_ns["x"].tolist() == [3.0, 3.0]


def test_awaited_ops_are_traced(ip: Any, capture: Any) -> None:
    ip.run_cell("import torch, asyncio\nasync def twice(t):\n    await asyncio.sleep(0)\n    return t * 2")
    with capture():
        ip.run_cell("%%tensorinfo -o rep\ny = await twice(torch.ones(3))")
    assert [row.op for row in ip.user_ns["rep"].rows] == ["ones", "mul"]


class _Twice(ast.NodeTransformer):
    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if type(node.value) is int:
            return ast.copy_location(ast.Constant(node.value * 2), node)
        return node


@pytest.mark.parametrize("magic", CELL_MAGICS)
def test_the_shells_ast_transformers_apply(ip: Any, capture: Any, magic: str) -> None:
    ip.run_cell("import torch")
    ip.ast_transformers.append(_Twice())
    try:
        with capture():
            res = ip.run_cell(f"{magic}\nn = 3\nt = torch.ones(n)")
    finally:
        ip.ast_transformers.pop()
    assert res.error_in_exec is None
    assert ip.user_ns["n"] == 6 and ip.user_ns["t"].shape == (6,)  # as in a plain cell


@pytest.mark.parametrize("magic", CELL_MAGICS)
def test_tracebacks_say_the_prompt_number(ip: Any, capture: Any, magic: str) -> None:
    """``Cell In[N]`` under prompt ``In [N]``, not N + 1 (IPython 9 counts the running cell early)."""
    ip.run_cell("import torch")
    with capture() as cap:
        res = ip.run_cell(f"{magic}\nx = 1\n1 / 0", store_history=True)
    assert isinstance(res.error_in_exec, ZeroDivisionError)
    numbers = set(re.findall(r"Cell In\s?\[(\d+)\]", cap.stdout + cap.stderr))
    assert numbers == {str(res.execution_count)}, cap.stdout + cap.stderr

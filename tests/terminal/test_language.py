"""The seed cells in a real IPython terminal, in English and in Chinese (issue 15).

Chinese characters take two terminal cells each; a table padded by counting
characters would run past the edge or lose its columns.  Every line torchmagic
prints must fit the 80-column terminal, in both languages.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from rich.cells import cell_len

from tests.terminal.conftest import WIDTH

pytestmark = pytest.mark.kernel  # a subprocess per test, like the kernel tests

SETUP = "import torch\na = torch.ones(2, 3)\nb = torch.ones(3, 2)"
CELLS = {
    "broadcast": "%%tensorinfo\nc = a + b",
    "view": "o = torch.ones(2, 3)\nflat = o.t().view(-1)",
    "accumulation": "%%autograd\nw = torch.ones(3, requires_grad=True)\nfor step in range(3):\n    (w * 2).sum().backward()",
    "data": "%%autograd\nw2 = torch.ones(3, requires_grad=True)\ny = (w2 ** 2).sum()\nw2.data.mul_(2)\ny.backward()",
    "cuda": "%%device cuda\nm = torch.ones(2)",
    "tensor": "v = torch.tensor([1.0, float('nan'), -1.0, 4.0])\n%tensorinfo v",
}
# What torchmagic says in English about each cell; none of it may be left in a Chinese report.
ENGLISH = {
    "broadcast": ["Shapes are aligned from the right", "sizes clash", "don't broadcast"],
    "view": ["torchmagic explains", "The tensor is not contiguous"],
    "accumulation": ["was not zeroed", "Fix:", "backward graph", "this call added"],
    "data": ["hides the change from autograd", "not tracked by autograd", "Fix:"],
    "cuda": ["CUDA is not available here", "Available devices"],
    "tensor": ["finite values", "shape"],
}
# What stays as it is in every language: code, shapes, op names.
KEPT = {
    "broadcast": ["c = a + b", "(2, 3)", "(3, 2)"],
    "view": ["o.t()", "view"],
    "accumulation": ["w.grad", "SumBackward0", "MulBackward0"],
    "data": ["w2.data", "mul_", "PowBackward0"],
    "cuda": ["cuda", "cpu"],
    "tensor": ["(4,)", "float32"],
}
TRACEBACK_START = re.compile(r"^-{20,}$")
EXCEPTION_LINE = re.compile(r"^[A-Za-z_.]*(Error|Exception|Interrupt):")


def own_lines(output: str) -> list[str]:
    """The lines torchmagic printed: IPython's tracebacks and one-line errors left out."""
    lines, in_traceback = [], False
    for line in output.splitlines():
        if TRACEBACK_START.match(line):
            in_traceback = True
        elif in_traceback and EXCEPTION_LINE.match(line):
            in_traceback = False
            continue
        if not in_traceback and not EXCEPTION_LINE.match(line):
            lines.append(line)
    return lines


def has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def run(terminal: Callable[..., list[str]], **env: str) -> dict[str, str]:
    outputs = terminal([SETUP, *CELLS.values()], **env)
    assert len(outputs) == len(CELLS) + 1, outputs
    return dict(zip(CELLS, outputs[1:]))


def test_english_fits_the_terminal(terminal: Callable[..., list[str]]) -> None:
    outputs = run(terminal, LANGUAGE="en")
    for name, out in outputs.items():
        assert any(word in out for word in ENGLISH[name]), (name, out)
        for line in own_lines(out):
            assert cell_len(line) <= WIDTH, (name, line)
        assert not has_chinese(out), (name, out)


def test_chinese_locale_speaks_chinese_and_fits_the_terminal(terminal: Callable[..., list[str]]) -> None:
    """``language = "auto"`` (the default) follows the locale; nothing of torchmagic's stays English."""
    outputs = run(terminal, LANGUAGE="zh_CN", LANG="zh_CN.UTF-8")
    for name, out in outputs.items():
        assert has_chinese(out), (name, out)
        for word in ENGLISH[name]:
            assert word not in out, (name, word, out)
        for kept in KEPT[name]:
            assert kept in out, (name, kept, out)
        for line in own_lines(out):
            assert cell_len(line) <= WIDTH, (name, line)

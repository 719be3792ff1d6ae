"""The any-cell error explainer in Simplified Chinese: the seed cells run in-process, shown in zh_CN.

Each failing cell runs in the test shell with ``TorchMagics.language = "zh_CN"``;
its explanation is read three ways: what the shell printed under the cell
(the terminal path), the report's HTML, and the rich rendering at 80
columns.  Every test checks that the Chinese explanation is there, that
PyTorch's own message, the code and the shapes are unchanged, that the
English sentences of the explainer are gone, and that every terminal line
fits 80 cells; the broadcast diagram's columns must line up in cells.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.error import UsageError
from rich.cells import cell_len

from torchmagic import i18n
from torchmagic.core.report import rich_to_text
from torchmagic.errors import render
from torchmagic.errors.frames import explain_exception
from torchmagic.errors.report import ErrorReport

WIDTH = 80
# Sentences and labels of the explainer that must not be left in English.
ENGLISH = (
    "torchmagic explains", "hint:", "line ", " is (", "shapes don't broadcast", "Shapes are aligned",
    "inner dims", "needs", "Did you mean", "not contiguous", "view never copies", "expects the last dim",
    "Make the layer", "operands", "different devices", "Move them", "in-place op", "Recompute",
    "result", "sizes clash", "elements",
)


@pytest.fixture
def zh(options: Any) -> Iterator[None]:
    """Every message in Simplified Chinese (as ``%config TorchMagics.language = "zh_CN"``)."""
    with options(language="zh_CN"):
        assert i18n.language() == "zh_CN"
        yield


class Shown:
    """One failing cell's explanation as the shell printed it, as HTML and at 80 columns."""

    def __init__(self, ip: Any, capture: Any, cell: str) -> None:
        with capture() as cap:
            result = ip.run_cell(cell)
        self.error = result.error_in_exec
        assert self.error is not None, "the cell must still fail"
        self.message = str(self.error).splitlines()[0]
        self.printed = cap.stdout
        explanation = explain_exception(self.error, ip)
        assert explanation is not None
        report = ErrorReport(explanation)
        self.html = report.to_html()
        self.text = rich_to_text(render.to_rich(report), width=WIDTH)
        self.lines = self.text.splitlines()
        too_wide = [line for line in self.lines if cell_len(line) > WIDTH]
        assert not too_wide, too_wide
        self.flat = " ".join(line.strip() for line in self.lines)  # wrapped lines joined again

    def has(self, *texts: str) -> None:
        """Each text is in the printed output, in the HTML and in the 80-column rendering."""
        plain_html = html_lib.unescape(re.sub(r"<[^>]+>", "", self.html))
        printed = " ".join(line.strip() for line in self.printed.splitlines())
        for text in texts:
            assert text in plain_html, (text, plain_html)
            assert text in self.flat.replace("\n", " ") or text in self.text, (text, self.text)
            assert text in printed or text in self.printed, (text, self.printed)

    def no_english(self, *allowed_in_message: str) -> None:
        """No English sentence of the explainer is left (PyTorch's message, kept as it is, is skipped)."""
        ours_html = html_lib.unescape(re.sub(r"<[^>]+>", " ", self.html.split("<style>")[0] + self.html.split("</style>")[-1]))
        ours_html = ours_html.replace(html_lib.unescape(self.message), "")
        ours_text = self.flat.replace(self.message, "")
        for english in ENGLISH:
            assert english not in ours_html, (english, ours_html)
            assert english not in ours_text, (english, ours_text)


@pytest.fixture
def shown(ip: Any, capture: Any, zh: None) -> Any:
    ip.run_cell("import torch")
    return lambda cell: Shown(ip, capture, cell)


def _diagram(lines: list[str]) -> list[str]:
    """The broadcast diagram's header and rows (from the 维 header to the row before the legend)."""
    start = next(i for i, line in enumerate(lines) if line.startswith("维 "))
    end = next(i for i, line in enumerate(lines) if line.startswith("1→n："))
    return lines[start:end]


def test_broadcasting_error_in_chinese_with_an_aligned_diagram(shown: Any) -> None:
    s = shown("a = torch.ones(2, 3)\nb = torch.ones(3, 2)\na + b")
    assert s.message == "The size of tensor a (3) must match the size of tensor b (2) at non-singleton dimension 1"
    s.has("torchmagic 解释", "a 的形状是 (2, 3)", "b 的形状是 (3, 2)", "形状无法广播", "第 1 维（-1）：3 ≠ 2",
          "第 3 行：a + b", "形状从右侧对齐", "大小为 1 的维被拉伸", f"RuntimeError: {s.message}")
    s.no_english()
    rows = _diagram(s.lines)
    assert [r.split()[0] for r in rows] == ["维", "a", "b", "结果"]
    assert rows[-1].split()[:2] == ["结果", "错误"]
    # Right-aligned columns: each dim's last character ends in the same terminal cell on every row,
    # and the first dim column starts after the widest row head (结果 错误 is 9 cells, a (2, 3) is 8).
    ends = [[cell_len(r[: m.end()]) for m in re.finditer(r"\S+", r)][-2:] for r in rows]
    assert all(e == ends[0] for e in ends), "\n".join(rows)
    head_end = max(cell_len(r.split("  ")[0].rstrip()) for r in rows)
    firsts = [cell_len(r[: [m.start() for m in re.finditer(r"\S+", r)][-2]]) for r in rows]
    assert min(firsts) > head_end, "\n".join(rows)
    assert "<th>维</th>" in s.html and "<th>-2</th>" in s.html and "结果" in s.html


def test_matmul_inner_dims_in_chinese(shown: Any) -> None:
    s = shown("torch.ones(2, 3) @ torch.ones(2, 3)")
    assert s.message == "mat1 and mat2 shapes cannot be multiplied (2x3 and 2x3)"
    s.has("内侧维度 3 ≠ 2", "torch.ones(2, 3) 的形状是 (2, 3)", "的倒数第二维",
          "提示：你是不是想写 `torch.ones(2, 3) @ torch.ones(2, 3).T`？", f"RuntimeError: {s.message}")
    s.no_english()


def test_view_of_a_transpose_in_chinese(shown: Any) -> None:
    s = shown("o = torch.ones(2, 3)\no.t().view(-1)")
    assert s.message.startswith("view size is not compatible with input tensor's size and stride")
    s.has("view：o.t() (3, 2) 不连续", "view 从不复制", "o.t(): (3, 2) float32，不连续",
          "改用 `.reshape(...)` 或 `.contiguous().view(...)`", "第 2 行：o.t().view(-1)")
    s.no_english()


def test_view_element_count_in_chinese(shown: Any) -> None:
    s = shown("x = torch.ones(3, 5)\nx.view(4, 4)")
    assert s.message == "shape '[4, 4]' is invalid for input of size 15"
    s.has("view：x (3, 5) 有 15 个元素，但 (4, 4) 容纳 16 个", "新形状容纳的元素个数必须完全相同")
    s.no_english()


def test_linear_in_features_in_chinese(shown: Any) -> None:
    s = shown("lin = torch.nn.Linear(4, 2)\nx = torch.ones(3, 5)\nlin(x)")
    assert s.message == "mat1 and mat2 shapes cannot be multiplied (3x5 and 4x2)"
    s.has("linear：输入 x 的形状是 (3, 5)，但 Linear(in_features=4, out_features=2, bias=True) 要求最后一维为 "
          "in_features=4：5 ≠ 4",
          "权重 lin.weight 的形状是 (2, 4) = (out_features, in_features)。", "把这一层改成 `nn.Linear(5, 2)`")
    s.no_english()


def test_device_mismatch_in_chinese(shown: Any) -> None:
    s = shown("m = torch.ones(2, 2, device='meta')\nc = torch.ones(2, 2)\nc + m")
    assert s.message == "Tensor on device meta is not on the expected device cpu!"
    s.has("add：操作数在不同的设备上：c 在 cpu 上，m 在 meta 上", "m: (2, 2) float32 meta",
          "把它们移到同一个设备：`b = b.to(a.device)`")
    s.no_english()


def test_dtype_errors_in_chinese(shown: Any) -> None:
    s = shown("t = torch.ones(2, dtype=torch.long)\nt *= 0.5")
    assert s.message == "result type Float can't be cast to the desired output type Long"
    s.has("原地操作不能改变张量的数据类型：写 `x = x + 0.5`", "t: (2,) int64", "0.5: 标量 float")
    s.no_english()
    s = shown("c = torch.ones(2, 2)\nd = torch.ones(2, 2, dtype=torch.float64)\nc @ d")
    s.has("matmul：操作数的数据类型不同：c 是 float32，d 是 float64", "使两者的数据类型相同")
    s.no_english()


def test_backward_twice_in_chinese(shown: Any) -> None:
    s = shown("w = torch.ones(2, requires_grad=True)\nloss = (w * 2).sum()\nloss.backward()\nloss.backward()")
    assert s.message.startswith("Trying to backward through the graph a second time")
    s.has("每次 backward() 之前重新计算 输出", "`retain_graph=True`", "第 4 行：loss.backward()")
    s.no_english()


def test_cat_and_stack_in_chinese(shown: Any) -> None:
    s = shown("a = torch.ones(2, 3)\nb = torch.ones(3, 2)\ntorch.cat([a, b], dim=0)")
    assert s.message.startswith("Sizes of tensors must match except in dimension 0.")
    s.has("沿第 0 维 cat：其他各维必须一致：a 的形状是 (2, 3)，b 的形状是 (3, 2)：第 1 维：3 ≠ 2",
          "第 3 行：torch.cat([a, b], dim=0)")
    s.no_english()
    s = shown("c = torch.ones(2, 4)\ntorch.stack([a, c])")
    assert s.message.startswith("stack expects each tensor to be equal size")
    s.has("stack 要求每个张量形状相同", "第 1 维：3 ≠ 4", "要沿一个已有的、大小不同的维拼接，使用 `torch.cat`。")
    s.no_english()


def test_usage_errors_of_the_shared_line_parser_in_chinese(ip: Any, zh: None) -> None:
    ip.run_cell("import torch")
    said = []
    for run in (
        lambda: ip.run_line_magic("tensorinfo", "x)"),
        lambda: ip.run_cell_magic("tensorinfo", "-o 1x", "y = 1"),
        lambda: ip.run_cell_magic("tensorinfo", "-o", "y = 1"),
        lambda: ip.run_line_magic("tensorinfo", "torch.ones(2) / {}"),
    ):
        with pytest.raises(UsageError) as info:
            run()
        said.append(str(info.value))
    assert said == [
        "无法解析 'x)'：EOF in multi-line statement",  # Python's tokenizer words stay as Python says them
        "-o 需要一个 Python 变量名，而不是 '1x'",
        "选项 -o 需要一个值",
        ("%tensorinfo：求值 'torch.ones(2) / {}' 时引发了 TypeError: unsupported operand type(s) for /: 'Tensor' "
         "and 'dict'"),
    ]


def test_runner_failure_lines_are_whole_chinese_sentences(ip: Any, zh: None, capsys: Any) -> None:
    from torchmagic.core.guard import Fence
    from torchmagic.core.runner import Collector, _Fenced

    class Broken(Collector):
        what = "the recording"  # the N_-marked default's text, as collectors set it

        def __enter__(self) -> None:
            raise ValueError("boom")

    with _Fenced(Broken()):
        pass
    err = capsys.readouterr().err
    assert "启动记录失败（ValueError: boom）" in err and "starting" not in err
    fence = Fence()
    fence.fail(ValueError("x"))
    fence.fail(ValueError("y"))
    fence.warn(i18n.tr("recording {what}", what=i18n.tr(Collector.what)))
    err = capsys.readouterr().err
    assert "记录记录（影响了 2 个运算）失败" in err and "ops affected" not in err


def test_english_is_unchanged_without_the_option(ip: Any, capture: Any) -> None:
    ip.run_cell("import torch")
    s = Shown(ip, capture, "a = torch.ones(2, 3)\nb = torch.ones(3, 2)\na + b")
    assert s.lines[0] == "torchmagic explains"
    assert "a + b: a is (2, 3), b is (3, 2): shapes don't broadcast at dim 0 (-2): 2 ≠ 3; dim 1 (-1): 3 ≠ 2" in s.flat
    assert "result error" in s.flat and "1→n: size 1 stretched · ·→n: dim added on the left · ✗: sizes clash" in s.flat

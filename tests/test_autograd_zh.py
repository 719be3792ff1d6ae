"""%%autograd in Simplified Chinese: the seed cells' reports, in HTML and in an 80-column terminal.

Each cell runs through the real magic in the in-process shell with
``TorchMagics.language = "zh_CN"``.  The checks: the Chinese sentences are
there, the code, names, shapes and op names are exactly as in English, the
English sentences are gone, and the terminal view stays within 80 cells
with its columns aligned although Chinese characters take two cells each.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
from rich.cells import cell_len
from rich.console import Console

from torchmagic.autograd.report import AutogradReport

MLP_WITHOUT_ZERO_GRAD = """torch.manual_seed(0)
model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
x = torch.randn(8, 3); t = torch.randn(8, 1)
for step in range(20):
    loss = ((model(x) - t) ** 2).mean()
    loss.backward()
    opt.step()
"""

# Sentences and labels of the English report that must not survive in Chinese.
ENGLISH = ["Fix:", "accumulated", "backward call", "graph node", "Nothing", "not tracked", "Not tracked",
           "this call added", ".grad before", "leaf", "gradient", "Training loop", "the loss", "step"]


@pytest.fixture
def zh(ip: Any, options: Any) -> Iterator[Any]:
    """The shell with torch imported, speaking Simplified Chinese."""
    ip.run_cell("import torch\nfrom torch import nn")
    with options(language="zh_CN"):
        yield ip


def _run(ip: Any, cell: str) -> AutogradReport:
    res = ip.run_cell(f"%%autograd -o _r\n{cell}")
    assert res.error_in_exec is None, res.error_in_exec
    report = ip.user_ns.pop("_r")
    assert isinstance(report, AutogradReport)
    return report


def _terminal(report: AutogradReport) -> list[str]:
    """The report as an 80-column terminal shows it (long sentences wrapped); every line fits."""
    out = io.StringIO()
    Console(file=out, width=80, color_system=None, legacy_windows=False).print(report)
    lines = out.getvalue().splitlines()
    too_wide = [line for line in lines if cell_len(line) > 80]
    assert not too_wide, too_wide
    return lines


def _says(report: AutogradReport, phrases: list[str], english: tuple[str, ...] = ()) -> list[str]:
    """``phrases`` in both the HTML and the terminal view, no English sentence in either; the terminal lines."""
    lines = _terminal(report)
    text = "".join(lines)  # wrapped sentences read whole again (rich breaks after a space it keeps)
    for out in (report.to_html(), text):
        missing = [phrase for phrase in phrases if phrase not in out]
        assert not missing, (missing, out[-3000:])
        _no_english(out, english)
    return lines


def _no_english(text: str, also: tuple[str, ...] = ()) -> None:
    prose = re.sub(r"<[^>]*>", " ", text)  # markup (svg, css, attributes) is not prose
    left = [word for word in (*ENGLISH, *also) if re.search(rf"(?<![\w.]){re.escape(word)}(?![\w(=])", prose)]
    assert not left, (left, prose[:2000])


def _aligned(lines: list[str], header: str, row: str, column: str, value: str) -> None:
    """In the table whose header line starts with ``header``, ``value`` in the row starting with ``row``
    begins in the same terminal cell as the header ``column``."""
    head, body = next((lines[k], line) for k in range(len(lines)) for line in lines[k + 1:k + 4]
                      if lines[k].lstrip().startswith(header) and column in lines[k]
                      and line.lstrip().startswith(row) and value in line)
    assert cell_len(head[:head.index(column)]) == cell_len(body[:body.index(value)]), (head, body)


def test_accumulation_of_two_backwards_in_chinese(zh: Any) -> None:
    zh.run_cell("w = torch.tensor([1., 2.], requires_grad=True)")
    r = _run(zh, "loss = (w * w).sum()\nloss.backward()\nloss = (w * w).sum()\nloss.backward()")
    lines = _says(r, ["梯度已累加", "发生了累加", "修正：", "⚠ 已累加", "w.grad", "[2, 4]", "[4, 8]", "(2,) float32",
                      "SumBackward0", "MulBackward0", "loss.backward()",
                      "本单元格第 3 行的 backward()"])  # where the un-zeroed gradient came from
    assert "#2 对 loss = 5 () float32 调用 backward  第 5 行：loss.backward()" in lines  # no space after "："
    _aligned(lines, "叶子张量", "w", "之前的 .grad", "[2, 4]")
    _aligned(lines, "叶子张量", "w", "之后的 .grad", "[4, 8]")


def test_data_written_after_save_in_chinese(zh: Any) -> None:
    r = _run(zh, "w = torch.tensor([1., 2.], requires_grad=True)\ny = (w * w).sum()\nw.data.mul_(2)\ny.backward()")
    lines = _says(r, ["w.data 被原地修改（mul_，第 4 行）", "MulBackward0", "通过 .data 写入：自动求导看不到这次修改",
                      "w.data.mul_(2)", "w.detach()", "`with torch.no_grad():`"],
                  ("after autograd saved", "written through", "hides the change"))
    _aligned(lines, "行", "4", "原因", "通过 .data")


def test_no_grad_and_detach_in_chinese(zh: Any) -> None:
    r = _run(zh, "x = torch.tensor([1., 2., 3.], requires_grad=True)\nwith torch.no_grad():\n    y = x * 2\n"
                 "z = x.detach() * 3\nq = (x ** 2 + z).sum()")
    lines = _says(r, ["自动求导未跟踪", "2 处未跟踪", "在 torch.no_grad() 下：结果没有 grad_fn", ".detach()：计算图在此断开",
                      "y = x * 2", "z = x.detach() * 3", "PowBackward0"],
                  ("under torch.no_grad()", "graph cut", "input without grad"))
    assert "反向图（输出 → 叶子张量）" in lines
    _aligned(lines, "行", "5", "原因", ".detach()：")
    _aligned(lines, "行", "4", "原因", "在 torch.no_grad()")


def test_training_loop_without_zero_grad_in_chinese(zh: Any) -> None:
    r = _run(zh, MLP_WITHOUT_ZERO_GRAD)
    lines = _says(r, ["训练循环：对 loss 调用了 20 次 backward()（第 8 行，位于第 6 行的循环中）",
                      "4 个参数在 19 步中持续累加", "第 6 行的循环缺少 `opt.zero_grad()`",
                      "在每一步开始、loss.backward() 之前调用 opt.zero_grad()", "梯度流", "更新/权重",
                      "model.0", "model.2.weight", "AddmmBackward0"], ("missing in", "sampled", "update/weight"))
    assert "20 次 backward() 调用中前 3 次完整保存在报告中" in "".join(lines)


def test_sqrt_at_zero_in_chinese(zh: Any) -> None:
    r = _run(zh, "w = torch.tensor([0., 4., 16.], requires_grad=True)\nloss = w.sqrt().sum()\nloss.backward()")
    lines = _says(r, ["第 4 行的 backward() 之后出现非有限梯度：w: 1 个 inf", "⚠ 非有限值", "它出现在 SqrtBackward0",
                      "[inf, 0.25, 0.125]", "x.clamp_min(1e-12)", "torch.logsumexp"],
                  ("Non-finite", "appeared", "non-finite"))
    assert "    └── SqrtBackward0  (3,) float32  ⚠ NaN/inf 在此出现" in lines
    _aligned(lines, "叶子张量", "w", "之后的 .grad", "[inf, 0.25, 0.125]  ⚠")


def test_second_backward_explained_in_chinese_above_pytorchs_own_message(zh: Any) -> None:
    res = zh.run_cell("%%autograd -o _r\nw = torch.ones(2, requires_grad=True)\nloss = w.exp().sum()\n"
                      "loss.backward()\nloss.backward()")
    assert isinstance(res.error_in_exec, RuntimeError) and "second time" in str(res.error_in_exec)  # unchanged
    r = zh.user_ns.pop("_r")
    assert r.explanation is not None
    assert r.explanation.plain.startswith("`loss`.backward() 需要自动求导在计算 `loss` 时保存的中间值（供 ExpBackward0 使用）")
    lines = _says(r, ["第二次通过同一个计算图的 backward() 无从计算"], ("needs the intermediate", "freed them"))
    assert any(line.startswith("修正：") for line in lines)


def test_jacobian_in_chinese(zh: Any) -> None:
    res = zh.run_cell("%%autograd -o _r --jacobian\nx = torch.tensor([1., 2.], requires_grad=True)\ny = x ** 2\n"
                      "y.backward(gradient=torch.tensor([1., 0.5]))")
    assert res.error_in_exec is None
    r = zh.user_ns.pop("_r")
    lines = _says(r, ["(2,) 的雅可比矩阵", "v·J 与 backward() 的计算结果一致", "x[0]", "y[1]"],
                  ("Jacobian", "matches", "differs"))
    assert "y (2,) 的雅可比矩阵" in lines and "<code>y</code> (2,) 的雅可比矩阵" in r.to_html()
    assert "J = ∂输出/∂叶子张量" in r.to_html()


def test_line_form_and_its_usage_errors_in_chinese(zh: Any) -> None:
    from IPython.core.error import UsageError

    zh.run_cell("w = torch.ones(2, requires_grad=True)\nout = (w * 3).sum()")
    zh.run_line_magic("autograd", "-o _r out")
    r = zh.user_ns.pop("_r")
    assert "计算图" in r.to_html() and "叶子张量" in "\n".join(_terminal(r))
    zh.run_line_magic("autograd", "-o _r torch.ones(2)")
    assert zh.user_ns.pop("_r").nothing.startswith("没有可显示的内容：torch.ones(2) 不需要梯度")
    with pytest.raises(UsageError, match="需要一个张量，例如 %autograd loss"):
        zh.run_line_magic("autograd", "")
    with pytest.raises(UsageError, match="%%autograd 的行上不接受表达式（收到 'x'）"):
        zh.run_cell_magic("autograd", "x", "pass")


def test_english_is_back_after_switching(zh: Any, options: Any) -> None:
    with options(language="en"):
        r = _run(zh, "w = torch.tensor([0., 4.], requires_grad=True)\nloss = w.sqrt().sum()\nloss.backward()")
        assert "Non-finite gradient after the backward() at line 4: w: 1 inf." in r.to_text().replace("\n", "")


def test_svg_boxes_are_wide_enough_for_chinese_labels() -> None:
    from torchmagic.autograd.graph import GNode
    from torchmagic.autograd.svg import CHAR_W, node_size

    chinese, latin = GNode(0, "const", "无梯度的输入"), GNode(1, "const", "abcdef")  # six characters each
    assert node_size(chinese)[0] >= cell_len("无梯度的输入") * CHAR_W > node_size(latin)[0]


def test_inplace_error_and_empty_cells_in_chinese(zh: Any) -> None:
    res = zh.run_cell("%%autograd -o _r\na = torch.ones(3, requires_grad=True)\nb = a.sigmoid()\nb.mul_(2)\n"
                      "b.sum().backward()")
    assert isinstance(res.error_in_exec, RuntimeError) and "modified by an inplace operation" in str(res.error_in_exec)
    r = zh.user_ns.pop("_r")
    _says(r, ["自动求导在前向传播中保存了 `b`（它是 Sigmoid 的输出）", "它的版本计数从 0 变成了 1",
              "抛出了 RuntimeError（错误信息见下方的回溯）", "SigmoidBackward0：保存的", "在保存之后被原地修改",
              "常量 2"], ("saved", "version counter", "raised", "constant"))
    assert _run(zh, "x = torch.ones(3)\ny = x * 2").nothing.startswith(
        "没有可显示的内容：本单元格中没有需要梯度的张量（x, y 都不需要），所以自动求导没有记录任何内容。")
    assert _run(zh, "x = torch.ones(3, requires_grad=True)").nothing.startswith(
        "暂时没有可绘制的内容：x 需要梯度（requires_grad），但单元格中没有任何计算用到它")

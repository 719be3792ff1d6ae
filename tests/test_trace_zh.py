"""%%tensorinfo's trace in Simplified Chinese: the seed cells rendered in zh_CN, HTML and terminal (80 columns).

Chinese text is there, code, op names, shapes and dtypes are unchanged, the
English sentences are gone, and every terminal line fits 80 cells with its
columns aligned (rich measures a Chinese character as two cells).
"""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from rich.cells import cell_len
from rich.console import Console

from tests.models import CNN, TRANSFORMER
from torchmagic.trace import render, render_nan

WIDTH = 80
CJK = re.compile(r"[\u4e00-\u9fff]")


def _term(renderable: Any) -> str:
    buf = io.StringIO()
    Console(file=buf, width=WIDTH, color_system=None, force_terminal=False, highlight=False).print(renderable)
    return buf.getvalue()


def _fits(text: str) -> None:
    for line in text.splitlines():
        assert cell_len(line) <= WIDTH, line


def _trace(ip: Any, options: Any, cell: str, setup: str = "import torch") -> tuple[Any, str, str]:
    """Run ``cell`` under ``%%tensorinfo`` in zh_CN: its report, its HTML and its terminal text."""
    ip.run_cell(setup)
    with options(language="zh_CN"):
        res = ip.run_cell("%%tensorinfo -o rep\n" + cell)
        rep = ip.user_ns["rep"]
        html, text = render.to_html(rep), _term(render.to_rich(rep))
    assert res.error_in_exec is None
    _fits(text)
    return rep, html, text


def _no_english(*texts: str, words: tuple[str, ...]) -> None:
    for text in texts:
        for word in words:
            assert word not in text, word


def _column(lines: list[str], needle: str) -> set[int]:
    """The terminal cell at which ``needle`` starts on each of ``lines`` holding it."""
    return {cell_len(line[: line.index(needle)]) for line in lines if needle in line}


def test_broadcasting_trace(ip, options):
    _, html, text = _trace(ip, options, "x = torch.ones(2, 3) + torch.arange(3)")
    assert "3 个运算（3 种），共 3 行" in text.splitlines()[0]
    assert "广播" in html and "<th>代码</th>" in html and "<th>运算</th>" in html
    assert "torch.ones(2, 3) + torch.arange(3)" in text and "(2, 3)" in text and "(3,)" in text
    assert "add" in text and "int64" in text
    assert "x = torch.ones(2, 3) + torch.arange(3)" in html
    assert "标量广播" not in text  # a (3,) tensor is drawn as a diagram, not called a scalar
    _no_english(html, text, words=("distinct", " ops ", "annotated source", "<th>notes</th>"))


def test_chinese_code_keeps_the_columns_aligned(ip, options):
    _, _, text = _trace(ip, options, "张量 = torch.ones(2, 3)\n结果 = 张量.view(-1) * 张量.sum()")
    codes = {"view": "张量.view(-1)", "sum": "张量.sum()", "mul": "张量.view(-1) * 张量.sum()"}
    starts = set()
    for line in text.splitlines():
        op = line.split()[0] if line.strip() else ""
        if op in codes and line.startswith("    "):
            after = line.index(codes[op]) + len(codes[op])
            after += len(line[after:]) - len(line[after:].lstrip())
            starts.add(cell_len(line[:after]))
    assert len(starts) == 1  # the shapes column starts in one terminal cell for all three ops


def test_views_and_in_place(ip, options):
    _, html, text = _trace(
        ip, options, "x = torch.zeros(2, 3)\ny = x.unsqueeze(0)\nz = y.squeeze(0)\nx.add_(1)")
    assert "视图" in text and "原地" in text and "视图" in html and "原地" in html
    for code in ("x.unsqueeze(0)", "y.squeeze(0)", "x.add_(1)", "(1, 2, 3)", "(2, 3)", "unsqueeze", "add_"):
        assert code in text
    assert "标量广播" in text  # add_(1): the Python number is stretched
    _no_english(text, html, words=("in-place", " view ", ">view<"))
    _no_english(text, words=("scalar",))  # (HTML's operand shapes, "scalar int", are the errors area's)


def test_nan_cell(ip, options):
    rep, html, text = _trace(ip, options, "x = torch.tensor([1., 0., -1., 4.])\nb = torch.log(x)\nc = b - b")
    with options(language="zh_CN"):
        sentence = rep.nan.sentence()
    assert sentence == "第 3 行：torch.log(x) 产生了 1 个 NaN 和 1 个 −Inf（对负数和 0 取 log）"
    flat = " ".join(text.split())
    assert "torch.log(x)" in flat and "NaN/Inf 从这里开始" in flat and "第 3 行" in flat
    assert "对负数和 0 取 log" in html
    _no_english(text, html, words=("made", "negative", "start here"))


def test_silent_surprises(ip, options):
    _, html, text = _trace(
        ip, options,
        "e = torch.empty(2, 3)\nq = torch.tensor(1.7, dtype=torch.int8)\nr = torch.ones(2, 3)\ns = r.squeeze(0)")
    flat = " ".join(text.split())
    assert "未初始化的内存" in flat
    assert "1.7 → 1" in flat and "int8 不保留小数部分：向零截断" in flat
    assert "无效操作：第 0 维的大小是 2；squeeze 只移除大小为 1 的维" in flat
    assert "未初始化的内存" in html and "向零截断" in html and "无效操作" in html
    for code in ("torch.empty(2, 3)", "torch.tensor(1.7, dtype=torch.int8)", "r.squeeze(0)", "squeeze"):
        assert code in text
    _no_english(flat, html, words=("uninitialised", "truncated", "no-op", "removes only"))


def test_cnn_module_tree_and_summary(ip, options):
    _, html, text = _trace(ip, options, "out = net(batch)", CNN)
    lines = text.splitlines()
    head = next(ln for ln in lines if "模块" in ln and "类型" in ln)
    assert "参数" in head and "时间" in head and "输入 → 输出" in head
    assert "<th>模块</th>" in html and "<th>输入 → 输出</th>" in html
    for code in ("net", "Net", "conv1", "Conv2d", "(8, 3, 32, 32)", "(8, 10)", "conv2d", "linear"):
        assert code in text
    # the summary table's columns stay aligned under the Chinese header
    rows = lines[lines.index(head): lines.index(head) + 6]
    assert len(_column(rows[1:], "Conv2d")) == 1 and _column([head], "类型") == _column(rows[1:], "Conv2d")
    _no_english(head, html, words=("<th>module</th>", "<th>params</th>", "in → out", "module type"))


def test_transformer_fold(ip, options):
    _, html, text = _trace(ip, options, "out = enc(src)", TRANSFORMER)
    assert "layers.0 … layers.1 ×2" in text
    assert "2 个实例逐一列出" in html and "个参数" in html
    flat = " ".join(text.split())
    assert "运算次数合计了全部 2 个实例" in flat
    assert "(8, 16, 64)" in text and "TransformerEncoderLayer" in text
    _no_english(flat, html, words=("instances", "parameters", "counted over"))


def test_nan_watch(ip, capture, options):
    ip.run_cell("import torch")
    with options(language="zh_CN"):
        with capture() as cap:
            ip.run_cell("%tensorinfo --nan on")
        on = cap.stdout + "".join(o.data.get("text/plain", "") for o in cap.outputs)
        with capture() as cap:
            ip.run_cell("x = torch.tensor([1., 0., -1., 4.])\nb = torch.log(x)\nc = b - b")
        told = cap.stdout + "".join(o.data.get("text/plain", "") for o in cap.outputs)
        ip.run_cell("%tensorinfo --nan off")
    on = " ".join(on.split())
    assert "NaN 监视已开启" in on and "%tensorinfo --nan off 可关闭" in on and "NaN watch on" not in on
    flat = " ".join(told.split())
    assert "torchmagic NaN 监视" in flat
    assert "NaN/Inf 第 2 行：torch.log(x) 产生了 1 个 NaN 和 1 个 −Inf（对负数和 0 取 log）" in flat
    assert "之后还有 1 个运算也产生了非有限值" in flat
    _no_english(flat, words=("made", "later op", "negative", "watch"))


def test_nan_watch_terminal_width(options):
    from torchmagic.trace.report import NanOrigin, NanReport, NanWatchState

    with options(language="zh_CN"):
        text = _term(render_nan.to_rich(NanWatchState(True)))
        origin = NanOrigin(3, "b = torch.log(x)", "torch.log(x)", "log", "1 NaN", "x", ("its inputs",))
        text += _term(render_nan.to_rich(NanReport(origin, carried=2)))
        html = render_nan.to_html(NanReport(origin, carried=2))
    _fits(text)
    flat = " ".join(text.split())
    assert "NaN 监视已开启" in flat and "之后还有 2 个运算也产生了非有限值" in flat
    assert "第 3 行：torch.log(x) 给出了 1 NaN，因为其输入 its inputs 已含有非有限值" in flat
    assert "torchmagic NaN 监视" in html and "之后还有 2 个运算也产生了非有限值" in html


@pytest.mark.parametrize("line, message", [
    ("--nan on", "--nan 用于行魔法形式：%tensorinfo --nan on"),
    ("--max-rows 0", "--max-rows 需要一个正数"),
    ("x", "%%tensorinfo 只接受选项，不接受 'x'"),
])
def test_usage_errors(ip, options, line, message):
    from IPython.core.error import UsageError

    with options(language="zh_CN"), pytest.raises(UsageError) as err:
        ip.run_cell_magic("tensorinfo", line, "y = 1")
    assert str(err.value) == message


def test_english_is_unchanged(ip, options):
    ip.run_cell("import torch")
    ip.run_cell("%%tensorinfo -o rep\nx = torch.tensor([1., 0., -1., 4.])\nb = torch.log(x)")
    rep = ip.user_ns["rep"]
    assert rep.nan.sentence() == "line 3: torch.log(x) made 1 NaN and 1 −Inf (log of a negative number and of 0)"
    assert not CJK.search(render.to_html(rep)) and not CJK.search(_term(render.to_rich(rep)))

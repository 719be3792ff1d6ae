"""%tensorinfo in Simplified Chinese (issue 15): the seed cells in-process, as HTML and in an 80-column terminal."""

from __future__ import annotations

import re
from typing import Any

from rich.cells import cell_len

from tests.terminal_zh import assert_aligned, assert_fits, terminal_lines, visible_text

SEED = "import torch\nx = torch.arange(6.).reshape(2, 3)\ny = torch.tensor([1., float('nan'), -float('inf'), 2.])\n"


def _report(ip: Any, capture: Any, line: str) -> Any:
    with capture():
        ip.run_line_magic("tensorinfo", line)
    return ip.user_ns.pop("r")


def test_a_tensor_and_one_with_nan_and_inf(ip: Any, capture: Any, options: Any) -> None:
    ip.run_cell(SEED).raise_error()
    with options(language="zh_CN"):
        report = _report(ip, capture, "-o r x y")
        html = visible_text(report.to_html())
        lines = terminal_lines(report)
    term = "\n".join(lines)
    for text in (html, term):
        # the sentences and labels in Chinese ...
        for zh in ("形状", "数据类型", "设备", "自动求导", "不需要梯度", "步长 (3, 1)，连续", "统计：全部值",
                   "统计：2 个有限值（共 4 个）", "最小值", "标准差", "24 B（每个元素 4 字节）", "矩阵", "向量"):
            assert zh in text, zh
        # ... the code, shapes, dtypes, devices and values as they were ...
        for code in ("(2, 3)", "(4,)", "float32", "cpu", "nan, -inf", "NaN", "−Inf"):
            assert code in text, code
        # ... and no English sentence of the report left
        for en in ("statistics of", "finite values", "contiguous", "memory", "shape", "bytes each", "values of",
                   "no grad", "matrix", "strides"):
            assert en not in text, en
    assert "1 个 NaN" in html and "1 个 −Inf" in html and "x 的值" in html and "y 的值" in html
    assert re.search(r"y\s+向量 \(4,\) float32 cpu\s+1 个 NaN\s+1 个 −Inf", term)
    assert re.search(r"│ 阶\s+2 \(矩阵\)", term)  # a tensor's rank (阶), not a process's (distributed keeps "rank")
    assert_fits(lines)
    assert_aligned(lines)
    # labels are read when rendering: the same report drawn again in English has English labels
    english = visible_text(report.to_html())
    assert "statistics of" in english and "shape (2, 3)" in english and "形状" not in english


def test_the_namespace_listing(ip: Any, capture: Any, options: Any) -> None:
    ip.run_cell(SEED + "w = torch.ones(3, requires_grad=True)\nmodel = torch.nn.Linear(3, 2)\n").raise_error()
    with options(language="zh_CN"):
        report = _report(ip, capture, "-o r")
        html = visible_text(report.to_html())
        lines = terminal_lines(report)
    term = " ".join("\n".join(lines).split())  # a long row may wrap, in either language
    for text in (html, term):
        for zh in ("需要梯度", "2 个张量中共 8 个参数", "4 个张量/数组/模块，共", "1 个 NaN"):
            assert zh in text, zh
        for en in ("requires grad", "parameters", "tensors/arrays/modules", "in all"):
            assert en not in text, en
    for head in ("名称", "类型", "形状", "内存", "值（有限值：范围、均值、标准差）"):
        assert head in html
    assert "(2, 3) float32 cpu" in term and "μ=2.5" in term and "1 个 NaN，1 个 −Inf" in term
    assert_fits(lines)
    # one line per item, the memory column right-aligned by terminal cells although `w`'s grad column is Chinese
    rows = [line for line in lines if re.match(r"(model|w|x|y) ", line)]
    assert len(rows) == 4
    ends = {cell_len(row[: re.search(r"\d+ B\b", row).end()]) for row in rows}  # type: ignore[union-attr]
    assert len(ends) == 1, rows


def test_the_tensor_display_summary_line(ip: Any, options: Any) -> None:
    ip.run_cell(SEED).raise_error()
    with options(language="zh_CN", tensor_display="summary"):
        data, _ = ip.display_formatter.format(ip.user_ns["y"])
    first = data["text/plain"].splitlines()[0]
    assert first == "Tensor (4,) float32 cpu · [1, 2] μ=1.5 σ=0.7071 · 1 个 NaN，1 个 −Inf"


def test_empty_namespace_and_a_python_value(ip: Any, capture: Any, options: Any) -> None:
    from torchmagic.tensors.render import to_html
    from torchmagic.tensors.report import NamespaceReport

    with options(language="zh_CN"):
        empty = visible_text(to_html(NamespaceReport(rows=[], total_bytes=0)))
        ip.user_ns["xs"] = [[1, 2], [3, 4]]
        value = visible_text(_report(ip, capture, "-o r xs").to_html())
    assert "命名空间中还没有张量、数组或模块。" in empty
    assert "torch.tensor(xs) 得到一个矩阵，形状 (2, 2)，数据类型 int64" in value

"""%%device and %device in Simplified Chinese (issue 15): the seed cells in-process, as HTML and in an 80-column terminal."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from IPython.core.error import UsageError

from tests.terminal_zh import assert_aligned, assert_fits, terminal_lines, visible_text

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine-without-CUDA path")


def _run(ip: Any, capture: Any, src: str) -> Any:
    ip.user_ns["torch"] = torch
    with capture():
        return ip.run_cell(src)


def _both(report: Any) -> tuple[str, str, list[str]]:
    """(visible HTML text, terminal text with spaces collapsed, terminal lines at 80 columns)."""
    lines = terminal_lines(report)
    return visible_text(report.to_html()), " ".join("\n".join(lines).split()), lines


@NO_CUDA
def test_cuda_without_a_gpu_is_one_chinese_line(ip: Any, capture: Any, options: Any) -> None:
    ip.user_ns["ran"] = False
    with options(language="zh_CN"):
        res = _run(ip, capture, "%%device cuda\nran = True\n")
    assert isinstance(res.error_in_exec, UsageError) and ip.user_ns["ran"] is False
    msg = str(res.error_in_exec)
    assert "本机没有可用的 CUDA" in msg and "仅支持 CPU 的版本" in msg and "可用设备：cpu, meta" in msg
    assert "%%device cpu" in msg and "--fallback cpu" in msg and torch.__version__ in msg
    assert "\n" not in msg and "not available" not in msg and "Available devices" not in msg


@NO_CUDA
def test_the_fallback_notice_and_report(ip: Any, capture: Any, options: Any) -> None:
    with options(language="zh_CN"):
        res = _run(ip, capture, "%%device cuda --fallback cpu -o rep\nz = torch.ones(2, 3) * 2\nv = z.sum().item()\n")
        assert res.error_in_exec is None and ip.user_ns["z"].device.type == "cpu"
        html, term, lines = _both(ip.user_ns.pop("rep"))
    for text in (html, term):
        for zh in ("%%device 在 cpu 上：单元格运行了 1 次", "本机没有可用的 CUDA", "此单元格改在 cpu 上运行，而不是 cuda",
                   "时间", "最慢的运算", "创建的最大张量", "峰值", "没有跨设备复制", "已释放", "单元格结束后"):
            assert zh in text, zh
        for code in ("--fallback cpu", "Tensor.mul", "torch.ones", "(2, 3) float32", "2: z = torch.ones(2, 3) * 2"):
            assert code in text, code
        for en in ("the cell ran", "instead of", "peak", "no copies", "largest tensors", "Slowest ops", "freed",
                   "after the cell", "recorded run"):
            assert en not in text, en
    assert_fits(lines)
    assert_aligned(lines)


def test_a_device_mismatch_explained(ip: Any, capture: Any, options: Any) -> None:
    ip.user_ns["x"] = torch.ones(3)
    with options(language="zh_CN"):
        res = _run(ip, capture, "%%device meta -o rep\ny = torch.ones(3) + x\n")
        assert isinstance(res.error_in_exec, RuntimeError)  # the user's own error stands
        html, term, lines = _both(ip.user_ns.pop("rep"))
    for text in (html, term):
        for zh in ("第 2 行", "设备不匹配", "操作数", "x (3,) 在 cpu 上，但此单元格在 meta 上运行", "用 x.to('meta') 移动它"):
            assert zh in text, zh
        assert "y = torch.ones(3) + x" in text and "RuntimeError" in text  # the code and PyTorch's message
        for en in ("device mismatch", "but this cell runs on", "Move it with", "operand"):
            assert en not in text, en
    assert_fits(lines)
    assert_aligned(lines)


def test_device_model_and_info(ip: Any, capture: Any, options: Any) -> None:
    ip.user_ns["model"] = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    with options(language="zh_CN"):
        _run(ip, capture, "%device -o m model\n%device -o info")
        html, term, lines = _both(ip.user_ns.pop("m"))
        info_html, info_term, info_lines = _both(ip.user_ns.pop("info"))
    for text in (html, term):
        for zh in ("%device model：这个 Sequential 的张量位于哪里", "按模块", "4 个张量中共 13 个", "2 个张量中共 9 个",
                   "梯度字节", "参数", "缓冲区"):
            assert zh in text, zh
        assert "Linear" in text and "52 B" in text
        for en in ("where the", "per device", "per module", "bytes", "parameters", "tensors"):
            assert en not in text, en
    assert "按设备" in term  # the terminal's title of the per-device table
    for text in (info_html, info_term):
        assert "设置" in text and "默认数据类型" in text and "cudnn.benchmark" in text and "float32" in text
        assert "settings" not in text and "default dtype" not in text
    for rendered in (lines, info_lines):
        assert_fits(rendered)
        assert_aligned(rendered)


@pytest.mark.parametrize(
    ("line", "cell", "message"),
    [
        ("", "x = 1", "%%device 需要一个设备"),
        ("cpu -n 0", "x = 1", "-n 至少为 1，而不是 0"),
        ("cdua", "x = 1", "未知设备 'cdua'"),
        ("n", None, "需要 nn.Module、张量或由张量组成的 dict/list，得到的是 int"),
        ("-n 3", None, "属于单元格形式"),
        ("cuda", None, "要在设备上运行单元格，请用单元格形式：%%device cuda"),
    ],
)
def test_usage_errors_in_chinese(ip: Any, options: Any, line: str, cell: str | None, message: str) -> None:
    ip.user_ns["n"] = 3
    with options(language="zh_CN"), pytest.raises(UsageError) as caught:
        if cell is None:
            ip.run_line_magic("device", line)
        else:
            ip.run_cell_magic("device", line, cell)
    assert message in str(caught.value)


def test_repeats_and_modules(ip: Any, capture: Any, options: Any) -> None:
    setup = "m = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8), torch.nn.ReLU())\n"
    with options(language="zh_CN"):
        res = _run(ip, capture, "%%device cpu -n 2 -r 2 -o rep\n" + setup + "out = m(torch.randn(64, 8))\n")
        assert res.error_in_exec is None
        html, term, lines = _both(ip.user_ns.pop("rep"))
    for text in (html, term):
        for zh in ("单元格运行了 5 次", "预热运行", "重复运行", "每次循环", "2 次重复 × 2 次循环的均值 ± 标准差",
                   "模块：每个 nn.Module 的耗时和内存", "前向", "单元格运行了多次；其副作用每次都会发生"):
            assert zh in text, zh
        assert "Sequential" in text and "F.linear" in text and "(64, 8)" in text
        for en in ("warm-up run", "per loop", "more)", "Modules:", "repeated", "side effects"):
            assert en not in text, en
    assert "m.0（另有 1 个）中的 F.linear" in html.replace(" 中的", "中的")  # two layers' outputs in one row
    assert_fits(lines)
    assert_aligned(lines)


def test_a_cuda_report_drawn_in_chinese(options: Any) -> None:
    """The sections only a GPU run fills (events, transfers, sync points, the CUDA allocator), from report data."""
    from tests.test_device_render import _run as cuda_run
    from torchmagic.device.report import DeviceReport

    report = DeviceReport(runs=[cuda_run("cuda:0", ""), cuda_run("cpu", "")], cell_runs=14, compare=True)
    with options(language="zh_CN"):
        html, term, lines = _both(report)
    for text in (html, term):
        for zh in ("%%device 在 cuda:0 vs cpu 上比较：单元格运行了 14 次", "设备耗时 10 ms（事件计时）", "实际耗时最佳",
                   "传输：2 次跨设备复制，2.0 KiB", "主机→设备", "同步点：1 行让 Python 等待设备",
                   "打印张量会把它的值复制到主机", "CUDA 内存分配器", "设备耗时，来自事件计时", "1×（基准）",
                   "第 5 行", "设备不匹配"):
            assert zh in text, zh
        for en in ("compared on", "(events)", "wall best", "Transfers:", "host→device", "Sync points",
                   "printing a tensor", "CUDA allocator", "baseline", "at line"):
            assert en not in text, en
        assert "Tensor.to" in text and "(16, 16)" in text
    assert "cpu → cuda:0" in html and "所有模块（14 行）" in html
    assert_fits(lines)
    assert_aligned(lines)

"""%%distributed in Simplified Chinese: recorded reports rendered in zh_CN (HTML and an 80-column terminal).

The reports are built from plain data like tests/test_distributed_render.py
does (no rank pool): the collectives table, DDP before/after, DTensor
placements, the pipeline timeline, a hang, the pool status and the line
flags' usage errors.  Each test checks that the Chinese sentence is there,
that code, op names, shapes and dtypes are unchanged, that the English
sentences are gone, and that every terminal line fits 80 cells with table
borders aligned.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output
from rich.cells import cell_len

from tests.test_distributed_render import dtensor, report, stages
from torchmagic import i18n
from torchmagic.core.report import rich_to_text
from torchmagic.distributed import engine, render_pool
from torchmagic.distributed.fold import explain_hang
from torchmagic.distributed.options import RunOptions
from torchmagic.distributed.report import (
    Bucket,
    Collective,
    DDPFacts,
    GradRow,
    PipelineFacts,
    Placement,
    PoolStatus,
    RankError,
    Wait,
)
from torchmagic.distributed.session import failure_line

WIDTH = 80
BARS = "│┃"


@pytest.fixture
def zh(options: Any) -> Iterator[None]:
    """Every message in Simplified Chinese for the test (as ``%config TorchMagics.language = "zh_CN"``)."""
    with options(language="zh_CN"):
        assert i18n.language() == "zh_CN"
        yield


def terminal(renderable: Any) -> str:
    """The terminal rendering at 80 columns, checked: no line wider than 80 cells, table borders aligned."""
    text = rich_to_text(renderable, width=WIDTH)
    lines = text.splitlines()
    assert all(cell_len(line) <= WIDTH for line in lines), [line for line in lines if cell_len(line) > WIDTH]
    block: list[list[int]] = []
    for line in [*lines, ""]:
        bars = [cell_len(line[:i]) for i, ch in enumerate(line) if ch in BARS]
        if len(bars) > 2:  # a table row inside the panel (the panel's own two borders are not enough)
            block.append(bars)
            continue
        assert all(b == block[0] for b in block), f"table columns out of line:\n{text}"
        block = []
    return text


def absent(text: str, *english: str) -> None:
    left = [e for e in english if e in text]
    assert not left, f"English left: {left}"


def test_collectives_table_in_chinese(zh: None) -> None:
    rep = report()
    html = rep.to_html()
    assert "集合通信：所有 rank 共 2 次调用" in html
    assert "<th>运算</th>" in html and "<th>到达</th>" in html and "<th>形状</th>" in html
    assert "all_reduce" in html and "(4,)" in html and "float32" in html and "y = 1" in html
    assert "rank 1：ValueError" in html and "输出" in html and "所有 rank" in html
    absent(html, "calls on all ranks", ">arrival<", ">shapes<", "all ranks<", "value of the last line")
    text = terminal(rep)
    assert "集合通信：所有 rank 共 2 次调用" in text and "运算" in text and "到达" in text
    assert "all_reduce" in text and "(4,) float32" in text and "[bold]x[/bold]" in text
    assert "%%distributed · 2 个 rank · gloo" in text and "rank 1 失败" in text
    absent(text, "calls on all ranks", "arrival", "output ·", "2 ranks", "failed")


def test_the_library_call_in_between_is_said_in_chinese_where_it_is_words(zh: None) -> None:
    tp = Collective(
        0, "all_gather", "mesh_tp [0, 1]", ((8, 8),), ((16, 8),), "float32", 256, 3, "tensor parallel forward", 0
    )
    ddp = Collective(1, "all_reduce", "default", ((4160,),), ((4160,),), "float32", 16640, 4, "DDP backward", 0)
    rep = report(collectives=(tp, ddp))
    html = rep.to_html()
    assert "<td>张量并行 forward</td>" in html and "<td>DDP backward</td>" in html and "mesh_tp [0, 1]" in html
    text = terminal(rep)
    assert "all_gather  │" in text and "张量并行" in text and "all_reduce  │" in text and "经由 DDP" in text
    absent(html + text, "tensor parallel", " via ")


def test_ddp_before_and_after_in_chinese(zh: None) -> None:
    grads = (
        GradRow("0.weight", (2, 2), (1.0, 2.0), (1.5, 2.5), 2.2, 2.9, 0),
        GradRow("0.bias", (2,), (0.5,), (0.75,), 0.5, 0.75, 0),
    )
    facts = (DDPFacts("model", (0.25,), grads, (Bucket(0, 24, ("0.weight", "0.bias")),), 25 << 20),)
    rep = report(ddp=facts)
    html = rep.to_html()
    assert "数据并行：DDP 模型 <code>model</code>" in html and "各 rank 的损失：rank 0：0.25" in html
    assert "rank 0 之前" in html and "之后（每个 rank）" in html and "逐桶对它们做 all-reduce" in html
    assert "[1.5, 2.5, …] ‖2.9‖" in html and "0.weight" in html and "(2, 2)" in html
    absent(html, "data parallel", "loss per rank", "before<", "after (every rank)", "bucket by bucket")
    text = terminal(rep)
    assert "数据并行：DDP model · 损失 r0 0.25" in text and "0.weight (2, 2) 桶 0：r0 2.2 r1 2.2 → 2.9" in text
    assert "桶 0：24 B · 0.weight, 0.bias" in text
    absent(text, "data parallel", "bucket", "before (each rank)", "averaged")


def test_dtensor_placements_in_chinese(zh: None) -> None:
    facts = (dtensor("w"), dtensor("b", (Placement("Replicate"),)), dtensor("p", (Placement("Partial"),)))
    rep = report(dtensors=facts)
    html = rep.to_html()
    assert "张量并行（层内切分）：DTensor（哪个 rank 持有哪一块）" in html
    assert "全局 (16, 8) float32 · [Shard(0)]，位于 2 设备网格上" in html and "本地形状 r0: (8, 8)" in html
    assert "[Replicate]" in html and "r0,1 部分和" in html and "16 行 × 8 列" in html
    assert "w：哪个 rank 持有哪一块" in html
    absent(html, "layer-wise partitioning", "global (16", "on a 2 mesh", "local shapes", " rows × ", "partial<")
    text = terminal(rep)
    assert "w 全局 (16, 8) float32 · [Shard(0)]，位于 2 设备网格上 · 本地 r0: (8, 8)," in text
    assert "数字：持有该部分的 rank" in text and "00000000" in text
    absent(text, "digits:", "holding", "global", "local", "mesh")


def test_pipeline_timeline_in_chinese(zh: None) -> None:
    s0, s1 = stages()
    rep = report(pipeline=PipelineFacts((s0,), "ScheduleGPipe", 1))
    rep.ranks[1].pipeline = PipelineFacts((s1,), "ScheduleGPipe", 1)  # each rank reports its own stage
    html = rep.to_html()
    assert "流水线并行（层间切分）：流水线阶段 · ScheduleGPipe，1 个微批次" in html
    assert "阶段 0（rank 0）" in html and "激活值" in html and "梯度" in html and "(2, 16)" in html
    assert "阶段 0（r0）" in html and "50% 的时间空闲" in html and "微批次 0 的前向：2.00 ms" in html
    assert "1 F / 1 B" in html and "1,040" in html and "0: ReLU; 1: Linear" in html
    absent(html, "network partitioning", "activation", "gradient", "idle", "forward of", "micro-batch")
    text = terminal(rep)
    assert "流水线阶段 ScheduleGPipe" in text and "阶段之间发送的数据" in text
    rows = [line for line in text.splitlines() if "空闲 50%" in line or "空闲 25%" in line]
    assert rows and all("F0" in row for row in rows)  # the bars did not wrap away from their stage
    # the time axis starts under the first cell of the bars, however wide the (Chinese) stage names are
    first = text.splitlines().index(next(line for line in text.splitlines() if "阶段 0 r0" in line))
    bar_at = cell_len(text.splitlines()[first].split("F0")[0])
    axis = next(line for line in text.splitlines() if line.rstrip("│ ").endswith("ms") and " 0 " in line)
    assert cell_len(axis[: axis.index(" 0 ") + 1]) == bar_at
    absent(text, "pipeline stages", "sent between", "idle", "stage 0", "activation")


def test_hang_explanation_in_chinese(zh: None) -> None:
    rep = report()
    rep.hang = explain_hang(
        [Wait(0, "collective", 2, "dist.all_reduce(t)", "all_reduce (4,) float32", 5.0), Wait(1, "running", 3)],
        5,
        True,
    )
    html = rep.to_html()
    reason = "rank 0 在 all_reduce (4,) float32 中等待超过 5 s；rank 1 始终没有加入"
    assert f"已停止：{reason}；等待中的 rank 已被释放" in html
    assert "与其他 rank 不一致" in html and "运行中" in html and "<th>等待于</th>" in html
    absent(html, "stopped:", "waited in", "never joined", "odd one out", "released", "running<")
    text = terminal(rep)
    assert "已停止：rank 0 在 all_reduce (4,) float32 中等待超过 5 s；rank 1" in text and "始终没有加入" in text
    absent(text, "stopped:", "waited in", "odd one out", "waiting in")


def test_dead_and_failed_ranks_in_chinese(zh: None) -> None:
    dead = explain_hang([Wait(0, "collective", 4, "", "all_reduce (2,)"), Wait(1, "dead", 3)], 3, True)
    assert dead.reason == "rank 1 在第 3 行终止；rank 0 一直在 all_reduce (2,) 中等待"
    failed = explain_hang(
        [Wait(0, "collective", 2, "", "barrier"), Wait(1, "failed", 5, "", "ValueError: no")], 3, True
    )
    assert failed.reason == "rank 0 在 barrier 中等待超过 3 s；rank 1 在加入之前于第 5 行失败"
    rep = report()
    rep.ranks[0].error = RankError("stuck", "", "")
    rep.ranks[1].error = RankError("timeout", "RuntimeError", "Timed out waiting 3000ms for recv operation to complete")
    html = rep.to_html()
    assert "rank 0：卡住" in html and "rank 1：超时：Timed out waiting 3000ms" in html  # PyTorch's own words stay
    line = failure_line(rep)
    assert line == "rank 1 失败 — rank 0：卡住; rank 1：超时后从集合通信中释放（见上方报告）"


def test_pool_status_in_chinese(zh: None) -> None:
    s = PoolStatus(True, 2, "gloo", "local", "127.0.0.1", True, ((0, "h", 11, "alive (cpu)"), (1, "h", 12, "dead")))
    assert render_pool.summary(s) == "2 个 rank · gloo 进程组 · 启动器 local · MASTER_ADDR 127.0.0.1"
    html = s.to_html()
    assert "运行中（cpu）" in html and "已终止" in html and "<th>主机</th>" in html
    absent(html, "alive", "dead", "process group", "launcher", ">host<")
    text = terminal(s)
    assert "运行中（cpu）" in text and "已终止" in text
    absent(text, "alive", "dead")


def test_usage_errors_in_chinese(ip: Any, options: Any) -> None:
    cases = {
        "%distributed frobnicate": "%distributed frobnicate：应为 start, stop, restart, status 之一",
        "%distributed start --timeout 3": "--trace、--timeout 和 --no-start 只用于单元格形式（%%distributed）",
        "%%distributed -n 0\nx = 1": "-n 必须是至少为 1 的整数，而不是 0",
        "%%distributed --timeout -1\nx = 1": "--timeout 必须是正的秒数，而不是 -1.0",
        "%%distributed --no-start\nx = 1": "没有正在运行的进程池（--no-start）：先运行 %distributed start -n N",
        "%%distributed --backend nope\nx = 1": "未知的后端 'nope'",
        "%distributed start --launcher carrier-pigeon": "未知的启动器 'carrier-pigeon'",
    }
    with options(language="zh_CN"):
        for code, expected in cases.items():
            result = ip.run_cell(code)
            assert isinstance(result.error_in_exec, UsageError), code
            assert expected in str(result.error_in_exec), (code, str(result.error_in_exec))
        with capture_output() as shown:
            ip.run_line_magic("distributed", "status -o _status")
        status = ip.user_ns.pop("_status")
        assert "没有进程池：%distributed start -n N（或 %%distributed -n N）" in status.message
    assert "%distributed · 没有进程池" in shown.stdout and "no pool" not in shown.stdout


def test_a_rank_writes_in_the_notebooks_language_not_its_own(ip: Any) -> None:
    """engine.run takes the notebook's language with the cell: a rank's locale (English here) does not decide."""
    assert i18n.language() == "en"
    options = RunOptions(distributed_timeout=0.0, distributed_max_rows=5, distributed_value_chars=10, language="zh_CN")
    try:
        rep = engine.run("'a' * 50", "%%distributed", options)
    finally:
        i18n.set_language("en")
    assert rep.error is None, rep.error
    assert rep.value.startswith("'aaaaaaaaa") and "（还有 42 个字符）" in rep.value

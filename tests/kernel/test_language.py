"""A kernel started in a Chinese locale reports in Chinese; one option switches it live (issue 15)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.kernel.conftest import Kernel, new_kernel

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def zh_kernel() -> Iterator[Kernel]:
    with new_kernel(LANGUAGE="zh_CN", LANG="zh_CN.UTF-8") as (_, k):
        assert k.run("import torch").status == "ok"
        yield k


def _html(out: object) -> str:
    return "\n".join(d["text/html"] for d in out.displays if "text/html" in d)  # type: ignore[attr-defined]


def _has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_the_locale_chooses_chinese(zh_kernel: Kernel) -> None:
    out = zh_kernel.run("%config TorchMagics.language")
    assert "auto" in out.stdout + str(out.results)
    out = zh_kernel.run("%%tensorinfo\na = torch.ones(2, 3)\nb = torch.ones(3, 2)\nc = a + b")
    assert out.status == "error" and out.error is not None and out.error["ename"] == "RuntimeError"
    # PyTorch's own message is untouched; the explanation under it is Chinese
    assert "must match the size of tensor b" in out.error["evalue"]
    html = _html(out)
    assert _has_chinese(html) and "广播" in html, html[:2000]
    assert "Shapes are aligned from the right" not in html
    assert "c = a + b" in html and "(2, 3)" in html
    text = "\n".join(d.get("text/plain", "") for d in out.displays)
    assert "广播" in text


def test_accumulation_and_data_warnings(zh_kernel: Kernel) -> None:
    out = zh_kernel.run(
        "%%autograd\nw = torch.ones(3, requires_grad=True)\nfor step in range(3):\n    (w * 2).sum().backward()"
    )
    assert out.status == "ok", out.error
    html = _html(out)
    assert "累加" in html and "w.grad" in html and "zero_grad()" in html
    assert "was not zeroed" not in html
    out = zh_kernel.run("%%autograd\nw2 = torch.ones(3, requires_grad=True)\ny = (w2 ** 2).sum()\nw2.data.mul_(2)\ny.backward()")
    html = _html(out)
    assert ".data" in html and _has_chinese(html)
    assert "hides the change from autograd" not in html


def test_cuda_without_a_gpu_is_one_chinese_line(zh_kernel: Kernel) -> None:
    out = zh_kernel.run("%%device cuda\nm = torch.ones(2)")
    assert out.status == "error"  # IPython prints a UsageError as one line on stderr
    line = out.stderr.strip()
    assert line.startswith("UsageError: ") and "\n" not in line
    assert _has_chinese(line) and "--fallback cpu" in line and "cuda" in line


def test_switching_to_english_changes_the_next_report(zh_kernel: Kernel) -> None:
    assert zh_kernel.run('%config TorchMagics.language = "en"').status == "ok"
    try:
        out = zh_kernel.run("p = torch.ones(2, 3)\nq = torch.ones(4)\np + q")
        assert out.status == "error"
        html = _html(out)
        assert html and not _has_chinese(html)
    finally:
        zh_kernel.run('%config TorchMagics.language = "auto"')
    out = zh_kernel.run("p = torch.ones(2, 3)\nq = torch.ones(4)\np + q")
    assert _has_chinese(_html(out))

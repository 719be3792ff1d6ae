"""%tensorinfo in a real Jupyter kernel: HTML + plain text bundles, clean errors."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.kernel


def test_display_bundle_has_html_and_text(kernel: Any) -> None:
    assert kernel.run("import torch\nx = torch.arange(6.).reshape(2, 3)").status == "ok"
    out = kernel.run("%tensorinfo x")
    assert out.status == "ok" and len(out.displays) == 1
    bundle = out.displays[0]
    assert {"text/html", "text/plain"} <= set(bundle)
    assert "<table" in bundle["text/html"] and "(2, 3)" in bundle["text/html"]
    assert "x  matrix (2, 3) float32 cpu" in bundle["text/plain"]
    assert "\x1b[" not in bundle["text/plain"]


def test_escaping_in_the_kernel(kernel: Any) -> None:
    kernel.run('import torch\nd = {"<script>alert(1)</script>": torch.ones(1)}')
    out = kernel.run('%tensorinfo d["<script>alert(1)</script>"]')
    html = out.displays[0]["text/html"]
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_error_fails_the_cell_with_one_line(kernel: Any) -> None:
    out = kernel.run("%tensorinfo does_not_exist")
    assert out.status == "error"  # Run All stops here
    # IPython shows a UsageError as one line on stderr, with no traceback.
    assert out.stderr.strip() == "UsageError: %tensorinfo: name 'does_not_exist' is not defined"
    assert not out.displays


def test_namespace_table_and_out(kernel: Any) -> None:
    kernel.run("import torch\nnet = torch.nn.Linear(3, 3)")
    out = kernel.run("%tensorinfo -o rep\nprint(type(rep).__name__)")
    assert out.status == "ok" and "NamespaceReport" in out.stdout
    assert "net" in out.displays[0]["text/html"]

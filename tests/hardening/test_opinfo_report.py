"""benchmarks/opinfo_report.py: the section it writes, and only that section."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from tests.hardening import opinfo_sweep as S

ROOT = Path(__file__).resolve().parents[2]


def _script() -> Any:
    spec = importlib.util.spec_from_file_location("opinfo_report", ROOT / "benchmarks" / "opinfo_report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_write_replaces_only_its_section(tmp_path: Path) -> None:
    report = _script()
    doc = tmp_path / "reliability.md"
    report.write("## Operator conformance\n\nfirst\n", doc)
    text = doc.read_text()
    assert text.startswith("# Reliability") and text.endswith("## Operator conformance\n\nfirst\n")
    doc.write_text(text.replace("## Operator", "## State hygiene\n\nkeep me\n\n## Operator")
                   + "\n## Nothing kept alive\n\nkeep me too\n")
    report.write("## Operator conformance\n\nsecond\n", doc)
    new = doc.read_text()
    assert "first" not in new and "second" in new
    assert "## State hygiene\n\nkeep me\n\n## Operator conformance" in new
    assert new.endswith("## Nothing kept alive\n\nkeep me too\n")
    assert new.count("## Operator conformance") == 1


def test_section_numbers_and_reasons() -> None:
    report = _script()
    ok = S.OpResult("add", samples=3, available=5, grad_samples=2, compared={"trace": 3}, passed={"trace": 3})
    odd = S.OpResult(
        "empty", samples=1, available=2, compared={"trace": 1}, passed={"trace": 0},
        failures=["float32 sample 0 [trace]: out: values differ"],
        excluded=[("float32 sample 1", ("nondeterministic: a second bare run with the same seed differs "
                                       "after NaN was written to freed memory (out: values differ)"))],
    )
    none = S.OpResult("imag", skipped="supports neither float32 nor an integer dtype on CPU")
    text = report.section([ok, odd, none], 1.0, 1, "cmd")
    assert "| samples run | 4 |" in text and "| OpInfo entries | 3 |" in text
    assert "**Differences (torchmagic defects): 1.**" in text
    assert "- `empty` float32 sample 0 [trace]: out: values differ" in text
    assert "| `empty` | 1: float32 sample 1 | nondeterministic: a second bare run with the same seed differs |" in text
    assert "- `imag`: supports neither float32" in text

"""A minimal renderer module used by tests/test_report.py."""

from __future__ import annotations

from typing import Any

from torchmagic.core.html import esc, wrap
from torchmagic.core.term import txt


def to_html(report: Any) -> str:
    return wrap(f"<code>{esc(report.name)}</code> {esc(report.shape)}", "demo")


def to_rich(report: Any) -> Any:
    return txt(f"{report.name} {report.shape} {report.value}")

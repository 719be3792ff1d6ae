"""Print the OpInfo sweep's summary (what ran, what was excluded and why) after the run."""

from __future__ import annotations

import sys
from typing import Any


def pytest_terminal_summary(terminalreporter: Any) -> None:
    module = sys.modules.get("tests.hardening.test_opinfo")
    results = getattr(module, "RESULTS", None)
    if not results:
        return
    from tests.hardening.opinfo_sweep import summary_lines

    terminalreporter.section("OpInfo conformance")
    for line in summary_lines(results):
        terminalreporter.write_line(line)

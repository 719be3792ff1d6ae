"""Headless Chromium (Debian's package, driven by Playwright) for the page tests.

The browser tests skip when Playwright or Chromium is missing, unless the
environment variable ``CI`` is set: then they fail, so CI cannot go green
without really rendering the pages.  Install locally with
``apt-get install -y chromium`` (Playwright's own ``playwright install`` is
not needed).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts import nbtools


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so the browser tests must run)")
    pytest.skip(reason)


# Package scope: Playwright's sync API allows one running instance per thread, and
# tests elsewhere (the docs page check) start their own after this package ends.
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    if nbtools.chromium_path() is None:
        _unavailable("Chromium is not installed (apt-get install -y chromium)")
    with sync_playwright() as pw:
        b = nbtools.launch(pw)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def open_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """``open_page(path_or_html)`` -> a Playwright page, offline, 1200 px wide."""
    pages: list[Any] = []

    def _open(target: Path | str) -> Any:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        pages.append(page)
        nbtools.offline(page)
        if isinstance(target, Path):
            page.goto(target.resolve().as_uri(), wait_until="load")
        else:
            page.set_content(target, wait_until="load")
        return page

    yield _open
    for p in pages:
        p.close()

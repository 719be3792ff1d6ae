"""Shared fixtures: an in-process IPython shell with torchmagic loaded."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("COLUMNS", "120")
# The suite reads English text unless a test asks for another language (kernels inherit this too).
os.environ["LANGUAGE"] = "en"


@pytest.fixture(scope="session")
def _shell() -> Any:
    from IPython.testing import globalipapp

    globalipapp.start_ipython()
    return globalipapp.get_ipython()


@contextlib.contextmanager
def loaded(shell: Any) -> Iterator[Any]:
    """``shell`` with torchmagic loaded; unloaded after, and the names added meanwhile removed."""
    before = set(shell.user_ns)
    shell.run_line_magic("load_ext", "torchmagic")
    try:
        yield shell
    finally:
        shell.run_line_magic("unload_ext", "torchmagic")
        for name in set(shell.user_ns) - before:
            del shell.user_ns[name]


@pytest.fixture
def ip(_shell: Any) -> Iterator[Any]:
    """The test shell with torchmagic loaded; names the test adds are removed after."""
    with loaded(_shell) as shell:
        yield shell


@pytest.fixture
def capture() -> Any:
    """``capture()`` as a context manager collecting stdout/stderr/displays."""
    from IPython.utils.capture import capture_output

    return capture_output


@pytest.fixture
def options(ip: Any) -> Callable[..., Any]:
    """``with options(trace_max_rows=7):`` sets TorchMagics options for a block, as ``%config`` does.

    Afterwards the shell's config forgets them and the live magics go back to
    each trait's own default, so no test repeats a default or leaks a setting.
    """

    @contextlib.contextmanager
    def configured(**values: Any) -> Iterator[None]:
        from torchmagic.extension import _INSTANCES

        for name, value in values.items():
            ip.run_line_magic("config", f"TorchMagics.{name} = {value!r}")
        try:
            yield
        finally:
            magics = _INSTANCES.get(id(ip))
            for name in values:
                ip.config.TorchMagics.pop(name, None)
                if magics is not None:
                    magics.set_trait(name, magics.trait_defaults(name))

    return configured

"""core/guard.py: torchmagic's own failures are one stderr line; the user's stop and bad input pass."""

from __future__ import annotations

from typing import Any

import pytest
from IPython.core.error import UsageError

from torchmagic.core.guard import Fence, guarded, internal_failure


def test_internal_failure_is_one_line_naming_the_step(capsys: Any) -> None:
    internal_failure("rendering the report", ValueError("bad\nsecond line"))
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("torchmagic: rendering the report failed (ValueError: bad)")
    assert "Traceback" not in err


def test_guarded_swallows_our_exception_only(capsys: Any) -> None:
    with guarded("building"):
        raise RuntimeError("ours")
    assert "torchmagic: building failed (RuntimeError: ours)" in capsys.readouterr().err
    with pytest.raises(UsageError), guarded("parsing"):
        raise UsageError("bad flag")  # bad input is the user's: it passes through
    with pytest.raises(KeyboardInterrupt), guarded("showing"):
        raise KeyboardInterrupt  # the user asked to stop
    assert capsys.readouterr().err == ""


def test_fence_keeps_the_first_failure_counts_the_rest_and_says_it_once(capsys: Any) -> None:
    fence = Fence()
    fence.warn("recording")
    assert capsys.readouterr().err == ""  # nothing failed: nothing said
    first = KeyError("k")
    try:
        raise first
    except KeyError as exc:
        fence.fail(exc)
    assert first.__traceback__ is None  # no frames (and their tensors) kept alive
    fence.fail(ValueError("later"))
    fence.fail(ValueError("later"))
    fence.warn("recording")
    err = capsys.readouterr().err
    assert err.strip() == ("torchmagic: recording (3 ops affected) failed (KeyError: 'k'); the cell's own result "
                           "is unaffected. Please report this at the torchmagic issue tracker.")
    fence.warn("recording")
    assert capsys.readouterr().err == ""  # said once, then reset


def test_one_failure_is_not_counted(capsys: Any) -> None:
    fence = Fence()
    fence.fail(OSError("disk"))
    fence.warn("saving")
    assert "saving failed (OSError: disk)" in capsys.readouterr().err

"""Keep torchmagic's own failures away from the user's cell.

The policy (docs/reliability.md, "Internal failures"): when something inside
torchmagic fails — recording an op, building a report, rendering, showing —
the user gets one line on stderr that starts with ``torchmagic:`` and the cell
ends exactly as it would have without torchmagic: its value, its variables,
its own exception.  ``UsageError`` (bad input) and ``KeyboardInterrupt`` (the
user asked to stop) are not internal failures and pass through.

:func:`guarded` fences a block (report building and showing);
:class:`Fence` fences per-op bookkeeping inside a mode, where raising would
break the user's op: it keeps the first failure and says it once at the end.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from IPython.core.error import UsageError

from torchmagic.core.text import exc_line
from torchmagic.i18n import tr, trn

__all__ = ["Fence", "guarded", "internal_failure"]


def internal_failure(what: str, exc: BaseException) -> None:
    """Say in one line that ``what`` failed inside torchmagic (never a traceback)."""
    message = tr(
        "torchmagic: {what} failed ({error}); the cell's own result is unaffected. "
        "Please report this at the torchmagic issue tracker.",
        what=what,
        error=exc_line(exc),
    )
    print(message, file=sys.stderr)


@contextlib.contextmanager
def guarded(what: str) -> Iterator[None]:
    """Run the block; an internal ``Exception`` becomes :func:`internal_failure`."""
    try:
        yield
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - the point: torchmagic's bugs stay torchmagic's
        internal_failure(what, exc)


class Fence:
    """Per-op bookkeeping guard for recording modes: the first failure is kept, not raised.

    Usage inside ``__torch_function__``/``__torch_dispatch__``::

        try:
            self.record(...)
        except Exception as exc:
            self.fence.fail(exc)

    ``warn(what)`` after the cell prints the one line (once) if anything failed.
    """

    def __init__(self) -> None:
        self.first: BaseException | None = None
        self.count = 0

    def fail(self, exc: BaseException) -> None:
        self.count += 1
        if self.first is None:
            self.first = exc
            exc.__traceback__ = None  # keep no frames (and their tensors) alive

    def warn(self, what: str) -> None:
        if self.first is not None:
            if self.count > 1:
                what = trn("{what} ({n} op affected)", "{what} ({n} ops affected)", self.count, what=what)
            internal_failure(what, self.first)
            self.first = None
            self.count = 0

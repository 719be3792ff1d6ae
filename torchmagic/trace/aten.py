"""``--deep``: which aten ops each user-level op ran, read from PyTorch's profiler.

Why the profiler and not a ``TorchDispatchMode``: while any dispatch mode is
pushed, PyTorch treats every tensor as a subclass (``isTensorSubclassLike``)
and takes other paths in composite ops and backward formulas.  The OpInfo
sweep found that this changes results (the last bits of ``prod``/``median``
grads, the ``grad_fn`` of ``ctc_loss``, a skipped check in ``linalg.eig``'s
backward).  The profiler only observes: its callbacks run around each
dispatcher call and every op takes exactly the path it takes bare.

How it works:

* the recorder wraps each user-level op it records in a RecordFunction range
  (:meth:`AtenLog.open`) and we remember the op's row, in order;
* the legacy CPU profiler (no Kineto: nothing is printed, no trace file)
  returns each thread's push/pop events in order, so the k-th range is the
  k-th remembered row; aten ops inside a range are counted under that row.
  Ops on other threads (the autograd engine's device threads) count under
  the range that was open at the time;
* an aten op is counted when every aten op around it inside the range is a
  ``CompositeImplicitAutograd`` decomposition (``matmul`` → ``mm``): the ops
  the user's call turned into, not the kernels' own helpers (the scalar
  ``to`` inside ``add``, the ``resolve_conj`` inside ``mm``);
* events are drained every ``chunk`` ranges (stop, count, start again), so
  memory stays bounded in long loops.

Only one profiler can run on a thread.  If one is running already, or the
cell's code names the profiler (so it may start its own), ``--deep`` records
no aten ops and says why: the user's profiler must keep working.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping
from types import CodeType
from typing import TYPE_CHECKING, Any

import torch

from torchmagic.i18n import tr

if TYPE_CHECKING:
    from torch._C._profiler import ProfilerConfig

    from torchmagic.trace.rows import Row

__all__ = ["AtenLog", "profiler_conflict"]

RANGE = "torchmagic"
# names in a cell's code that may start PyTorch's profiler
_PROFILER_NAMES = frozenset(
    {"profile", "profiler", "profiler_legacy", "_enable_profiler", "_enable_profiler_legacy",
     "_prepare_profiler", "emit_nvtx", "emit_itt", "kineto_available"}
)
_CIA: dict[str, bool] = {}


def _code_names(code: CodeType, depth: int = 0) -> set[str]:
    names = set(code.co_names)
    if depth < 20:
        for const in code.co_consts:
            if isinstance(const, CodeType):
                names |= _code_names(const, depth + 1)
    return names


def _is_profiler(value: Any) -> bool:
    kinds = (torch.profiler.profile, torch.autograd.profiler.profile)
    try:
        return isinstance(value, kinds)
    except Exception:  # noqa: BLE001 - fenced: our failure must not reach the user
        return False


def profiler_conflict(codes: tuple[CodeType, ...] = (), namespace: Mapping[str, Any] | None = None) -> str:
    """Why aten ops can't be recorded for a cell with these code objects, or ``''``.

    The cell may start a profiler if its code names the profiler API, or uses
    a profiler object made earlier (``prof.step()``, ``prof.start()``).
    """
    if torch.autograd._profiler_enabled():
        return tr("aten ops not recorded: PyTorch's profiler is already running")
    names: set[str] = set()
    for code in codes:
        names |= _code_names(code)
    if names & _PROFILER_NAMES or (
        namespace is not None and any(_is_profiler(namespace.get(n)) for n in names if n in namespace)
    ):
        return tr("aten ops not recorded: the cell uses PyTorch's profiler, which can't run twice")
    return ""


def decomposes(name: str) -> bool:
    """Is aten op ``name`` (``'aten::matmul'``) a CompositeImplicitAutograd decomposition?"""
    known = _CIA.get(name)
    if known is not None:
        return known
    has = torch._C._dispatch_has_kernel_for_dispatch_key
    try:
        found = bool(has(name, "CompositeImplicitAutograd"))
    except RuntimeError:  # the profiler gives no overload: ask each (out= variants aside)
        packet = getattr(torch.ops.aten, name.removeprefix("aten::"), None)
        overloads = [o for o in (packet.overloads() if packet is not None else []) if "out" not in o]
        try:
            found = bool(overloads) and all(
                has(f"{name}.{o}" if o != "default" else name, "CompositeImplicitAutograd") for o in overloads
            )
        except RuntimeError:
            found = False
    if len(_CIA) < 4096:
        _CIA[name] = found
    return found


def _config() -> ProfilerConfig:
    from torch._C._profiler import ProfilerConfig, ProfilerState, _ExperimentalConfig

    # state, record_input_shapes, profile_memory, with_stack, with_flops, with_modules
    return ProfilerConfig(ProfilerState.CPU, False, False, False, False, False, _ExperimentalConfig())


class AtenLog:
    """Counts the aten ops under each recorded op; ``count(row, 'aten.mm')`` is called for each."""

    def __init__(self, count: Callable[[Row, str], None], chunk: int = 4096) -> None:
        self.count = count
        self.chunk = chunk
        self.pending: list[Row] = []  # rows, in the order their ranges were opened
        self.running = False
        self._range: Any = None  # torch's RecordFunction context manager

    def start(self) -> None:
        from torch._C._profiler import _RecordFunctionFast  # torch >= 2.2: fail here, not per op

        self._range = _RecordFunctionFast
        torch._C._autograd._enable_profiler_legacy(_config())
        self.running = True

    def stop(self) -> None:
        """Stop profiling and count what is left (always leaves the profiler off)."""
        if self.running:
            self.running = False
            self._count(self._disable())

    def open(self, row: Row) -> Any:
        """Enter a range for ``row``'s op; pass the result to :meth:`close` (None: not recording)."""
        if not self.running:
            return None
        rf = self._range(RANGE)
        rf.__enter__()
        self.pending.append(row)
        return rf

    def close(self, rf: Any, outermost: bool) -> None:
        rf.__exit__(None, None, None)
        if outermost and self.running and len(self.pending) >= self.chunk:
            self.running = False
            events = self._disable()
            self.start()
            self._count(events)

    def _disable(self) -> Any:
        """Stop the profiler; its events, per thread (the defaults clean up its thread state)."""
        return torch._C._autograd._disable_profiler_legacy()

    # -- reading the events ------------------------------------------------------
    def _count(self, threads: Any) -> None:
        pending, self.pending = self.pending, []
        ours = [t for t in threads if any(e.name() == RANGE for e in t if e.kind() == "push")]
        spans: list[tuple[float, float, Any]] = []
        for events in ours:
            spans.extend(self._walk(events, iter(pending), None))
        spans.sort(key=lambda s: s[0])
        starts = [s[0] for s in spans]
        for events in threads:
            if not any(events is t for t in ours):
                self._walk(events, None, (starts, spans))

    def _walk(self, events: Any, rows: Any, spans: Any) -> list[tuple[float, float, Any]]:
        """Count one thread's aten ops; returns the (start, end, row) of its ranges.

        ``rows`` yields the rows of this thread's ranges in order (None for
        another thread, whose ops go to the range open at their start time,
        looked up in ``spans``).
        """
        stack: list[tuple[int, Any, bool, float, bool]] = []  # handle, row, counting, start, is ours
        found: list[tuple[float, float, Any]] = []
        count = self.count
        for e in events:
            kind = e.kind()
            if kind == "push":
                name = e.name()
                if name == RANGE and rows is not None:
                    stack.append((e.handle(), next(rows, None), True, e.start_us(), True))
                    continue
                if stack:
                    row, counting = stack[-1][1], stack[-1][2]
                elif spans is not None:  # another thread: the range open at the time
                    row, counting = _span_at(spans, e.start_us()), True
                else:
                    row, counting = None, False
                if row is not None and counting and name.startswith("aten::"):
                    count(row, "aten." + name[6:])
                    counting = decomposes(name)
                stack.append((e.handle(), row, counting, e.start_us(), False))
            elif kind == "pop":
                handle = e.handle()
                i = len(stack) - 1
                while i >= 0 and stack[i][0] != handle:
                    i -= 1
                if i < 0:
                    continue  # opened before this chunk started
                _h, row, _c, start, ours = stack[i]
                del stack[i:]
                if ours and row is not None:
                    found.append((start, e.start_us(), row))
        return found


def _span_at(spans: tuple[list[float], list[tuple[float, float, Any]]], t: float) -> Any:
    starts, items = spans
    i = bisect.bisect_right(starts, t) - 1
    if i >= 0 and items[i][0] <= t <= items[i][1]:
        return items[i][2]
    return None

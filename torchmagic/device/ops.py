"""Per-op times for the breakdown of the slowest operations.

An "op" is a user-level torch call as a ``TorchFunctionMode`` sees it: what
the cell wrote (``torch.matmul``, ``Tensor.sum``) and the calls nn.Module
code makes for it (``F.linear``, ``Tensor.to`` inside ``model.to(...)``).
Everything a call runs inside torch is part of its time: a composite op is
one row, not its aten pieces, and ``loss.backward()`` is one
``Tensor.backward`` row covering the whole backward pass.

On the host clock an op's time is ``perf_counter`` around the call (CPU ops
are synchronous).  On CUDA each op gets a start and an end event taken from a
pool made *before* the cell runs; the times are read after the cell's single
final synchronisation.  When the pool runs out, later ops are still counted
but not timed (``OpStat.timed`` says how many were).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from torchmagic.core.funcs import func_info
from torchmagic.core.meta import shape_of
from torchmagic.device.report import OpStat
from torchmagic.device.timing import Clock

__all__ = ["OpTimer", "display_name", "op_key"]

# C modules behind the public torch namespaces: ``torch._C._linalg.linalg_norm`` is ``torch.linalg.norm``
_NAMESPACES = {
    "torch._C._nn": ("F.", ""),
    "torch.functional": ("torch.", ""),
    "torch.nn.functional": ("F.", ""),
    "torch._C._linalg": ("torch.linalg.", "linalg_"),
    "torch._C._fft": ("torch.fft.", "fft_"),
    "torch._C._special": ("torch.special.", "special_"),
    "torch._C._nested": ("torch.nested.", "nested_"),
    "torch._C._sparse": ("torch.sparse.", "sparse_"),
}


def display_name(func: Callable[..., Any]) -> str:
    """How a learner would write the call: ``Tensor.sum``, ``torch.matmul``, ``F.linear``.

    Tensor methods and properties are ``Tensor.<name>`` (``a + b`` is
    ``Tensor.add``), functions of the torch namespaces keep their namespace
    (``torch.linalg.norm``, ``F.softmax``); the base name comes from
    :func:`~torchmagic.core.funcs.func_info`.
    """
    try:
        return _cached_name(func)
    except TypeError:  # an unhashable callable
        return _display_name(func)


@functools.lru_cache(maxsize=4096)  # what a callable is never changes
def _cached_name(func: Callable[..., Any]) -> str:
    return _display_name(func)


def _display_name(func: Callable[..., Any]) -> str:
    name = func_info(func).name
    owner = getattr(func, "__objclass__", None)
    qualname = str(getattr(func, "__qualname__", "") or "")
    if (
        getattr(func, "__name__", "") == "__get__"
        or getattr(owner, "__name__", "") in ("TensorBase", "Tensor")
        or qualname.split(".")[0] in ("Tensor", "TensorBase")
    ):
        return f"Tensor.{name}"
    module = str(getattr(func, "__module__", "") or "")
    public = module if not any(part.startswith("_") for part in module.split(".")) else "torch"
    prefix, strip = _NAMESPACES.get(module, (public + ".", ""))
    if strip and name.startswith(strip):
        name = name[len(strip):]
    if not module.startswith("torch"):  # a user's or another library's function with __torch_function__
        return qualname or name
    return prefix + name


def _shape_text(arg: Any) -> str | None:
    try:
        shape = getattr(arg, "shape", None)
    except RuntimeError:  # a nested tensor: ragged dims are -1
        shape = shape_of(arg)
    if shape is None or not hasattr(arg, "dtype"):
        return None
    return "(" + ", ".join(str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def op_key(func: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any] | None = None) -> tuple[str, str]:
    """``('torch.matmul', '(64, 64) (64, 64)')``: the call and its tensor inputs' shapes.

    Keyword arguments count too: torch's Python functions (``nn.init.*``) hand
    every argument to the mode by keyword.
    """
    shapes: list[str] = []
    for arg in (*args, *(kwargs or {}).values()):
        text = _shape_text(arg)
        if text is None and isinstance(arg, (list, tuple)):
            inner = [t for t in (_shape_text(a) for a in arg[:4]) if t is not None]
            text = "[" + ", ".join(inner) + "]" if inner else None
        if text is not None:
            shapes.append(text)
    return display_name(func), " ".join(shapes)


@dataclass(slots=True)
class _Pool:
    """Device timing events made before the cell runs, handed out in pairs."""

    events: list[Any]
    next: int = 0


@dataclass(slots=True)
class _Group:
    """The calls of one (op, shapes) key so far."""

    count: int = 0
    timed: int = 0  # how many have a time
    total_ns: int = 0  # host clock: a running total
    handles: list[int] = field(default_factory=list)  # device clock: event pairs, read after the sync


K = TypeVar("K", bound=Hashable)


class OpTimer(Generic[K]):
    """Aggregates count and time per key while the cell runs (per-op keys: ``(op, shapes)``)."""

    def __init__(self, clock: Clock, pool_size: int = 512, pool: _Pool | None = None) -> None:
        self.clock = clock
        self.count = 0
        self._groups: dict[K, _Group] = {}
        self._shared = pool if pool is not None else _Pool(clock.new_events(2 * pool_size) if clock.has_events else [])

    def sharing(self) -> OpTimer[Any]:
        """Another timer (its own keys) that takes its events from this one's pool."""
        return OpTimer(self.clock, pool=self._shared)

    @property
    def _pool(self) -> list[Any]:
        return self._shared.events

    @property
    def kind(self) -> str:
        return "device" if self.clock.has_events else "cpu"

    def begin(self) -> int | None:
        """A handle for the op about to run (an event index, a ``perf_counter_ns`` timestamp or ``None``)."""
        if not self.clock.has_events:
            return time.perf_counter_ns()
        shared = self._shared
        i = shared.next
        if i + 1 >= len(shared.events):
            return None  # pool exhausted: counted, not timed
        shared.next = i + 2
        self.clock.record(shared.events[i])
        return i

    def end(self, key: K, handle: int | None, minus_ns: int = 0) -> None:
        """The op of ``handle`` is done; on the host clock ``minus_ns`` (time not its own) is taken out."""
        if self.clock.has_events and handle is not None:
            self.clock.record(self._pool[handle + 1])
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group()
        group.count += 1
        self.count += 1
        if handle is None:
            return
        group.timed += 1
        if self.clock.has_events:
            group.handles.append(handle)  # bounded by the event pool
        else:  # a running total: memory stays constant however many ops run
            group.total_ns += time.perf_counter_ns() - handle - minus_ns

    def totals(self) -> dict[K, tuple[int, float, int]]:
        """key -> (count, total ms, timed); call only after the device was synchronised."""
        out: dict[K, tuple[int, float, int]] = {}
        for key, group in self._groups.items():
            total = group.total_ns / 1e6
            if self.clock.has_events:
                total = sum(
                    self.clock.elapsed_ms(self._pool[h], self._pool[h + 1]) or 0.0 for h in group.handles
                )
            out[key] = (group.count, total, group.timed)
        return out

    def stats(self: OpTimer[tuple[str, str]], top: int) -> list[OpStat]:
        """The ``top`` (op, shapes) groups by total time; call only after the device was synchronised."""
        out = [
            OpStat(op=op, shapes=shapes, count=count, total_ms=total,
                   mean_ms=total / timed if timed else 0.0, timed=timed)
            for (op, shapes), (count, total, timed) in self.totals().items()
        ]
        out.sort(key=lambda s: (-s.total_ms, -s.count, s.op))
        return out[:top]

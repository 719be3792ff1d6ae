"""Memory a cell allocated: allocator statistics on CUDA, tracked storages elsewhere.

On CUDA the caching allocator knows the truth: we read ``memory_allocated``
before, reset the peak statistics, and read ``max_memory_allocated`` and
``memory_allocated`` after the final synchronisation.  Other devices (CPU,
MPS, meta) have no such statistics in torch, so :class:`TensorTracker` follows
the storages of the tensors returned by the cell's user-level torch calls (as
the ``%%device`` function mode sees them, including those nn.Module code
makes): bytes are added when a new storage appears and removed when that
storage is freed.  torch keeps one Python object per storage alive as long as
the storage lives (whoever holds it: a view, an ``nn.Parameter`` made from the
tensor, the autograd graph), so a weakref on it fires exactly then.  The
tracker does not see temporaries that live only inside one call (a composite
op's intermediates) nor tensors made by ``backward()`` (the ``.grad`` of each
leaf), so its peak is a lower bound of what the cell really allocated.  It
keeps only weakrefs and plain metadata, never a tensor, and the largest
tensors as plain :class:`CreatedTensor` records.
"""

from __future__ import annotations

import heapq
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torchmagic.core.meta import dtype_name, shape_of
from torchmagic.core.names import iter_named_tensors, user_names
from torchmagic.device.report import CreatedTensor, MemoryStats

if TYPE_CHECKING:
    import torch

__all__ = ["TensorTracker", "AllocatorStats", "allocator_for", "storage_key", "Where"]

_NO_STORAGE = (RuntimeError, NotImplementedError, TypeError, AttributeError)  # sparse, nested, ...
_MAX_NAMES = 3  # names listed for one row of the largest tensors
_MAX_MODULES = 64  # modules remembered for one row (its label folds them: enc.layers.0–11.linear1)


def storage_key(t: torch.Tensor) -> int | None:
    """One int per storage, the same for every tensor viewing it (``None``: a storage-less tensor).

    The key is the storage's address: once the storage is freed, a new one
    may get the same key, so a key identifies a storage only while it lives.
    """
    try:
        return int(t.untyped_storage()._cdata)
    except _NO_STORAGE:
        return None


Where = Callable[[], tuple[int, str, int, str]]
"""Where the cell is now: (line, source text, key of the innermost module running or 0, its layer).

Tensors made in repeated layers (``enc.layers.0.linear1`` …
``enc.layers.11.linear1``: one *layer*) share a row of the largest tensors.
"""


def _nowhere() -> tuple[int, str, int, str]:
    return 0, "", 0, ""


@dataclass(slots=True)
class _Made:
    """Tensors of one kind (shape, dtype, device) made by one op on one line in one layer.

    One row of the "largest tensors" table: a loop that makes the same
    activation five times is one row with a count.  Each storage it made
    points back to it (:class:`_Storage`), so at the end the live ones tell
    how many are still alive and under which names.
    """

    nbytes: int  # each
    seq: int
    key: tuple[Any, ...]
    record: CreatedTensor
    modules: dict[int, None] = field(default_factory=dict)  # keys of the modules that made them, in order
    listed: bool = True  # False once a bigger row took its place

    def __lt__(self, other: _Made) -> bool:  # the heap's order: smallest, then oldest, first
        return (self.nbytes, -self.seq) < (other.nbytes, -other.seq)


@dataclass(slots=True)
class _Storage:
    """A storage the cell made: the bytes it counts for, a weak reference, its row of the largest tensors."""

    counted: int
    ref: weakref.ref[Any]
    row: _Made | None = None


class TensorTracker:
    """Live and peak bytes of storages created while it is open, and the largest tensors.

    ``allocated`` only grows (bytes of every new storage counted), so the
    bytes a stretch of the cell made are the difference of two readings
    (:mod:`torchmagic.device.modules` reads it around each module call).
    """

    def __init__(self, top_k: int = 5, where: Where | None = None, device: torch.device | None = None) -> None:
        self.top_k = top_k
        self.device = device  # only storages on this device count towards live/peak
        self.where: Where = where or _nowhere
        self.live = 0
        self.peak = 0
        self.allocated = 0
        self.open = True
        self._storages: dict[int, _Storage] = {}  # storage key -> the storage while it lives
        self._largest: list[_Made] = []  # a heap: the smallest row first
        self._rows: dict[tuple[Any, ...], _Made] = {}
        self._seq = 0

    def _counts(self, device: torch.device) -> bool:
        """Whether storages on ``device`` count towards live and peak bytes."""
        dev = self.device
        if dev is None:
            return True
        if device.type != dev.type:
            return False
        return dev.index is None or device.index is None or device.index == dev.index

    def add(self, t: torch.Tensor, op: str, inputs: set[int] | frozenset[int] = frozenset()) -> None:
        """Note a call's output ``t``; counts its storage once, however many tensors share it.

        ``inputs`` are the storage keys of the call's inputs: an output sharing
        one of them (a view or an in-place result) is not new memory.
        """
        try:
            storage = t.untyped_storage()
            skey, nbytes = int(storage._cdata), int(storage.nbytes())
            if skey in self._storages or skey in inputs:
                return  # seen already (a view, an in-place result) or made before the cell
            ref = weakref.ref(storage, self._freed(skey))
        except _NO_STORAGE:
            return  # sparse, nested and other storage-less tensors
        device = t.device
        counted = nbytes if self._counts(device) else 0  # another device's memory: listed, not counted
        entry = self._storages[skey] = _Storage(counted, ref)
        self.live += counted
        self.allocated += counted
        if self.live > self.peak:
            self.peak = self.live
        if self.top_k > 0:
            entry.row = self._row_for(t, device, op, nbytes)

    def _freed(self, skey: int) -> Callable[[Any], None]:
        def callback(_ref: Any) -> None:
            if not self.open:
                return
            entry = self._storages.pop(skey, None)
            if entry is not None:
                self.live -= entry.counted

        return callback

    def _row_for(self, t: torch.Tensor, device: torch.device, op: str, nbytes: int) -> _Made | None:
        """The row of the largest tensors ``t`` counts in (``None``: too small to be listed)."""
        heap = self._largest
        if len(heap) >= self.top_k and nbytes < heap[0].nbytes:
            return None
        line, source, module, layer = self.where()
        try:
            shape: tuple[int, ...] = t.shape
        except RuntimeError:  # a nested tensor: ragged dims
            shape = shape_of(t)
        key = (line, op, shape, t.dtype, device, layer, nbytes)
        row = self._rows.get(key)
        if row is None:
            if len(heap) >= self.top_k and nbytes == heap[0].nbytes:
                return None  # a tie with the smallest row: the earlier one stays
            self._seq += 1
            record = CreatedTensor(shape=shape_of(t), dtype=dtype_name(t.dtype), device=str(device),
                                   nbytes=nbytes, line=line, source=source, op=op, count=0)
            row = _Made(nbytes, self._seq, key, record)
            if len(heap) < self.top_k:
                heapq.heappush(heap, row)
            else:
                gone = heapq.heapreplace(heap, row)
                gone.listed = False
                del self._rows[gone.key]
            self._rows[key] = row
        row.record.count += 1
        if module and len(row.modules) < _MAX_MODULES:
            row.modules[module] = None
        return row

    def finish(
        self, namespace: Mapping[str, Any] | None = None, modules: Callable[[list[int]], str] | None = None
    ) -> list[CreatedTensor]:
        """Stop tracking; the largest tensors, biggest first, with user names of those still alive.

        A tensor counts as alive while its storage is, whoever holds it: a
        name of the user's (``out``), a view, an ``nn.Parameter`` made from it
        (``nn.Linear`` wraps the ``torch.empty`` it made: the row then carries
        ``model.0.weight``) or autograd, which saves activations for backward.
        ``modules`` names the modules that made a row from their keys (see
        :mod:`torchmagic.device.modules`).
        """
        self.open = False
        by_storage: dict[int, str] | None = None
        names: dict[int, list[str]] = {}  # row seq -> names
        for entry in self._storages.values():
            row = entry.row
            storage = entry.ref()
            if row is None or not row.listed or storage is None:
                continue
            rec = row.record
            rec.alive += 1
            if by_storage is None:
                by_storage = _storage_names(namespace) if namespace is not None else {}
            name = by_storage.get(id(storage), "")
            if not name:
                rec.unnamed += 1
            elif name not in names.setdefault(row.seq, []):
                names[row.seq].append(name)
        out: list[CreatedTensor] = []
        for row in sorted(self._largest, key=lambda r: (-r.nbytes, r.seq)):
            rec = row.record
            rec.names = tuple(names.get(row.seq, [])[:_MAX_NAMES])
            rec.module = modules(list(row.modules)) if modules is not None and row.modules else ""
            out.append(rec)
        self._largest.clear()
        self._rows.clear()
        self._storages.clear()
        return out


def _storage_names(namespace: Mapping[str, Any]) -> dict[int, str]:
    """``id`` of a live storage object -> the user's name of a tensor on it (the name :func:`user_names` prefers).

    Storage objects, not addresses: a freed storage's address can be reused
    by the next one, and the tensor made there must not take the old row's name.
    """
    by_id = user_names(namespace)
    names: dict[int, str] = {}
    for _name, tensor in iter_named_tensors(namespace):
        name = by_id.get(id(tensor))
        if not name:
            continue
        try:
            storage = tensor.untyped_storage()
        except _NO_STORAGE:
            continue
        key = id(storage)
        if key not in names or ("." not in name and "[" not in name):
            names[key] = name
    return names


class AllocatorStats:
    """CUDA caching-allocator statistics around a cell (``module`` is ``torch.cuda`` or a fake)."""

    def __init__(self, module: Any, device: torch.device | str) -> None:
        self.module = module
        self.device = device
        self.before = 0

    def start(self) -> None:
        """Read the baseline and reset the peak (host-side calls, no synchronisation)."""
        self.before = int(self.module.memory_allocated(self.device))
        self.module.reset_peak_memory_stats(self.device)

    def stop(self, largest: list[CreatedTensor]) -> MemoryStats:
        """Read after the cell's final synchronisation."""
        peak = int(self.module.max_memory_allocated(self.device))
        after = int(self.module.memory_allocated(self.device))
        return MemoryStats(
            device=str(self.device),
            source="allocator",
            before_bytes=self.before,
            peak_bytes=max(peak - self.before, 0),
            net_bytes=after - self.before,
            largest=largest,
        )


def allocator_for(device: torch.device) -> AllocatorStats | None:
    """Allocator statistics where torch has them (CUDA), else ``None``."""
    import torch

    if device.type == "cuda":
        return AllocatorStats(torch.cuda, device)
    return None


def tracked_stats(device: torch.device, tracker: TensorTracker, largest: list[CreatedTensor]) -> MemoryStats:
    """Memory from :class:`TensorTracker` (net = storages still alive after the cell)."""
    return MemoryStats(
        device=str(device),
        source="tracked",
        before_bytes=0,
        peak_bytes=tracker.peak,
        net_bytes=tracker.live,
        largest=largest,
    )

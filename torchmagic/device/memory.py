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
from typing import Any

from torchmagic.core.meta import dtype_name, shape_of
from torchmagic.core.names import iter_named_tensors, user_names
from torchmagic.device.report import CreatedTensor, MemoryStats

__all__ = ["TensorTracker", "AllocatorStats", "allocator_for", "storage_key"]

_NO_STORAGE = (RuntimeError, NotImplementedError, TypeError, AttributeError)  # sparse, nested, ...


def storage_key(t: Any) -> int | None:
    """One int per storage, the same for every tensor viewing it (``None``: a storage-less tensor)."""
    try:
        return int(t.untyped_storage()._cdata)
    except _NO_STORAGE:
        return None

LineOf = Callable[[], tuple[int, str]]


class TensorTracker:
    """Live and peak bytes of storages created while it is open, and the largest tensors."""

    def __init__(self, top_k: int = 5, line_of: LineOf | None = None, device: Any = None) -> None:
        self.top_k = top_k
        self.device = device  # only storages on this device count towards live/peak
        self.line_of = line_of or (lambda: (0, ""))
        self.live = 0
        self.peak = 0
        self.open = True
        self._storages: dict[int, tuple[int, weakref.ref[Any]]] = {}  # storage key -> (bytes counted, ref)
        self._largest: list[tuple[int, int, CreatedTensor, weakref.ref[Any], int]] = []
        self._seq = 0

    def _counts(self, t: Any) -> bool:
        dev = self.device
        if dev is None:
            return True
        if t.device.type != dev.type:
            return False
        return dev.index is None or t.device.index is None or t.device.index == dev.index

    def add(self, t: Any, op: str, inputs: set[int] | frozenset[int] = frozenset()) -> None:
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
        counted = nbytes if self._counts(t) else 0  # another device's memory: listed, not counted
        self._storages[skey] = (counted, ref)
        self.live += counted
        self.peak = max(self.peak, self.live)
        self._consider(t, op, nbytes, skey)

    def _freed(self, skey: int) -> Callable[[Any], None]:
        def callback(_ref: Any) -> None:
            if not self.open:
                return
            entry = self._storages.pop(skey, None)
            if entry is not None:
                self.live -= entry[0]

        return callback

    def _consider(self, t: Any, op: str, nbytes: int, skey: int) -> None:
        if self.top_k <= 0:
            return
        if len(self._largest) >= self.top_k and nbytes <= self._largest[0][0]:
            return
        line, source = self.line_of()
        rec = CreatedTensor(
            shape=shape_of(t),
            dtype=dtype_name(t.dtype),
            device=str(t.device),
            nbytes=nbytes,
            line=line,
            source=source,
            op=op,
        )
        self._seq += 1
        item = (nbytes, -self._seq, rec, weakref.ref(t), skey)
        if len(self._largest) < self.top_k:
            heapq.heappush(self._largest, item)
        else:
            heapq.heapreplace(self._largest, item)

    def finish(self, namespace: Mapping[str, Any] | None = None) -> list[CreatedTensor]:
        """Stop tracking; the largest tensors, biggest first, with user names if still alive.

        A tensor counts as alive while its storage is (``nn.Linear`` wraps the
        ``torch.empty`` it made in a Parameter: the record then carries the
        parameter's name, ``model.0.weight``).
        """
        self.open = False
        by_id = user_names(namespace) if namespace is not None else {}
        by_storage: dict[int, str] | None = None
        out: list[CreatedTensor] = []
        for _nbytes, _seq, rec, ref, skey in sorted(self._largest, key=lambda i: (-i[0], -i[1])):
            t = ref()
            entry = self._storages.get(skey)
            rec.alive = t is not None or (entry is not None and entry[1]() is not None)
            rec.name = by_id.get(id(t), "") if t is not None else ""
            if rec.alive and not rec.name and namespace is not None:
                if by_storage is None:
                    by_storage = _storage_names(namespace, by_id)
                rec.name = by_storage.get(skey, "")
            out.append(rec)
        self._largest.clear()
        self._storages.clear()
        return out


def _storage_names(namespace: Mapping[str, Any], by_id: Mapping[int, str]) -> dict[int, str]:
    """Storage key -> the user's name of a tensor on it (the name :func:`user_names` prefers)."""
    names: dict[int, str] = {}
    for _name, tensor in iter_named_tensors(namespace):
        name = by_id.get(id(tensor))
        if not name:
            continue
        key = storage_key(tensor)
        if key is not None:
            names.setdefault(key, name)
    return names


class AllocatorStats:
    """CUDA caching-allocator statistics around a cell (``module`` is ``torch.cuda`` or a fake)."""

    def __init__(self, module: Any, device: Any) -> None:
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


def allocator_for(device: Any) -> AllocatorStats | None:
    """Allocator statistics where torch has them (CUDA), else ``None``."""
    import torch

    if device.type == "cuda":
        return AllocatorStats(torch.cuda, device)
    return None


def tracked_stats(device: Any, tracker: TensorTracker, largest: list[CreatedTensor]) -> MemoryStats:
    """Memory from :class:`TensorTracker` (net = storages still alive after the cell)."""
    return MemoryStats(
        device=str(device),
        source="tracked",
        before_bytes=0,
        peak_bytes=tracker.peak,
        net_bytes=tracker.live,
        largest=largest,
    )

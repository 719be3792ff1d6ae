"""Memory a cell allocated: allocator statistics on CUDA, tracked storages elsewhere.

On CUDA the caching allocator knows the truth: we read ``memory_allocated``
before, reset the peak statistics, and read ``max_memory_allocated`` and
``memory_allocated`` after the final synchronisation.  Other devices (CPU,
MPS, meta) have no such statistics in torch, so :class:`TensorTracker` follows
the storages of the tensors returned by the cell's user-level torch calls (as
the ``%%device`` function mode sees them, including those nn.Module code
makes): bytes are added when a new storage appears and removed when the last
tensor we saw on it is freed (a weakref callback).  It does not see
temporaries that live only inside one call (a composite op's intermediates)
nor tensors made by ``backward()`` (the ``.grad`` of each leaf), so its peak
is a lower bound of what the cell really allocated.  It keeps only weakrefs and plain metadata, never a
tensor, and the largest tensors as plain :class:`CreatedTensor` records.
"""

from __future__ import annotations

import heapq
import weakref
from typing import Any, Callable, Mapping

from torchmagic.core.meta import dtype_name, shape_of
from torchmagic.core.names import user_names
from torchmagic.device.report import CreatedTensor, MemoryStats

__all__ = ["TensorTracker", "AllocatorStats", "allocator_for"]

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
        self._storages: dict[int, list[int]] = {}  # storage key -> [nbytes, tensors seen alive]
        self._refs: dict[int, weakref.ref[Any]] = {}  # id(tensor) -> ref (keeps callbacks alive)
        self._largest: list[tuple[int, int, CreatedTensor, weakref.ref[Any]]] = []
        self._seq = 0

    def _counts(self, t: Any) -> bool:
        dev = self.device
        if dev is None:
            return True
        if t.device.type != dev.type:
            return False
        return dev.index is None or t.device.index is None or t.device.index == dev.index

    def add(self, t: Any, op: str, inputs: set[int] | frozenset[int] = frozenset()) -> None:
        """Note an op output ``t``; counts its storage once, however many views we see.

        ``inputs`` are the storage keys of the op's inputs: an output sharing
        one of them (a view or an in-place result) is not new memory.
        """
        key_id = id(t)
        old = self._refs.get(key_id)
        if old is not None and old() is t:
            return  # in-place op: the same tensor again
        try:
            storage = t.untyped_storage()
            skey, nbytes = int(storage._cdata), int(storage.nbytes())
        except (RuntimeError, NotImplementedError, TypeError, AttributeError):
            return  # sparse, nested and other storage-less tensors
        entry = self._storages.get(skey)
        if entry is None:
            if skey in inputs:
                return  # a view of a tensor made before the cell
            entry = self._storages[skey] = [nbytes, 0]
            if self._counts(t):
                self.live += nbytes
                self.peak = max(self.peak, self.live)
            else:
                entry[0] = 0  # another device's memory: listed, not counted
            self._consider(t, op, nbytes)
        entry[1] += 1
        self._refs[key_id] = weakref.ref(t, self._freed(skey, key_id))

    def _freed(self, skey: int, key_id: int) -> Callable[[Any], None]:
        def callback(_ref: Any) -> None:
            if not self.open:
                return
            self._refs.pop(key_id, None)
            entry = self._storages.get(skey)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] <= 0:
                self.live -= entry[0]
                del self._storages[skey]

        return callback

    def _consider(self, t: Any, op: str, nbytes: int) -> None:
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
        item = (nbytes, -self._seq, rec, weakref.ref(t))
        if len(self._largest) < self.top_k:
            heapq.heappush(self._largest, item)
        else:
            heapq.heapreplace(self._largest, item)

    def finish(self, namespace: Mapping[str, Any] | None = None) -> list[CreatedTensor]:
        """Stop tracking; the largest tensors, biggest first, with user names if still alive."""
        self.open = False
        names = user_names(namespace) if namespace is not None else {}
        out: list[CreatedTensor] = []
        for _nbytes, _seq, rec, ref in sorted(self._largest, key=lambda i: (-i[0], -i[1])):
            alive = ref() is not None
            rec.alive = alive
            rec.name = names.get(id(ref()), "") if alive else ""
            out.append(rec)
        self._largest.clear()
        self._refs.clear()
        self._storages.clear()
        return out


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

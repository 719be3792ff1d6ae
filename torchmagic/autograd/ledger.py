"""Remember what each leaf's ``.grad`` was after the last watched backward.

The accumulation detector (verified, see notes/torch-internals.md): after a
backward we keep ``(weakref(leaf.grad), leaf.grad._version)``.  If the next
backward's ``post_accumulate_grad`` hook finds the *same* grad object at
exactly that version + 1, autograd added onto the previous gradient without
anyone zeroing it.  ``optimizer.zero_grad()`` (set_to_none: a new object),
``zero_grad(set_to_none=False)`` and ``p.grad.zero_()`` (``zero_()`` bumps the
version), ``model.zero_grad()`` and ``p.grad = None`` all break the match, and
``opt.step()`` does not touch ``.grad``.  The ledger lives on the magics
instance, so the detector works across cells; it holds weak references only.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torchmagic.i18n import tr

if TYPE_CHECKING:
    import torch

__all__ = ["GradLedger", "Where"]


@dataclass
class _LedgerEntry:
    leaf: weakref.ref[torch.Tensor]
    grad: weakref.ref[torch.Tensor] | None
    version: int
    where: Where


@dataclass(frozen=True)
class Where:
    """Which watched backward() left a gradient: run number, cell source hash, line."""

    run: int
    cell: str
    line: int

    def describe(self, current: Where) -> str:
        if self.run == current.run:
            return tr("the backward() at line {line} of this cell", line=self.line)
        if self.cell == current.cell:
            return tr("the backward() at line {line} of the previous run of this cell", line=self.line)
        return tr("the backward() at line {line} of an earlier %%autograd cell", line=self.line)


class GradLedger:
    """What each leaf's ``.grad`` was right after its last watched backward (weakrefs only)."""

    def __init__(self) -> None:
        self._entries: dict[int, _LedgerEntry] = {}

    def __len__(self) -> int:
        self._prune()
        return len(self._entries)

    def _prune(self) -> None:
        dead = [k for k, e in self._entries.items() if e.leaf() is None]
        for k in dead:
            del self._entries[k]

    def remember(self, leaf: torch.Tensor, where: Where) -> None:
        if len(self._entries) > 4096:
            self._prune()
        grad = leaf.grad
        if grad is None:
            self._entries.pop(id(leaf), None)
            return
        entry = self._entries.get(id(leaf))
        if entry is not None and entry.leaf() is leaf and entry.grad is not None and entry.grad() is grad:
            entry.version, entry.where = int(grad._version), where  # a loop: the same objects every step
            return
        self._entries[id(leaf)] = _LedgerEntry(
            weakref.ref(leaf), weakref.ref(grad), int(grad._version), where
        )

    def accumulated_onto(self, leaf: torch.Tensor) -> Where | None:
        """Where the previous, un-zeroed gradient came from, if ``leaf.grad`` just grew from it."""
        return self._same_grad(leaf, writes=1)

    def untouched_since(self, leaf: torch.Tensor) -> Where | None:
        """Before a backward: the gradient is still exactly what the last backward left."""
        return self._same_grad(leaf, writes=0)

    def _same_grad(self, leaf: torch.Tensor, writes: int) -> Where | None:
        """The remembered ``where`` if ``leaf.grad`` is the tensor we saw, written ``writes`` times since."""
        entry = self._entries.get(id(leaf))
        if entry is None or entry.leaf() is not leaf or entry.grad is None:
            return None
        grad = leaf.grad
        if grad is None or id(entry.grad()) != id(grad):
            return None
        if int(grad._version) == entry.version + writes:
            return entry.where
        return None

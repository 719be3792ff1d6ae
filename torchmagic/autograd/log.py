"""What the ``%%autograd`` watcher saw while a cell ran, kept for the report.

Plain data, plus weak references that name things at the end of the cell
(roots of backward calls, outputs of untracked ops, ``.detach()`` results):
nothing here keeps a tensor alive.  The watcher and the backward recorder
write it; the session reads it once the cell is over.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torchmagic.autograd.graph import Graph
from torchmagic.autograd.report import BackwardCall, Jacobian, Note, Untracked

if TYPE_CHECKING:
    import torch

__all__ = ["WatchLog"]


@dataclass
class WatchLog:
    """What the watcher saw, as plain data (plus weakrefs for naming at the end)."""

    calls: list[BackwardCall] = field(default_factory=list)
    calls_total: int = 0
    graphs: list[Graph] = field(default_factory=list)  # graph read before each detailed call
    untracked: list[Untracked] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    jacobians: list[Jacobian] = field(default_factory=list)
    errors: list[tuple[BaseException, Graph | None, str]] = field(default_factory=list)
    roots: list[weakref.ref[torch.Tensor]] = field(default_factory=list)
    cuts: dict[int, tuple[weakref.ref[torch.Tensor], str]] = field(default_factory=dict)
    outputs: dict[int, weakref.ref[torch.Tensor]] = field(default_factory=dict)  # untracked outputs
    saved_cache: dict[tuple[int, str], Any] = field(default_factory=dict)
    op_grads: dict[tuple[int, str], str] = field(default_factory=dict)  # gradient reaching each op

    def live_cuts(self) -> dict[int, str]:
        """``id(tensor) -> description`` of the ``.detach()`` results still alive."""
        return {k: v[1] for k, v in self.cuts.items() if v[0]() is not None}

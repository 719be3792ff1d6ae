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
from torchmagic.autograd.values import Values
from torchmagic.autograd.walk import NodeKey

if TYPE_CHECKING:
    import torch

__all__ = ["WatchLog", "Accumulation", "NonFinite"]


@dataclass
class Accumulation:
    """A leaf whose ``.grad`` a backward added to without it being zeroed first."""

    name: str  # '' until the report names it (calls past the detailed ones do not look names up)
    line: int  # the backward() call's line
    first: int  # the first call that accumulated
    steps: int = 1  # how many calls accumulated onto it
    previous: str = ""  # where the old gradient came from, when known
    values: tuple[Values, Values, Values] | None = None  # before, added, after (a detailed call)


@dataclass(frozen=True)
class NonFinite:
    """A backward call after which some leaf's gradient holds NaN or inf."""

    call: int
    line: int
    leaves: tuple[str, ...]  # "w: 1 inf"
    origin: str  # the backward node where the non-finite gradient appeared ('' if unknown)
    origin_names: tuple[str, ...] = ()  # what that node's output is called in the cell
    root: str = ""  # the root itself was not finite: the forward pass made it
    inside: str = ""  # in a large graph: the module call whose untraced ops made it


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
    saved_cache: dict[NodeKey, Any] = field(default_factory=dict)
    op_grads: dict[NodeKey, str] = field(default_factory=dict)  # gradient reaching each op
    op_flags: dict[NodeKey, str] = field(default_factory=dict)  # "nonfinite" / "origin"
    accumulated: dict[int, Accumulation] = field(default_factory=dict)  # by id(leaf)
    nonfinite: list[NonFinite] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # the line of every backward call (first 1000)

    def live_cuts(self) -> dict[int, str]:
        """``id(tensor) -> description`` of the ``.detach()`` results still alive."""
        return {k: v[1] for k, v in self.cuts.items() if v[0]() is not None}

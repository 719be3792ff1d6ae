"""The recorder's own records while the cell runs: one :class:`Row` per op site, one :class:`Var` per shape set.

Mutable and compact (``__slots__``, strings, ints, tuples and weak
references: no tensors, no frames), because a loop bumps their counters
millions of times.  :mod:`torchmagic.trace.build` turns them into the plain
report dataclasses after the cell.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from torchmagic.core.funcs import FuncInfo
from torchmagic.errors.report import Operand
from torchmagic.trace.report import NEW
from torchmagic.trace.source import Site

if TYPE_CHECKING:
    import torch

    from torchmagic.core.broadcast import Alignment

__all__ = ["Row", "Var", "Input", "Made"]

# operand, its tensor, its name before the cell, what made it ("op"/"module", index) if the cell did
Input = tuple[Operand, "weakref.ref[torch.Tensor] | None", str, "tuple[str, int] | None"]
# id(tensor) -> (its weakref, what made it): the first output of each variant and module node
Made = dict[int, tuple["weakref.ref[torch.Tensor]", tuple[str, int]]]


class Var:
    """One distinct input/output signature of a row."""

    __slots__ = ("inputs", "outputs", "count", "effect", "notes", "broadcast")

    def __init__(self) -> None:
        self.inputs: list[Input] = []
        self.outputs: list[tuple[Operand, weakref.ref[torch.Tensor]]] = []
        self.count = 1
        self.effect = NEW
        self.notes: list[str] = []
        self.broadcast: Alignment | None = None


class Row:
    """Every execution of one op at one site: the cell instruction, the library frame it ran in, the op."""

    __slots__ = ("index", "line", "op", "info", "site", "via", "count", "variants", "other", "warnings",
                 "children", "children_other", "via_refs", "module", "inner", "inner_at")

    def __init__(self, index: int, line: int, info: FuncInfo, site: Site, via: str, module: int = -1) -> None:
        self.index = index
        self.line = line
        self.op = info.name
        self.info = info
        self.site = site
        self.via = via  # the library call it ran inside (``lin(x)``), "" when written on the line
        self.count = 0
        self.variants: dict[Any, Var] = {}  # signature -> Var
        self.other = 0  # executions beyond the per-row cap on variants
        self.warnings: list[str] = []
        self.children: dict[str, int] = {}  # --deep: aten op -> count
        self.children_other = 0
        self.via_refs: list[tuple[weakref.ref[torch.Tensor], str]] = []  # tensors passed by name to the library call
        self.module = module  # the module call node it ran in (-1: none)
        self.inner = ""  # its sub-expression in the user's own function (a forward defined in a cell)
        self.inner_at = ""  # where in the user's own function: "Net.forward, line 15: self.fc(x)"

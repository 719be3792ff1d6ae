"""The plain data an ``%%autograd`` run produces.

Everything here is strings, numbers, tuples and nested dataclasses, so a
report can be stored (``-o r``), serialised (``r.to_dict()``) and drawn again
without touching torch.  ``report.svg`` and ``report.to_dot()`` are the two
export formats for people who want files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from torchmagic.autograd.dot import to_dot
from torchmagic.autograd.graph import Graph
from torchmagic.autograd.values import Values
from torchmagic.core.report import Report

__all__ = [
    "LeafGrad",
    "BackwardCall",
    "Untracked",
    "Note",
    "Explanation",
    "Jacobian",
    "AutogradReport",
]


@dataclass(frozen=True)
class LeafGrad:
    """One leaf's ``.grad`` around one ``backward()`` call."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    before: Values
    after: Values
    added: str  # what this backward contributed (after - before)
    accumulated: bool = False  # added onto a gradient that was not zeroed
    previous: str = ""  # where the old gradient came from, when known


@dataclass(frozen=True)
class BackwardCall:
    """One ``backward()`` / ``torch.autograd.grad`` / ``torch.autograd.backward`` call."""

    index: int
    kind: str  # "backward" | "torch.autograd.backward" | "torch.autograd.grad"
    root: str  # what it was called on
    line: int
    source: str
    root_shape: tuple[int, ...] = ()
    root_dtype: str = ""
    gradient: str = ""  # the gradient=/grad_outputs= argument, or how it was implied
    retain_graph: bool = False
    leaves: tuple[LeafGrad, ...] = ()
    results: tuple[tuple[str, str], ...] = ()  # torch.autograd.grad: (input, gradient)
    graph_nodes: int = 0
    error: str = ""


@dataclass(frozen=True)
class Untracked:
    """Something the cell computed outside autograd's view."""

    kind: str  # "no_grad" | "inference_mode" | "detach" | "data"
    line: int
    source: str
    op: str
    inputs: tuple[str, ...]
    output: str = ""
    count: int = 1


@dataclass(frozen=True)
class Note:
    """A warning for the learner: what happened, both values, and the fix."""

    kind: str  # "accumulated" | "data-inplace" | "info"
    message: str
    fix: str = ""
    line: int = 0
    subject: str = ""  # the tensor the note is about
    count: int = 1  # how many times it happened in the cell


@dataclass(frozen=True)
class Explanation:
    """An autograd error in plain words (the error itself still fails the cell)."""

    kind: str  # "second-backward" | "inplace" | "no-grad" | "other"
    error: str  # the original first line
    plain: str
    fix: str
    tensors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Jacobian:
    """J = d(outputs)/d(leaves) for a small function, and the v·J that backward computed."""

    output: str
    output_shape: tuple[int, ...]
    columns: tuple[str, ...]  # "w[0]", "w[1]", ...
    rows: tuple[str, ...]  # "loss", "y[0]", ...
    matrix: tuple[tuple[float, ...], ...]
    v: tuple[float, ...]
    vj: tuple[float, ...]
    backward: tuple[float, ...] = ()  # what backward added to .grad, same order as columns
    matches: bool | None = None
    note: str = ""


@dataclass
class AutogradReport(Report):
    """Everything ``%%autograd`` / ``%autograd t`` found."""

    _renderer: ClassVar[str] = "torchmagic.autograd.render"

    title: str
    graph: Graph | None = None
    calls: list[BackwardCall] = field(default_factory=list)
    calls_total: int = 0
    untracked: list[Untracked] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    explanation: Explanation | None = None
    jacobians: list[Jacobian] = field(default_factory=list)
    leaves: list[tuple[str, str]] = field(default_factory=list)  # line form: (leaf, .grad)
    nothing: str = ""  # why there is nothing to draw
    failed: bool = False  # the cell raised

    @property
    def svg(self) -> str:
        """The graph as a standalone SVG document ('' when there is no graph)."""
        if self.graph is None or not self.graph.nodes:
            return ""
        from torchmagic.autograd.svg import graph_svg

        return graph_svg(self.graph)

    def to_dot(self) -> str:
        """Graphviz source of the graph (render it with ``dot -Tsvg``)."""
        return to_dot(self.graph or Graph())

    @property
    def accumulated(self) -> list[Note]:
        return [n for n in self.notes if n.kind == "accumulated"]

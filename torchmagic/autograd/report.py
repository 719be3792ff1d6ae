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
from torchmagic.autograd.fold import Drill
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
    "LayerFlow",
    "GradFlow",
    "LoopSummary",
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
    added: Values  # the gradient this backward sent into the leaf (what was added to .grad)
    accumulated: bool = False  # added onto a gradient that was not zeroed
    previous: str = ""  # where the old gradient came from, when known
    group: str = ""  # the module the leaf belongs to ("model.0"), from its name

    @property
    def status(self) -> str:
        """``"non-finite"``, ``"accumulated"`` or ``"ok"``."""
        if not (self.after.finite and self.added.finite):
            return "non-finite"
        return "accumulated" if self.accumulated else "ok"


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
    error: str = ""  # the exception's type when the call raised (its text is in the traceback)
    loss: float | None = None  # the root's value when it is one number


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

    kind: str  # "accumulated" | "data-inplace" | "nonfinite" | "partial" | "info"
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


@dataclass(frozen=True)
class LayerFlow:
    """One layer's gradient across the steps of a training loop."""

    name: str  # the module ("model.0") or, for a leaf outside modules, its name
    tensors: int  # parameter tensors in it
    norms: tuple[float, ...]  # gradient norm (all its parameters together) on each sampled step
    ratios: tuple[float, ...] = ()  # ‖update‖ / ‖weight‖ on the sampled optimizer steps
    flag: str = ""  # "" | "vanishing" | "exploding" | "non-finite" | "no gradient"
    why: str = ""  # the numbers behind the flag


@dataclass(frozen=True)
class GradFlow:
    """Per-layer gradient norms (and update/weight ratios) across a loop's sampled steps."""

    steps: tuple[int, ...]  # which backward calls were sampled
    layers: tuple[LayerFlow, ...]
    update_steps: tuple[int, ...] = ()  # sampled steps on which an optimizer stepped


@dataclass(frozen=True)
class LoopSummary:
    """A cell that called ``backward()`` many times, summarised (the training loop)."""

    steps: int  # backward calls
    line: int  # the line of the (last) backward call
    loop_line: int  # the ``for``/``while`` around it (0 when there is none)
    loop_source: str
    root: str  # what backward() was called on ("loss")
    losses: tuple[float, ...]  # the root's value on the sampled steps
    loss_steps: tuple[int, ...]
    optimizers: tuple[str, ...] = ()  # names of the optimizers that stepped
    optimizer_steps: int = 0
    accumulated: tuple[str, ...] = ()  # leaves whose gradient was never zeroed between steps
    accumulated_steps: int = 0  # backward calls that added onto an un-zeroed gradient
    detailed: int = 0  # how many of the calls are in ``calls`` in full
    flow: GradFlow | None = None


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
    loop: LoopSummary | None = None  # the cell called backward() many times
    drills: list[Drill] = field(default_factory=list)  # the inside of each folded module box

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

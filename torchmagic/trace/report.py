"""The plain data a cell trace is made of (operands and explanations: :mod:`torchmagic.errors.report`).

Everything here is str, int, float, bool, tuples and nested dataclasses: no
tensors, frames or autograd nodes, so a report can be kept (``-o NAME``),
serialised (``to_dict()``) and rendered long after the cell's tensors are
gone.  The renderer (:mod:`torchmagic.trace.render`) reads only these classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torchmagic.core.broadcast import Alignment
from torchmagic.core.report import Report
from torchmagic.errors.report import Explanation, Operand
from torchmagic.i18n import tr, trn

__all__ = ["Variant", "OpRow", "ModuleCall", "AnnotatedLine", "NanOrigin", "NanReport", "NanWatchState", "TraceReport"]

# What an op did with memory.
NEW = "new"  # a new tensor with its own storage
VIEW = "view"  # shares storage with an input
INPLACE = "in-place"  # modified an input
SAME = "same"  # returned an input unchanged (e.g. .contiguous() on a contiguous tensor)
NONE = ""  # no tensor output


@dataclass
class Variant:
    """One distinct set of input/output shapes seen for a row (a loop may see several)."""

    inputs: tuple[Operand, ...]
    outputs: tuple[Operand, ...]
    count: int = 1
    effect: str = NEW
    notes: tuple[str, ...] = ()  # "-1 → 4", "int64 + float32 → float32", ...
    broadcast: Alignment | None = None


@dataclass
class OpRow:
    """Every execution of one op at one place of the cell, aggregated."""

    index: int
    line: int  # as in the notebook: the %%tensorinfo line is 1, the body starts at 2
    source: str  # that line's text
    expression: str  # the sub-expression that ran the op, e.g. "x @ w.T" or "lin(x)"
    op: str  # "matmul", "view", "__getitem__", "linear", ...
    via: str = ""  # the library call it happened in ("lin(x)") when not on the line itself
    count: int = 1
    variants: list[Variant] = field(default_factory=list)
    other_count: int = 0  # executions whose shapes were beyond the per-row cap
    warnings: list[str] = field(default_factory=list)
    children: list[tuple[str, int]] = field(default_factory=list)  # --deep: aten op, count
    children_other: int = 0
    module: int = -1  # index of the ModuleCall it ran in (-1: on the cell's line itself)
    inner: str = ""  # the sub-expression in the user's own function that ran it (``self.fc(x)``)
    nonfinite: int = 0  # executions whose output held NaN or ±Inf
    nan_origin: bool = False  # the first op that made them from finite inputs


@dataclass
class NanOrigin:
    """Where NaN/±Inf first appeared: the op that made them from finite inputs (or got them from its inputs)."""

    line: int
    source: str  # the line's text
    expression: str  # the sub-expression that ran the op, "torch.log(x)"
    op: str
    made: str  # "1 NaN and 1 −Inf"
    why: str = ""  # "log of a negative number and of 0"
    came_in: tuple[str, ...] = ()  # labels of inputs that held them already (from before the cell)
    where: str = ""  # "net.fc (Linear)" when it ran inside a module
    note: str = ""  # e.g. read once at the end of the cell on an accelerator: no counts, no reason

    def sentence(self) -> str:
        """``"line 3: torch.log(x) made 1 NaN and 1 −Inf (log of a negative number and of 0)"``."""
        code = self.expression or self.source
        if self.where:
            code = tr("{code} in {where}", code=code, where=self.where)
        if self.came_in:
            return tr("line {line}: {code} gave {made} because its input {inputs} held non-finite values already "
                      "(made before this cell)", line=self.line, code=code, made=self.made,
                      inputs=", ".join(self.came_in))
        if self.why:
            return tr("line {line}: {code} made {made} ({why})", line=self.line, code=code, made=self.made,
                      why=self.why)
        return tr("line {line}: {code} made {made}", line=self.line, code=code, made=self.made)


@dataclass
class NanWatchState(Report):
    """What ``%tensorinfo --nan on|off`` answers: the watch's new state."""

    _renderer = "torchmagic.trace.render_nan"

    on: bool

    def sentence(self) -> str:
        if self.on:
            return tr("NaN watch on: from the next cell on, a cell that makes NaN or ±Inf is told which op made "
                      "them first (line, sub-expression, why); {off} stops it", off="%tensorinfo --nan off")
        return tr("NaN watch off")


@dataclass
class NanReport(Report):
    """What the any-cell NaN watch (``%tensorinfo --nan on``) says under a cell that made NaN/±Inf."""

    _renderer = "torchmagic.trace.render_nan"

    origin: NanOrigin
    carried: int = 0  # later ops whose outputs held them too


@dataclass
class ModuleCall:
    """One ``nn.Module`` call site of the cell: where it sits in the tree, what went in and out, what ran inside.

    ``items`` lists what ran inside in the order it first ran: ``("op", row
    index)`` and ``("module", module index)``.  Identical siblings in a row
    (``layers.0`` … ``layers.11``) fold into the first: it gets ``repeat``,
    the ``instances``' paths and their ``differences``; the others are
    marked ``folded``.
    """

    index: int
    path: str  # "net.conv1", "enc.layers.0.self_attn"
    type: str  # "Conv2d"
    parent: int  # -1 for a call made by the cell itself
    line: int  # the cell line of the outermost call
    calls: int
    inputs: str  # shapes of the first call's tensors, "(8, 3, 32, 32)"
    outputs: str
    params: int  # parameter elements (not tensors), its children's included
    seconds: float  # inclusive, all calls
    items: list[tuple[str, int]] = field(default_factory=list)
    shape_sets: int = 1  # distinct input shapes over its first 16 calls
    opaque: bool = False  # ran untraced (eval mode: PyTorch's fast path stays available)
    repeat: int = 1
    instances: tuple[str, ...] = ()
    differences: tuple[str, ...] = ()
    folded: bool = False
    differ: tuple[int, ...] = ()  # indexes of ``differences`` whose shapes differ from the first instance's


@dataclass(frozen=True)
class AnnotatedLine:
    """One cell line with the shapes it produced as a trailing comment."""

    line: int
    text: str
    comment: str = ""


@dataclass
class TraceReport(Report):
    """What ``%%tensorinfo`` shows for a cell."""

    _renderer = "torchmagic.trace.render"

    rows: list[OpRow]
    total_ops: int
    distinct_ops: int
    dropped_ops: int  # ops not shown because the row cap was reached
    seconds: float
    deep: bool = False
    deep_note: str = ""  # why --deep recorded no aten ops (PyTorch's profiler was busy)
    view: str = "table"  # or "source" (the annotated source only)
    annotated: list[AnnotatedLine] = field(default_factory=list)
    error: Explanation | None = None
    max_rows: int = 0
    default_dtype: str = "float32"  # dtypes equal to this are not repeated in the terminal view
    modules: list[ModuleCall] = field(default_factory=list)
    order: list[tuple[str, int]] = field(default_factory=list)  # the cell's own items, as ModuleCall.items
    nan: NanOrigin | None = None  # where NaN/±Inf started, if the cell made any
    notes: list[tuple[int, str]] = field(default_factory=list)  # (line, note) read from the source itself

    def summary(self) -> str:
        """``'12 ops (5 distinct) in 3 rows · 1.2 ms'``."""
        text = tr("{ops} ({distinct} distinct) in {rows}",
                  ops=trn("{n} op", "{n} ops", self.total_ops), distinct=self.distinct_ops,
                  rows=trn("{n} row", "{n} rows", len(self.rows)))
        if self.dropped_ops:
            text = tr("{summary}, {n} more beyond the {cap}-row cap", summary=text, n=self.dropped_ops,
                      cap=self.max_rows)
        ms = self.seconds * 1000
        text += f" · {ms:.1f} ms" if ms >= 1 else f" · {ms * 1000:.0f} µs"
        return text

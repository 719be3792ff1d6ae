"""Plain-data reports for ``%tensorinfo`` (no tensors inside, ever)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torchmagic.core.report import Report

__all__ = [
    "Stats",
    "Histogram",
    "Picture",
    "TensorReport",
    "ArrayReport",
    "ValueReport",
    "ParamRow",
    "ModuleReport",
    "InfoReport",
    "SummaryRow",
    "NamespaceRow",
    "NamespaceReport",
    "ItemReport",
]

_RENDERER = "torchmagic.tensors.render"


@dataclass
class Stats:
    """Summary statistics; ``of`` says what they describe (values, |z|, a sample)."""

    of: str
    count: int  # elements the statistics were computed over
    minimum: float | int | bool | None = None
    maximum: float | int | bool | None = None
    mean: float | None = None
    std: float | None = None
    zeros: int = 0
    nans: int = 0
    posinf: int = 0
    neginf: int = 0
    sampled: bool = False
    note: str = ""
    finite: int = 0  # of ``count``: the values min/max/mean/std describe
    subnormal: int = 0  # nonzero values below the dtype's smallest normal number

    @property
    def nonfinite(self) -> int:
        return self.nans + self.posinf + self.neginf


@dataclass
class Histogram:
    """Counts of values in equal-width bins between ``low`` and ``high``."""

    low: float
    high: float
    counts: list[int]


@dataclass
class Picture:
    """Images drawn from a tensor: PNGs for notebooks, tiny pixel grids for terminals."""

    layout: str  # e.g. "(N, C, H, W): 8 images of 3×32×32, RGB"
    mapping: str  # how values became 0–255 pixels
    pngs: list[str]  # base64 PNG per image/frame
    thumbs: list[list[list[tuple[int, int, int]]]]  # small RGB grids for the terminal
    shown: int = 0
    total: int = 0


@dataclass
class TensorReport(Report):
    """Everything about one tensor."""

    _renderer = _RENDERER

    name: str
    type_name: str
    shape: tuple[int, ...]
    rank: int
    rank_word: str
    dtype: str
    device: str
    layout: str
    requires_grad: bool
    is_leaf: bool
    grad_fn: str | None
    grad: str | None  # "(2, 3) float32, norm 1.23" or None
    strides: tuple[int, ...] | None
    contiguous: bool | None
    numel: int
    nbytes: int
    element_size: int
    storage_offset: int | None
    pinned: bool | None
    sharing: list[str] = field(default_factory=list)
    stats: Stats | None = None
    histogram: Histogram | None = None
    preview: str = ""
    preview_of: str = ""  # what the preview shows: the name, or its first matrix
    picture: Picture | None = None
    notes: list[str] = field(default_factory=list)
    dtensor: Any = None  # torchmagic.distributed.report.DTensorFacts when the tensor is a DTensor


@dataclass
class ArrayReport(Report):
    """A NumPy array, and what torch would make of it."""

    _renderer = _RENDERER

    name: str
    shape: tuple[int, ...]
    dtype: str
    nbytes: int
    from_numpy: str  # "(2, 3) float64 tensor sharing memory" or why it fails
    tensor_copy: str
    sharing: list[str] = field(default_factory=list)
    preview: str = ""


@dataclass
class ValueReport(Report):
    """A Python value (number, list, anything) and what ``torch.tensor`` would make of it."""

    _renderer = _RENDERER

    name: str
    type_name: str
    value: str  # truncated repr
    as_tensor: str  # "(2, 2) int64 tensor" or the error torch.tensor would raise
    ok: bool


@dataclass
class ParamRow:
    name: str
    kind: str  # "parameter" or "buffer"
    shape: tuple[int, ...]
    dtype: str
    device: str
    requires_grad: bool
    numel: int
    nbytes: int


@dataclass
class ModuleReport(Report):
    """An ``nn.Module``: its parameters and buffers."""

    _renderer = _RENDERER

    name: str
    type_name: str
    rows: list[ParamRow]
    total_params: int
    trainable_params: int
    total_bytes: int
    devices: list[str]
    rows_shown: int
    summary: str  # first line of the module's repr, e.g. "Linear(in_features=3, ...)"
    param_tensors: int = 0  # how many tensors hold the total_params elements


ItemReport = TensorReport | ArrayReport | ValueReport | ModuleReport


@dataclass
class InfoReport(Report):
    """The result of one ``%tensorinfo a b c``: one section per expression."""

    _renderer = _RENDERER

    items: list[ItemReport]


@dataclass
class SummaryRow:
    """One tensor, array or module in one line: what lovely-tensors prints, and the grad state.

    ``stats`` (range, mean, std, NaN/±Inf counts; of a strided sample for
    big tensors) is ``None`` when the values cannot be read (``note`` says
    why) and for modules (``note``: "262 parameters in 4 tensors").
    """

    name: str
    kind: str  # "Tensor", "Parameter", "ndarray", a module's class name, another value's type
    shape: tuple[int, ...] | None
    dtype: str
    device: str
    nbytes: int
    grad: str  # "", "requires grad", "requires grad, .grad set", or the node that made it ("MulBackward0")
    stats: Stats | None = None
    note: str = ""
    problem: str = ""  # why the values could not be read (said once under the listing)


NamespaceRow = SummaryRow  # the earlier name of a row of the listing


@dataclass
class NamespaceReport(Report):
    """One line per item: every tensor, array and module in the namespace, largest first
    (``%tensorinfo`` alone), or the items asked for (``%tensorinfo --short x y``, ``asked``)."""

    _renderer = _RENDERER

    rows: list[SummaryRow]
    total_bytes: int
    hidden: int = 0  # rows beyond the display cap
    asked: bool = False

"""Plain-data results of ``%%device`` and ``%device``.

Everything here is str/int/float/bool/tuples and nested dataclasses: a report
can be kept with ``-o NAME``, serialised with ``to_dict()`` and rendered
without torch.  Times are milliseconds, sizes are bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torchmagic.core.report import Report

__all__ = [
    "Timing",
    "RepeatStats",
    "OpStat",
    "Transfer",
    "SyncOp",
    "CreatedTensor",
    "MemoryStats",
    "ModuleStat",
    "Operand",
    "Mismatch",
    "DeviceRun",
    "DeviceReport",
    "DeviceFacts",
    "DeviceInfoReport",
    "PlacementRow",
    "ModelMapReport",
]


@dataclass
class Timing:
    """One timed execution of the cell.

    ``host_ms``: until Python returned from the cell (for CUDA this is mostly
    launch time).  ``wall_ms``: until the device finished too (after the one
    synchronisation at the end).  ``device_ms``: between two device events
    around the cell (``None`` where the device has no event timer).
    """

    host_ms: float
    wall_ms: float
    device_ms: float | None = None


@dataclass
class RepeatStats:
    """``-n loops -r repeats`` after the warm-up run, like ``%timeit``.

    ``per_loop_ms`` has one value per repeat (that repeat's time divided by
    ``loops``); ``kind`` says which clock (``"device"`` or ``"wall"``).
    """

    loops: int
    repeats: int
    kind: str
    per_loop_ms: tuple[float, ...]
    wall_per_loop_ms: tuple[float, ...]
    best_ms: float
    mean_ms: float
    std_ms: float


@dataclass
class OpStat:
    """One (torch call, input shapes) group of the per-op breakdown (``op`` like ``torch.matmul``)."""

    op: str
    shapes: str
    count: int
    total_ms: float
    mean_ms: float
    timed: int  # how many of ``count`` calls have a time (CUDA event pool may run out)


@dataclass
class Transfer:
    """Copies across devices made from one cell line (same op and direction)."""

    line: int
    source: str
    op: str
    src: str
    dst: str
    direction: str  # "host→device", "device→host", "device→device"
    count: int
    nbytes: int
    shape: tuple[int, ...]
    dtype: str


@dataclass
class SyncOp:
    """An operation that makes Python wait for the device."""

    line: int
    source: str
    op: str
    device: str
    count: int
    why: str


@dataclass
class CreatedTensor:
    """The largest tensors the cell allocated: tensors of one shape made by one op on one line.

    ``count`` tensors were made there (a loop makes several), ``nbytes``
    each; ``alive`` of them were still in memory after the cell, under the
    user's ``names`` where it has them (the rest are held elsewhere: saved by
    autograd for backward, inside an object).  ``module`` is the
    ``nn.Module`` whose forward made them (``model.0``), if any.
    """

    shape: tuple[int, ...]
    dtype: str
    device: str
    nbytes: int
    line: int
    source: str
    op: str
    count: int = 1
    alive: int = 0
    names: tuple[str, ...] = ()
    unnamed: int = 0  # alive without a name of the user's
    module: str = ""

    @property
    def freed(self) -> int:
        return self.count - self.alive


@dataclass
class MemoryStats:
    """Memory the cell allocated on the device.

    ``source`` is ``"allocator"`` (CUDA caching-allocator statistics, exact)
    or ``"tracked"`` (storages of the tensors the cell's user-level torch
    calls returned, as seen by torchmagic: other devices have no allocator
    statistics; temporaries inside one call and gradients made by backward
    are not seen, so the tracked peak is a lower bound).
    ``peak_bytes`` and ``net_bytes`` are relative to the start of the cell.
    """

    device: str
    source: str
    before_bytes: int
    peak_bytes: int
    net_bytes: int
    largest: list[CreatedTensor] = field(default_factory=list)


@dataclass
class ModuleStat:
    """One ``nn.Module`` the cell called (or a run of repeated layers folded into one row).

    Times and bytes include the module's children.  ``forward_ms`` is the
    time inside its forward calls, torchmagic's own recording taken out;
    ``backward_ms`` the time of the backward steps of the ops it ran
    (``None``: no backward ran through it in the cell).  ``allocated_bytes``:
    new tensors its forward made (temporaries included); ``kept_bytes``: of
    those, what was still alive when forward returned (its output and what
    autograd saved for backward: the activation memory); ``grad_bytes``: the
    gradients its backward steps made.  ``params`` counts parameter elements
    (children included); ``instances`` > 1 for a folded row.
    """

    path: str
    type_name: str
    depth: int
    calls: int
    forward_ms: float
    backward_ms: float | None
    allocated_bytes: int
    kept_bytes: int
    grad_bytes: int
    params: int
    out_shape: str = ""
    instances: int = 1
    name: str = ""  # the path after its parent row's, for a tree (``0`` under ``model``)


@dataclass
class Operand:
    name: str
    shape: tuple[int, ...]
    dtype: str
    device: str


@dataclass
class Mismatch:
    """A device-mismatch error inside the cell, with each operand's device."""

    line: int
    source: str
    op: str
    message: str
    operands: list[Operand]
    hint: str


@dataclass
class DeviceRun:
    """What running the cell on one device cost."""

    device: str
    requested: str
    notice: str = ""
    first: Timing | None = None
    first_recorded: bool = True
    recording_ms: float = 0.0
    repeats: RepeatStats | None = None
    op_count: int = 0
    ops: list[OpStat] = field(default_factory=list)
    op_time_kind: str = "cpu"  # "cpu" (perf_counter per op) or "device" (events per op)
    transfers: list[Transfer] = field(default_factory=list)
    transfer_count: int = 0
    transfer_bytes: int = 0
    syncs: list[SyncOp] = field(default_factory=list)
    memory: MemoryStats | None = None
    modules: list[ModuleStat] = field(default_factory=list)  # as shown: repeated layers folded
    modules_unfolded: list[ModuleStat] = field(default_factory=list)  # every module called, in call order
    modules_total: int = 0  # modules called (more than the unfolded rows when capped)
    mismatch: Mismatch | None = None
    error: str = ""

    @property
    def best_ms(self) -> float | None:
        """The time to compare devices by: the best repeat, else the first run's wall time."""
        if self.repeats is not None:
            return min(self.repeats.wall_per_loop_ms)
        return self.first.wall_ms if self.first is not None else None


@dataclass
class DeviceReport(Report):
    """``%%device``: one run per device (two or more with ``--compare``)."""

    _renderer = "torchmagic.device.render"

    runs: list[DeviceRun]
    cell_runs: int
    compare: bool = False

    def speedup(self, run: DeviceRun) -> float | None:
        """How many times faster ``run`` was than the first device (wall clock)."""
        base = self.runs[0].best_ms if self.runs else None
        mine = run.best_ms
        if base is None or mine is None or mine <= 0:
            return None
        return base / mine


@dataclass
class DeviceFacts:
    """One device present on this machine."""

    name: str
    kind: str
    description: str
    total_bytes: int | None = None
    free_bytes: int | None = None
    allocated_bytes: int | None = None
    reserved_bytes: int | None = None
    capability: str = ""


@dataclass
class DeviceInfoReport(Report):
    """``%device``: the devices here and the settings that change GPU numerics and speed."""

    _renderer = "torchmagic.device.render_info"

    torch_version: str
    devices: list[DeviceFacts]
    settings: list[tuple[str, str]]


@dataclass
class PlacementRow:
    """Parameters and buffers of one (sub)module or one device.

    ``params`` and ``buffers`` count elements (what "262 parameters" means
    everywhere in torchmagic); ``param_tensors`` and ``buffer_tensors`` count
    the tensors holding them.
    """

    name: str
    kind: str
    devices: tuple[str, ...]
    params: int
    param_tensors: int
    param_bytes: int
    buffers: int
    buffer_tensors: int
    buffer_bytes: int
    grad_bytes: int = 0


@dataclass
class ModelMapReport(Report):
    """``%device model``: where every parameter and buffer lives."""

    _renderer = "torchmagic.device.render_info"

    name: str
    kind: str
    per_device: list[PlacementRow]
    layers: list[PlacementRow]
    layers_total: int
    notes: list[str] = field(default_factory=list)

"""What ``%%distributed`` reports: plain, picklable data made on each rank and folded on the notebook.

A rank builds a :class:`RankReport` (its output, value, error and the
collectives it issued) and sends it back; the notebook folds them into one
:class:`DistributedReport`.  Everything is str/int/float/tuples, so reports
travel between processes and machines and keep no tensor alive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from torchmagic.core.report import Report

__all__ = [
    "Collective",
    "RankError",
    "RankReport",
    "Wait",
    "OutputGroup",
    "CollectiveRow",
    "ShapeDiff",
    "Hang",
    "DistributedReport",
    "PoolStatus",
    "GradRow",
    "Bucket",
    "DDPFacts",
    "Placement",
    "ShardBlock",
    "DTensorFacts",
    "Send",
    "StageFacts",
    "StageEvent",
    "PipelineFacts",
]


@dataclass
class Collective:
    """One collective one rank issued (from PyTorch's flight recorder)."""

    record: int  # the flight recorder's record id (per rank, increasing)
    op: str  # all_reduce, all_gather, reduce_scatter, broadcast, send, recv, all_to_all, barrier, ...
    group: str  # 'default' or the group's name and ranks
    shapes: tuple[tuple[int, ...], ...]  # input sizes
    out_shapes: tuple[tuple[int, ...], ...]
    dtype: str
    nbytes: int  # bytes of the inputs
    line: int  # the cell line that caused it (0: not from the cell)
    via: str  # the library call in between: 'DistributedDataParallel.forward', 'redistribute', '' when direct
    issued_ns: int  # wall clock when the rank issued it (time.time_ns scale)
    done: bool = True  # False: the rank was still waiting in it


@dataclass
class RankError:
    """How a rank's cell ended when it did not end well."""

    kind: str  # exception, timeout, released, interrupted (the user), stopped (by torchmagic), dead, stuck, internal
    type: str  # exception class name ('' for dead ranks)
    message: str
    traceback: str = ""  # plain text, no ANSI
    explanation: Any = None  # torchmagic.trace.report.Explanation of a torch error, if any
    line: int = 0  # the cell line it failed at (0: unknown)


@dataclass
class GradRow:
    """One parameter of a DDP model: its gradient on this rank before and after the all-reduce."""

    name: str
    shape: tuple[int, ...]
    before: tuple[float, ...]  # the first few values of the local gradient (before averaging)
    after: tuple[float, ...]  # ... of .grad after backward (averaged over the ranks)
    before_norm: float
    after_norm: float
    bucket: int  # index of the DDP bucket that carried it (-1 unknown)


@dataclass
class Bucket:
    index: int
    nbytes: int
    params: tuple[str, ...]


@dataclass
class DDPFacts:
    """What DDP did on one rank in the cell: the loss, gradients before/after all-reduce, buckets."""

    model: str  # the variable name of the DDP module
    losses: tuple[float, ...]  # the value backward() was called on, per call
    grads: tuple[GradRow, ...]
    buckets: tuple[Bucket, ...]
    bucket_cap: int  # bucket_cap_mb in bytes


@dataclass
class Placement:
    kind: str  # 'Shard', 'Replicate', 'Partial'
    dim: int = -1  # for Shard
    reduce: str = ""  # for Partial: 'sum', 'avg', ...

    def label(self) -> str:
        if self.kind == "Shard":
            return f"Shard({self.dim})"
        if self.kind == "Partial":
            return f"Partial({self.reduce})" if self.reduce and self.reduce != "sum" else "Partial"
        return self.kind


@dataclass
class ShardBlock:
    """The part of a global tensor one rank holds: a start offset and a size per dim."""

    rank: int
    offset: tuple[int, ...]
    size: tuple[int, ...]
    partial: bool = False  # holds a partial sum of the whole block, not final values


@dataclass
class DTensorFacts:
    """A DTensor's mesh, placements, global and local shape and which rank holds which block."""

    name: str
    global_shape: tuple[int, ...]
    local_shape: tuple[int, ...]
    dtype: str
    mesh_shape: tuple[int, ...]
    mesh_ranks: tuple[int, ...]  # the mesh's ranks, flattened row-major
    mesh_dims: tuple[str, ...]  # mesh dim names ('' when unnamed)
    placements: tuple[Placement, ...]
    blocks: tuple[ShardBlock, ...]
    device: str = "cpu"


@dataclass
class StageEvent:
    """One micro-batch of one stage: forward ('F') or backward ('B') from start to end (ns, wall clock)."""

    kind: str
    micro: int
    start_ns: int
    end_ns: int


@dataclass
class Send:
    """What a pipeline stage sent its neighbour for one micro-batch."""

    what: str  # 'activation' (forward) or 'gradient' (backward)
    micro: int
    peer: int  # the receiving rank
    shape: tuple[int, ...]
    dtype: str


@dataclass
class StageFacts:
    """One pipeline stage: on which rank, which layers, what it sent and when it worked."""

    rank: int
    stage: int
    layers: tuple[str, ...]
    params: int
    events: tuple[StageEvent, ...]
    sends: tuple[Send, ...] = ()


@dataclass
class PipelineFacts:
    stages: tuple[StageFacts, ...]
    schedule: str = ""  # 'ScheduleGPipe', ... when known
    microbatches: int = 0


@dataclass
class RankReport:
    """One rank's side of a cell: made on the rank, sent back as plain data."""

    rank: int
    host: str
    pid: int
    seconds: float
    stdout: str = ""
    stderr: str = ""
    displays: tuple[dict[str, str], ...] = ()
    value: str = ""  # text/plain of the last expression ('' when None)
    value_html: str = ""
    error: RankError | None = None
    collectives: tuple[Collective, ...] = ()
    collectives_lost: int = 0  # issued but no longer in the recorder's buffer
    trace: Any = None  # torchmagic.trace.report.TraceReport with --trace (or for shape differences)
    ddp: tuple[DDPFacts, ...] = ()
    dtensors: tuple[DTensorFacts, ...] = ()
    pipeline: PipelineFacts | None = None
    notes: tuple[str, ...] = ()


@dataclass
class Wait:
    """Where one rank was when the cell was stopped (from its heartbeat)."""

    rank: int
    state: str  # 'collective' (waiting in one), 'running' (Python code), 'done', 'failed', 'dead', 'silent'
    line: int = 0
    source: str = ""
    op: str = ""  # the collective it waits in, e.g. 'all_reduce (4,) float32'
    seconds: float = 0.0  # how long it has been there


@dataclass
class Hang:
    """Why the cell was stopped: who waited in what, at which line, and who did not come."""

    reason: str  # one line: 'ranks waited 5.0 s in mismatched collectives'
    waits: tuple[Wait, ...]
    odd: tuple[int, ...]  # the ranks that differ from the rest
    released: bool  # the waiting ranks were released and the group rebuilt


@dataclass
class OutputGroup:
    """Ranks whose output (or value) was identical, shown once."""

    ranks: tuple[int, ...]
    text: str
    html: str = ""


@dataclass
class CollectiveRow:
    """Collectives of the same kind from the same line, merged over ranks and repeats."""

    line: int
    source: str
    op: str
    via: str
    group: str
    shapes: tuple[tuple[int, ...], ...]
    dtype: str
    nbytes: int
    ranks: tuple[int, ...]  # which ranks issued it
    count: int  # how often per rank (the most any rank did)
    late_rank: int = -1  # the rank that arrived last on average (-1: no one stands out)
    late_ms: float = 0.0  # how much later than the first rank, on average
    per_rank: tuple[tuple[int, int, float], ...] = ()  # (rank, count, mean ms after the earliest rank)
    pending: tuple[int, ...] = ()  # ranks still waiting in it when the cell stopped
    by_rank: tuple[tuple[tuple[int, ...], str], ...] = ()  # (ranks, shapes) when ranks' shapes differ


@dataclass
class ShapeDiff:
    """An op whose shapes differ between ranks (from the per-rank traces)."""

    line: int
    source: str
    op: str
    shapes: tuple[tuple[tuple[int, ...], str], ...]  # (ranks, shapes text) per distinct variant


@dataclass
class DistributedReport(Report):
    """One cell on every rank: output, values, errors, collectives and the three kinds of parallelism."""

    _renderer: ClassVar[str] = "torchmagic.distributed.render"
    title: ClassVar[str] = "%%distributed"

    header: str
    world_size: int
    backend: str
    seconds: float
    ranks: tuple[RankReport, ...]
    outputs: tuple[OutputGroup, ...] = ()
    errors_out: tuple[OutputGroup, ...] = ()
    values: tuple[OutputGroup, ...] = ()
    collectives: tuple[CollectiveRow, ...] = ()
    collectives_total: int = 0
    collectives_lost: int = 0
    shape_diffs: tuple[ShapeDiff, ...] = ()
    failed: tuple[int, ...] = ()
    hang: Hang | None = None
    trace: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass
class PoolStatus(Report):
    """``%distributed status``: the pool's ranks, where they run and whether they are alive."""

    _renderer: ClassVar[str] = "torchmagic.distributed.render_pool"
    title: ClassVar[str] = "%distributed"

    running: bool
    world_size: int = 0
    backend: str = ""
    launcher: str = ""
    master: str = ""
    initialised: bool = False
    ranks: tuple[tuple[int, str, int, str], ...] = ()  # (rank, host, pid, state)
    message: str = ""

"""Layer-wise partitioning made visible: a DTensor's mesh, placements and which rank holds which block.

:func:`facts` reads one DTensor (mesh, placements, global and local shape);
:func:`blocks` is pure: from the global shape, the mesh shape and the
placements it computes the block (offset and size per dim) each rank holds,
splitting like ``torch.chunk`` (the way DTensor shards: the last ranks may
hold less, or nothing).  The drawing (:mod:`torchmagic.distributed.sharding`)
and ``%tensorinfo`` use these facts.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from torchmagic.core.names import is_user_name
from torchmagic.core.runner import Collector
from torchmagic.distributed.report import DTensorFacts, Placement, ShardBlock
from torchmagic.i18n import N_, tr

__all__ = ["is_dtensor", "facts", "blocks", "placement_of", "local_report", "DTensorCollector", "MAX_TENSORS"]

MAX_TENSORS = 8


def is_dtensor(value: Any) -> bool:
    mod = sys.modules.get("torch.distributed.tensor")
    cls = getattr(mod, "DTensor", None) if mod is not None else None
    return cls is not None and isinstance(value, cls)


def placement_of(p: Any) -> Placement:
    """torch's placement object as plain data."""
    name = type(p).__name__
    if hasattr(p, "is_shard") and p.is_shard():
        return Placement("Shard", dim=int(getattr(p, "dim", 0)))
    if hasattr(p, "is_partial") and p.is_partial():
        return Placement("Partial", reduce=str(getattr(p, "reduce_op", "sum")))
    if hasattr(p, "is_replicate") and p.is_replicate():
        return Placement("Replicate")
    return Placement(name)


def _chunk(size: int, parts: int, k: int) -> tuple[int, int]:
    """(start, length) of piece ``k`` when ``size`` is split like ``torch.chunk`` into ``parts``."""
    step = -(-size // parts) if parts else size
    start = min(k * step, size)
    return start, max(0, min(step, size - start))


def blocks(
    global_shape: Sequence[int], mesh_shape: Sequence[int], mesh_ranks: Sequence[int], placements: Sequence[Placement]
) -> tuple[ShardBlock, ...]:
    """The block of the global tensor each mesh rank holds (pure; mesh ranks row-major)."""
    out = []
    coords = list(itertools.product(*(range(n) for n in mesh_shape)))
    for rank, coord in zip(mesh_ranks, coords):
        offset = [0] * len(global_shape)
        size = [int(d) for d in global_shape]
        partial = False
        for mesh_dim, p in enumerate(placements):
            if p.kind == "Shard" and 0 <= p.dim < len(size):
                start, length = _chunk(size[p.dim], mesh_shape[mesh_dim], coord[mesh_dim])
                offset[p.dim] += start
                size[p.dim] = length
            elif p.kind == "Partial":
                partial = True
        out.append(ShardBlock(rank=int(rank), offset=tuple(offset), size=tuple(size), partial=partial))
    return tuple(out)


def facts(name: str, t: Any) -> DTensorFacts:
    """Everything about one DTensor, as plain data."""
    from torchmagic.core.meta import dtype_name

    mesh = t.device_mesh
    mesh_shape = tuple(int(d) for d in mesh.shape)
    ranks = tuple(int(r) for r in mesh.mesh.reshape(-1).tolist())
    places = tuple(placement_of(p) for p in t.placements)
    glob = tuple(int(d) for d in t.shape)
    return DTensorFacts(
        name=name,
        global_shape=glob,
        local_shape=tuple(int(d) for d in t.to_local().shape),
        dtype=dtype_name(t.dtype),
        mesh_shape=mesh_shape,
        mesh_ranks=ranks,
        mesh_dims=tuple(mesh.mesh_dim_names or ("",) * len(mesh_shape)),
        placements=places,
        blocks=blocks(glob, mesh_shape, ranks, places),
        device=str(mesh.device_type),
    )


def local_report(name: str, t: Any, inspect: Any) -> Any:
    """``%tensorinfo`` of a DTensor: this rank's local shard inspected as usual, plus the DTensor's facts.

    Statistics are of the local shard: computing them on the DTensor would
    issue collectives, which hang unless every rank runs the same line.
    """
    report = inspect(t.to_local())
    report.dtensor = facts(name, t)
    report.notes.append(
        tr(
            "a DTensor: global shape {shape}; the values and statistics above are this rank's local shard",
            shape=tuple(t.shape),
        )
    )
    return report


def _named(name: str, value: Any) -> Iterator[tuple[str, Any]]:
    """DTensors under a namespace name: the value itself, or a module's DTensor parameters."""
    if is_dtensor(value):
        yield name, value
        return
    nn = sys.modules.get("torch.nn")
    if nn is not None and isinstance(value, nn.Module):
        for pname, p in itertools.islice(value.named_parameters(), 64):
            if is_dtensor(p):
                yield f"{name}.{pname}", p


class DTensorCollector(Collector):
    """The DTensors (and modules holding them) the cell assigned, described after it."""

    what = N_("the DTensor description")

    def __init__(self, namespace: Mapping[str, Any]) -> None:
        super().__init__()
        self.namespace = namespace
        self.before: dict[str, int] = {}
        self.facts: tuple[DTensorFacts, ...] = ()

    def __enter__(self) -> DTensorCollector:
        self.before = {n: id(v) for n, v in list(self.namespace.items()) if is_user_name(n)}
        return self

    def report(self, error: BaseException | None) -> None:
        if "torch.distributed.tensor" not in sys.modules:
            return
        out: list[DTensorFacts] = []
        for n, v in list(self.namespace.items()):
            if not is_user_name(n) or self.before.get(n) == id(v):
                continue
            for label, t in _named(n, v):
                if len(out) >= MAX_TENSORS:
                    break
                try:
                    out.append(facts(label, t))
                except Exception as exc:  # noqa: BLE001 - describing a DTensor is ours: fenced, said once
                    self.fence.fail(exc)
        self.facts = tuple(out)
        self.namespace = {}
        return

"""What ``%distributed`` / ``%%distributed`` read: traits (see :mod:`torchmagic.options`) and line flags."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PoolOptions", "RunOptions"]


@dataclass
class PoolOptions:
    """How a pool starts; fields named like their trait, the rest are line flags."""

    distributed_ranks: int
    distributed_backend: str
    distributed_start_timeout: float
    distributed_max_collectives: int
    init: bool = True  # --no-init: the cell's code calls init_process_group itself
    launcher: str = "local"  # ipyparallel engine launcher: local, mpi, slurm, ssh, external
    master_addr: str = ""  # where rank 0's store listens; '' = found out from rank 0


@dataclass
class RunOptions:
    """How one cell runs on the ranks."""

    distributed_timeout: float
    distributed_max_rows: int
    distributed_value_chars: int
    language: str  # the ranks write in the notebook's language (front passes it resolved: a rank's locale may differ)
    trace: bool = False  # --trace: the full %%tensorinfo trace of every rank

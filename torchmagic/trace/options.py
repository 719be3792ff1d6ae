"""What one ``%%tensorinfo`` trace records: the traits it reads and the flags of its line."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TraceOptions"]


@dataclass
class TraceOptions:
    """Fields named like their trait (see :mod:`torchmagic.options`); the rest are line flags."""

    trace_max_rows: int
    trace_max_shapes: int
    trace_max_aten: int
    trace_modules: bool
    deep: bool = False  # --deep: the aten ops under each op
    view: str = "table"  # "table", or "source" for --source

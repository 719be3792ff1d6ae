"""The collectors each rank runs its cell under, and filling the rank's report from them.

* :class:`FlightCollector`: the collectives the cell issued (flight recorder);
* the ``%%tensorinfo`` :class:`~torchmagic.trace.collector.TraceCollector`:
  every op with shapes, so the notebook can show ops whose shapes differ
  between ranks (and the whole trace with ``--trace``);
* :class:`~torchmagic.distributed.ddp.DDPCollector` when the namespace holds
  a DDP model, :class:`~torchmagic.distributed.pipeline.PipelineCollector`
  when it holds a pipeline stage; DTensors are described after the cell.
"""

from __future__ import annotations

import time
from typing import Any

from torchmagic.core.runner import Collector
from torchmagic.distributed.report import RankReport
from torchmagic.i18n import N_

__all__ = ["FlightCollector", "rank_collectors", "fill"]


class FlightCollector(Collector):
    """The collectives this rank issued while the cell ran."""

    what = N_("the collectives recording")

    def __init__(self, filename: str, state: Any) -> None:
        super().__init__()
        self.filename = filename
        self.state = state
        self.since = 0
        self.calls: list[Any] = []
        self.lost = 0

    def __enter__(self) -> FlightCollector:
        self.since = time.time_ns()
        return self

    def report(self, error: BaseException | None) -> None:
        import torch.distributed as dist

        from torchmagic.distributed import flight

        if not (dist.is_available() and dist.is_initialized()):
            return
        entries, pgs = flight.read_entries()
        mark = self.state.mark
        self.calls = flight.to_collectives(
            entries, self.filename, after=mark, since_ns=self.since, groups=flight.group_names(pgs)
        )
        if entries:
            oldest = int(entries[0].get("record_id", 0))
            if mark >= 0 and oldest > mark + 1:
                self.lost = oldest - mark - 1
            self.state.mark = max(mark, int(entries[-1].get("record_id", mark)))
        return


def rank_collectors(cell: Any, shell: Any, options: Any, state: Any) -> list[Collector]:
    """The collectors for one cell on this rank."""
    from torchmagic.options import options_for
    from torchmagic.trace.collector import TraceCollector
    from torchmagic.trace.options import TraceOptions

    collectors: list[Collector] = [FlightCollector(cell.filename, state)]
    trace_opts = options_for(TraceOptions, None, trace_max_rows=int(options.distributed_max_rows))
    collectors.append(TraceCollector(cell, trace_opts, shell))
    from torchmagic.distributed.ddp import DDPCollector
    from torchmagic.distributed.pipeline import PipelineCollector

    ddp = DDPCollector.find(cell.locals)
    if ddp is not None:
        collectors.append(ddp)
    pipe = PipelineCollector.find(cell.locals, cell.source)
    if pipe is not None:
        collectors.append(pipe)
    from torchmagic.distributed.dtensor import DTensorCollector

    collectors.append(DTensorCollector(cell.locals))
    return collectors


def fill(report: RankReport, collectors: list[Any], shown: list[Any]) -> None:
    """Put what the collectors recorded into this rank's report (after the cell)."""
    from torchmagic.distributed.ddp import DDPCollector
    from torchmagic.distributed.dtensor import DTensorCollector
    from torchmagic.distributed.pipeline import PipelineCollector
    from torchmagic.trace.report import TraceReport

    for c in collectors:
        if isinstance(c, FlightCollector):
            report.collectives = tuple(c.calls)
            report.collectives_lost = c.lost
        elif isinstance(c, DDPCollector):
            report.ddp = c.facts
        elif isinstance(c, PipelineCollector):
            report.pipeline = c.facts
        elif isinstance(c, DTensorCollector):
            report.dtensors = c.facts
    for r in shown:
        if isinstance(r, TraceReport):
            report.trace = r

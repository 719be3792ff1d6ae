"""Network partitioning made visible: which layers each pipeline stage holds and when it worked.

For each ``PipelineStage`` in the namespace the collector wraps, on that
one object and only while the cell runs, its ``forward_one_chunk`` and
``backward_one_chunk`` methods (instance attributes that shadow the class's,
deleted afterwards) to note when each micro-batch's forward and backward
started and ended.  The notebook lines the stages up on one time axis: the
gaps are the schedule's idle bubbles.  What the stages sent each other
(activations forward, gradients back) is in the collectives table: the
flight recorder sees every ``send``/``recv``.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Mapping

from torchmagic.core.names import is_user_name
from torchmagic.core.runner import Collector
from torchmagic.distributed.report import PipelineFacts, StageEvent, StageFacts

__all__ = ["PipelineCollector", "bubbles"]

MAX_EVENTS = 512
_WRAPPED = (("forward_one_chunk", "F"), ("backward_one_chunk", "B"))


class PipelineCollector(Collector):
    what = "the pipeline recording"

    def __init__(self, stages: list[Any], schedules: list[Any]) -> None:
        super().__init__()
        self.stages = stages
        self.schedules = schedules
        self.events: dict[int, list[StageEvent]] = {id(s): [] for s in stages}
        self.facts: PipelineFacts | None = None

    @classmethod
    def find(cls, namespace: Mapping[str, Any]) -> PipelineCollector | None:
        mod = sys.modules.get("torch.distributed.pipelining.stage")
        if mod is None:
            return None
        base = mod._PipelineStageBase
        stages = [v for n, v in list(namespace.items()) if is_user_name(n) and isinstance(v, base)]
        sched_mod = sys.modules.get("torch.distributed.pipelining.schedules")
        schedules = []
        if sched_mod is not None:
            schedules = [v for n, v in list(namespace.items()) if is_user_name(n) and isinstance(v, sched_mod._PipelineSchedule)]
            for s in schedules:
                st = getattr(s, "_stage", None)
                if st is not None and all(st is not x for x in stages):
                    stages.append(st)
        return cls(stages, schedules) if stages else None

    def __enter__(self) -> PipelineCollector:
        for stage in self.stages:
            for method, kind in _WRAPPED:
                original = getattr(stage, method, None)
                if original is not None:
                    setattr(stage, method, self._timed(original, kind, self.events[id(stage)]))
        return self

    def _timed(self, original: Callable[..., Any], kind: str, log: list[StageEvent]) -> Callable[..., Any]:
        def timed(chunk: int, *args: Any, **kwargs: Any) -> Any:
            t0 = time.time_ns()
            try:
                return original(chunk, *args, **kwargs)
            finally:
                if len(log) < MAX_EVENTS:
                    log.append(StageEvent(kind, int(chunk), t0, time.time_ns()))

        return timed

    def __exit__(self, *exc: Any) -> None:
        for stage in self.stages:
            for method, _ in _WRAPPED:
                stage.__dict__.pop(method, None)

    def report(self, error: BaseException | None) -> None:
        facts = []
        for stage in self.stages:
            submod = getattr(stage, "submod", None)
            layers: tuple[str, ...] = ()
            params = 0
            if submod is not None:
                layers = tuple(f"{n}: {type(m).__name__}" for n, m in list(submod.named_children())[:16])
                params = sum(int(p.numel()) for p in submod.parameters())
            facts.append(
                StageFacts(
                    rank=int(getattr(stage, "group_rank", -1)),
                    stage=int(getattr(stage, "stage_index", -1)),
                    layers=layers,
                    params=params,
                    events=tuple(self.events[id(stage)]),
                )
            )
        sched = self.schedules[0] if self.schedules else None
        self.facts = PipelineFacts(
            stages=tuple(facts),
            schedule=type(sched).__name__ if sched is not None else "",
            microbatches=int(getattr(sched, "_n_microbatches", 0) or 0),
        )
        return None


def bubbles(events: list[tuple[int, int]], start: int, end: int) -> list[tuple[int, int]]:
    """The idle gaps of one stage between ``start`` and ``end`` given its busy (start, end) spans."""
    gaps: list[tuple[int, int]] = []
    t = start
    for s, e in sorted(events):
        if s > t:
            gaps.append((t, s))
        t = max(t, e)
    if end > t:
        gaps.append((t, end))
    return gaps

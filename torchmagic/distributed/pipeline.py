"""Network partitioning made visible: each pipeline stage's layers, what it sent, and when it worked.

While a cell that uses ``torch.distributed.pipelining`` runs, the stage
class's ``forward_one_chunk`` / ``backward_one_chunk`` (the work of one
micro-batch) and ``get_fwd_send_ops`` / ``get_bwd_send_ops`` (the
activations and gradients a stage sends its neighbour) are wrapped; the
wrappers note times and shapes, call the original and return its result
unchanged, and the class is restored when the cell ends, however it ends.
(Gloo's flight recorder does not record point-to-point sends, so this is
where the activations' shapes come from.)  The notebook lines the stages up
on one time axis: the gaps are the schedule's idle bubbles.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from torchmagic.core.names import is_user_name
from torchmagic.core.runner import Collector
from torchmagic.distributed.report import PipelineFacts, Send, StageEvent, StageFacts
from torchmagic.i18n import N_

__all__ = ["PipelineCollector", "bubbles"]

MAX_EVENTS = 512
_TIMED = (("forward_one_chunk", "F"), ("backward_one_chunk", "B"))
_SENDS = (("get_fwd_send_ops", N_("activation")), ("get_bwd_send_ops", N_("gradient")))  # tr() when rendered


class PipelineCollector(Collector):
    what = N_("the pipeline recording")

    def __init__(self, namespace: Mapping[str, Any]) -> None:
        super().__init__()
        self.namespace = namespace
        self.stages: dict[int, Any] = {}
        self.events: dict[int, list[StageEvent]] = {}
        self.sends: dict[int, list[Send]] = {}
        self.saved: list[tuple[Any, str, Any]] = []
        self.facts: PipelineFacts | None = None

    @classmethod
    def find(cls, namespace: Mapping[str, Any], source: str) -> PipelineCollector | None:
        """A collector when the cell may run a pipeline (it names pipelining, or the module is loaded)."""
        if "pipelining" not in source and "torch.distributed.pipelining" not in sys.modules:
            return None
        return cls(namespace)

    def __enter__(self) -> PipelineCollector:
        import torch.distributed.pipelining.stage as stage_mod

        base = stage_mod._PipelineStageBase
        for method, kind in _TIMED:
            self._wrap(base, method, self._timed(getattr(base, method), kind))
        for method, what in _SENDS:
            self._wrap(base, method, self._sending(getattr(base, method), what))
        return self

    def _wrap(self, cls: Any, name: str, fn: Callable[..., Any]) -> None:
        self.saved.append((cls, name, cls.__dict__[name]))
        setattr(cls, name, fn)

    def __exit__(self, *exc: Any) -> None:
        saved, self.saved = self.saved, []
        for cls, name, original in reversed(saved):
            setattr(cls, name, original)

    def _note(self, stage: Any) -> int:
        key = id(stage)
        if key not in self.stages:
            self.stages[key] = stage
            self.events[key] = []
            self.sends[key] = []
        return key

    def _timed(self, original: Callable[..., Any], kind: str) -> Callable[..., Any]:
        collector = self

        def timed(stage: Any, chunk: int, *args: Any, **kwargs: Any) -> Any:
            t0 = time.time_ns()
            try:
                return original(stage, chunk, *args, **kwargs)
            finally:
                try:
                    log = collector.events[collector._note(stage)]
                    if len(log) < MAX_EVENTS:
                        log.append(StageEvent(kind, int(chunk), t0, time.time_ns()))
                except Exception as exc:  # noqa: BLE001 - recording is fenced: it never breaks the user's pipeline
                    collector.fence.fail(exc)

        return timed

    def _sending(self, original: Callable[..., Any], what: str) -> Callable[..., Any]:
        collector = self

        def sending(stage: Any, chunk: int, *args: Any, **kwargs: Any) -> Any:
            ops = original(stage, chunk, *args, **kwargs)
            try:
                log = collector.sends[collector._note(stage)]
                for op in list(ops)[:8]:
                    t = getattr(op, "tensor", None)
                    if t is not None and len(log) < MAX_EVENTS:
                        from torchmagic.core.meta import dtype_name

                        log.append(
                            Send(what, int(chunk), int(getattr(op, "peer", -1)), tuple(t.shape), dtype_name(t.dtype))
                        )
            except Exception as exc:  # noqa: BLE001 - recording is fenced: it never breaks the user's pipeline
                collector.fence.fail(exc)
            return ops

        return sending

    def report(self, error: BaseException | None) -> None:
        sched_mod = sys.modules.get("torch.distributed.pipelining.schedules")
        schedules = []
        if sched_mod is not None:
            schedules = [
                v
                for n, v in list(self.namespace.items())
                if is_user_name(n) and isinstance(v, sched_mod._PipelineSchedule)
            ]
        self.namespace = {}
        if not self.stages:
            return
        facts = []
        for key, stage in self.stages.items():
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
                    events=tuple(self.events[key]),
                    sends=tuple(self.sends[key]),
                )
            )
        sched = schedules[0] if schedules else None
        self.facts = PipelineFacts(
            stages=tuple(facts),
            schedule=type(sched).__name__ if sched is not None else "",
            microbatches=int(getattr(sched, "_n_microbatches", 0) or 0),
        )
        self.stages.clear()
        return


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

"""Follow a training loop after its first steps through hooks on its parameters, with no function mode.

A torch function mode costs every op of the loop (the empty mode alone
makes a small MLP step about 1.4× slower).  Once the first
``autograd_max_calls`` backward calls of a loop have been recorded in detail
(graph, module calls, every ``.grad``), the watcher steps aside and a
:class:`Follower` keeps counting: a ``post_accumulate_grad`` hook on each
leaf of the last detailed call sees every later backward that reaches it.
Per backward it counts one step (autograd's graph-task id tells backward
passes apart), reads the loss from the name the loop binds it to, checks each
leaf for accumulation (the same ``.grad`` object, one write later than the
step before: nobody zeroed it; ids and versions only, no reference kept), and
on sampled steps reads the gradient norms for the gradient-flow table.  When
the cell ends the ledger learns the last gradients, for the next cell.  Ops
after the handover are not seen: what escaped autograd is listed from the
detailed steps, which the loop repeats.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from torchmagic.autograd.ledger import GradLedger, Where
from torchmagic.autograd.log import Accumulation, WatchLog
from torchmagic.autograd.steps import FlowSample, StepLog
from torchmagic.core.guard import Fence
from torchmagic.i18n import tr

if TYPE_CHECKING:
    from torch.utils.hooks import RemovableHandle

__all__ = ["Follower", "Handoff"]

_task_id = torch._C._current_graph_task_id
_QUIET = torch._C.DisableTorchFunction


def _grad_state(leaf: torch.Tensor) -> tuple[int, int]:
    grad = leaf.grad
    return (id(grad), grad._version) if grad is not None else (0, -1)


class Handoff:
    """What the last detailed backward call leaves for the follower: its leaves, loss name and line."""

    def __init__(self, leaves: list[torch.Tensor], names: Mapping[int, str], loss_name: str, here: Where) -> None:
        self.leaves = [weakref.ref(leaf) for leaf in leaves]
        self.names = {id(leaf): names.get(id(leaf), "") for leaf in leaves}
        self.loss_name = loss_name
        self.here = here


class Follower:
    """Hooks on the leaves that keep the loop's counts once the function mode is gone."""

    def __init__(self, log: WatchLog, steps: StepLog, ledger: GradLedger, ns: Mapping[str, Any],
                 fence: Fence) -> None:
        self.log = log
        self.steps = steps
        self.ledger = ledger
        self.ns = ns
        self.fence = fence
        self.handoff: Handoff | None = None
        self._task = -2
        self._sample: FlowSample | None = None
        self._handles: list[RemovableHandle] = []
        self._state: dict[int, tuple[int, int]] = {}  # id(leaf) -> (id(.grad), its version), as last seen

    def start(self, handoff: Handoff) -> None:
        self.handoff = handoff
        for ref in handoff.leaves:
            leaf = ref()
            if leaf is not None and leaf.requires_grad and leaf.is_leaf:
                self._handles.append(leaf.register_post_accumulate_grad_hook(self._hook))
                self._state[id(leaf)] = _grad_state(leaf)

    def stop(self) -> None:
        """Remove the hooks; the ledger learns the leaves' last gradients (for the next cell)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if self.handoff is not None:
            for ref in self.handoff.leaves:
                leaf = ref()
                if leaf is not None:
                    self.ledger.remember(leaf, self.handoff.here)

    @property
    def active(self) -> bool:
        return bool(self._handles)

    def _hook(self, leaf: torch.Tensor) -> None:
        with _QUIET():
            try:
                task = _task_id()
                if task != self._task:
                    self._task = task
                    self._new_step()
                self._check(leaf)
            except Exception as exc:  # noqa: BLE001 - recording must never break the user's backward
                self.fence.fail(exc)

    def _new_step(self) -> None:
        assert self.handoff is not None
        log, steps = self.log, self.steps
        log.calls_total += 1
        step = steps.step = log.calls_total
        if len(log.lines) < 1000:
            log.lines.append(self.handoff.here.line)
        loss = self.ns.get(self.handoff.loss_name) if self.handoff.loss_name else None
        if isinstance(loss, torch.Tensor):
            steps.loss(step, loss)
        self._sample = None
        if steps.flow_sampler.wants(step):
            self._sample = FlowSample(step)
            steps.flow.append(self._sample)
            steps.flow = steps.flow_sampler.thin(steps.flow, lambda s: s.step)

    def _check(self, leaf: torch.Tensor) -> None:
        assert self.handoff is not None
        here = self.handoff.here
        key = id(leaf)
        before, now = self._state.get(key), _grad_state(leaf)
        self._state[key] = now
        # the same .grad object, written once since the last step: added to, never zeroed (see ledger.py)
        if before is not None and before[0] and before[0] == now[0] and now[1] == before[1] + 1:
            entry = self.log.accumulated.get(key)
            if entry is None:
                self.log.accumulated[key] = Accumulation(self.handoff.names.get(key, ""), here.line,
                                                         self.log.calls_total, previous=tr("the step before"))
                self.steps.leaves.setdefault(key, weakref.ref(leaf))
            else:
                entry.steps += 1
        grad = leaf.grad
        if self._sample is not None and grad is not None and grad.layout == torch.strided:
            self._sample.norms[key] = float(torch.linalg.vector_norm(grad.detach(), dtype=torch.float64))
            self.steps.leaves.setdefault(key, weakref.ref(leaf))

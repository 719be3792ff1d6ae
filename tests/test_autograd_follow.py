"""Follower: a loop followed through hooks on its leaves once the function mode has stepped aside."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from torchmagic.autograd.follow import Follower, Handoff
from torchmagic.autograd.ledger import GradLedger, Where
from torchmagic.autograd.log import WatchLog
from torchmagic.autograd.steps import StepLog
from torchmagic.core.guard import Fence


def _follow(zero: bool, steps: int = 6) -> tuple[WatchLog, StepLog, nn.Module]:
    model = nn.Linear(3, 1)
    ns: dict[str, Any] = {}
    log, step_log = WatchLog(), StepLog()
    follower = Follower(log, step_log, GradLedger(), ns, Fence())
    follower.start(Handoff(list(model.parameters()), {id(model.weight): "model.weight"}, "loss", Where(1, "k", 4)))
    try:
        for _ in range(steps):
            if zero:
                model.zero_grad()
            ns["loss"] = loss = model(torch.ones(2, 3)).pow(2).mean()
            loss.backward()
    finally:
        follower.stop()
    return log, step_log, model


def test_steps_losses_and_accumulation_are_counted() -> None:
    log, steps, model = _follow(zero=False)
    assert log.calls_total == 6 and log.lines == [4] * 6
    assert [s for s, _ in steps.loss_values()] == [1, 2, 3, 4, 5, 6]
    weight = log.accumulated[id(model.weight)]
    assert (weight.name, weight.first, weight.steps) == ("model.weight", 2, 5)  # steps 2..6 added to step 1's
    assert [s.step for s in steps.flow] == [1, 2, 3, 4, 5, 6]


def test_zeroed_loops_do_not_accumulate_and_the_hooks_go() -> None:
    log, _, model = _follow(zero=True)
    assert log.calls_total == 6 and log.accumulated == {}
    model(torch.ones(2, 3)).sum().backward()  # after stop(): nothing counts any more
    assert log.calls_total == 6

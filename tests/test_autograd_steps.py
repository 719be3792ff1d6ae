"""StepLog: loss per step, sampled gradient norms, optimizer updates; bounded however long the loop."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.optim import optimizer as torch_optimizer

from torchmagic.autograd.steps import MAX_SAMPLES, Sampler, StepLog


def test_sampler_keeps_every_step_then_every_second() -> None:
    s = Sampler(4)
    kept: list[int] = []
    for step in range(1, 40):
        if s.wants(step):
            kept.append(step)
            kept = s.thin(kept, lambda x: x)
    assert len(kept) <= 4 and all(k % s.stride == 0 for k in kept) and s.stride >= 8
    assert kept == sorted(kept) and kept[-1] >= 32


def test_loss_and_gradient_norms_per_step() -> None:
    model = nn.Linear(3, 1)
    x, t = torch.randn(8, 3), torch.randn(8, 1)
    log = StepLog()
    leaves = list(model.parameters())
    losses = []
    for step in range(1, 6):
        model.zero_grad()
        loss = ((model(x) - t) ** 2).mean()
        loss.backward()
        log.loss(step, loss)
        log.gradients(step, leaves)
        losses.append(loss.item())
    assert log.loss_values() == list(zip(range(1, 6), losses))
    assert [s.step for s in log.flow] == [1, 2, 3, 4, 5]
    last = log.flow[-1].norms
    assert math.isclose(last[id(model.weight)], float(model.weight.grad.norm()), rel_tol=1e-6)
    assert set(log.leaves) == {id(model.weight), id(model.bias)}


def test_a_long_loop_stays_bounded() -> None:
    w = torch.ones(3, requires_grad=True)
    log = StepLog()
    for step in range(1, 2001):
        w.grad = None
        (w * step).sum().backward()
        log.loss(step, torch.tensor(float(step)))
        log.gradients(step, [w])
    assert len(log.flow) <= MAX_SAMPLES and len(log.loss_values()) <= 512
    assert log.flow[-1].step >= 1900  # the end of the loop is there


def test_optimizer_updates_on_sampled_steps_and_hooks_removed() -> None:
    model = nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    hooks = (len(torch_optimizer._global_optimizer_pre_hooks), len(torch_optimizer._global_optimizer_post_hooks))
    with StepLog() as log:
        for step in range(1, 4):
            opt.zero_grad()
            model(torch.ones(1, 4)).sum().backward()
            before = model.weight.detach().clone()
            log.gradients(step, list(model.parameters()))
            opt.step()
            moved = float((model.weight.detach() - before).norm())
    assert (len(torch_optimizer._global_optimizer_pre_hooks),
            len(torch_optimizer._global_optimizer_post_hooks)) == hooks
    assert log.optimizer_steps == 3 and list(log.optimizers) == [id(opt)]
    assert [u.step for u in log.updates] == [1, 2, 3]
    delta, size = log.updates[-1].updates[id(model.weight)]
    assert math.isclose(delta, moved, rel_tol=1e-5) and math.isclose(size, model.weight.norm().item(), rel_tol=1e-5)

"""The accumulation detector (GradLedger) and the watcher mode, without IPython."""

from __future__ import annotations

import gc
import weakref

import torch
from torch import nn

from torchmagic.autograd.ledger import GradLedger, Where

HERE = Where(1, "cell", 3)


def _backward_with_check(ledger: GradLedger, params: list[torch.Tensor], loss: torch.Tensor) -> list[bool]:
    hits: dict[int, bool] = {id(p): False for p in params}

    def hook(p: torch.Tensor) -> None:
        hits[id(p)] = ledger.accumulated_onto(p) is not None

    handles = [p.register_post_accumulate_grad_hook(hook) for p in params]
    try:
        loss.backward()
    finally:
        for h in handles:
            h.remove()
    for p in params:
        ledger.remember(p, HERE)
    return [hits[id(p)] for p in params]


def test_backward_three_times_then_each_zeroing_form() -> None:
    model = nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(3, 2)
    params = list(model.parameters())
    ledger = GradLedger()

    def step() -> list[bool]:
        return _backward_with_check(ledger, params, model(x).sum())

    assert step() == [False, False]  # first: nothing to accumulate onto
    assert step() == [True, True]
    assert step() == [True, True]
    opt.zero_grad()
    assert step() == [False, False]
    opt.zero_grad(set_to_none=False)
    assert step() == [False, False]
    model.zero_grad()
    assert step() == [False, False]
    for p in params:
        p.grad = None
    assert step() == [False, False]
    params[0].grad.zero_()  # partial zeroing: only the weight
    assert step() == [False, True]
    opt.step()  # the step does not touch .grad
    assert step() == [True, True]


def test_untouched_since_and_where() -> None:
    w = torch.ones(2, requires_grad=True)
    ledger = GradLedger()
    (w * 2).sum().backward()
    ledger.remember(w, HERE)
    assert ledger.untouched_since(w) == HERE
    assert HERE.describe(Where(1, "cell", 9)) == "the backward() at line 3 of this cell"
    assert "previous run of this cell" in HERE.describe(Where(2, "cell", 3))
    assert "earlier %%autograd cell" in HERE.describe(Where(2, "other", 3))
    w.grad.mul_(0)
    assert ledger.untouched_since(w) is None


def test_ledger_holds_only_weak_references() -> None:
    w = torch.ones(2, requires_grad=True)
    (w * 2).sum().backward()
    ledger = GradLedger()
    ledger.remember(w, HERE)
    assert len(ledger) == 1
    refs = weakref.ref(w), weakref.ref(w.grad)
    del w
    gc.collect()
    assert refs[0]() is None and refs[1]() is None
    assert len(ledger) == 0

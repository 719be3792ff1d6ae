"""Friendly hints match the confusing messages (and only those)."""

from __future__ import annotations

import pytest
import torch

from torchmagic.errors.advice import hint_for


def _error(fn):
    try:
        fn()
    except Exception as exc:
        return type(exc).__name__, str(exc)
    raise AssertionError("no error")


t = torch.ones(2, 3)
leaf = torch.ones(2, requires_grad=True)


@pytest.mark.parametrize(
    "fn, expr, fragment",
    [
        (lambda: t.shape(), "t.shape()", "`.shape` is an attribute"),
        (lambda: t.dtype(), "t.dtype()", "`.dtype` is an attribute"),
        (lambda: t.ndim(), "t.ndim()", "`.ndim` is an attribute"),
        (lambda: t.size[0], "t.size[0]", "`.size` is a method"),
        (lambda: bool(t), "if t:", ".any()"),
        (lambda: torch.tensor([t, t]), "torch.tensor([t, t])", "torch.stack"),
        (lambda: leaf.add_(1), "leaf.add_(1)", "torch.no_grad()"),
        (lambda: (leaf * 2).backward(), "y.backward()", "scalar"),
        (lambda: leaf.numpy(), "leaf.numpy()", "detach()"),
        (lambda: t.T.view(6), "t.T.view(6)", ".reshape"),
        (lambda: torch.ones(2, dtype=torch.long).add_(0.5), "x.add_(0.5)", "cannot change a tensor's dtype"),
        (lambda: t.long() @ torch.ones(3, 2), "a @ b", "same dtype"),
        (lambda: t.sum(dim=5), "t.sum(dim=5)", "Valid dims"),
        (lambda: torch.nn.functional.cross_entropy(torch.ones(4, 3), torch.ones(4)), "ce", "target.long()"),
    ],
)
def test_hints_for_real_errors(fn, expr, fragment):
    etype, msg = _error(fn)
    assert fragment in hint_for(etype, msg.splitlines()[0], expr)


def test_backward_twice_hint():
    y = (leaf * leaf).sum()
    y.backward()
    etype, msg = _error(lambda: y.backward())
    assert "retain_graph" in hint_for(etype, msg, "y.backward()")


def test_generic_messages_need_the_expression():
    # "not subscriptable" alone is too generic for the .size hint
    assert hint_for("TypeError", "'builtin_function_or_method' object is not subscriptable", "f[0]") == ""
    assert hint_for("TypeError", "'int' object is not callable", "n()") == ""


def test_unrelated_errors_have_no_hint():
    assert hint_for("KeyError", "'k'") == ""
    assert hint_for("ValueError", "math domain error") == ""


def test_second_profiler_hint() -> None:
    """The one way --deep can still fail a cell: code that starts a second profiler inside it."""
    from torchmagic.trace.aten import AtenLog

    ours = AtenLog(lambda row, name: None)
    ours.start()
    try:
        kind, msg = _error(lambda: torch.profiler.profile().__enter__())
    finally:
        ours.stop()
    hint = hint_for(kind, msg, "")
    assert hint is not None and "--deep" in hint and "one PyTorch profiler" in hint


def test_pin_memory_without_an_accelerator_is_explained():
    if torch.cuda.is_available():
        pytest.skip("this machine has an accelerator: pinning works")
    for fn in (lambda: torch.ones(2).pin_memory(), lambda: torch.ones(2, pin_memory=True)):
        etype, msg = _error(fn)
        assert "Pinned (page-locked) memory only speeds up copies to a GPU" in hint_for(etype, msg.splitlines()[0])

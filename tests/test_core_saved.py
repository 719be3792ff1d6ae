"""core.saved: reading what autograd saved, and the log that catches in-place writes to it."""

from __future__ import annotations

import gc

import torch

from torchmagic.core.saved import SavedBy, SavedLog, read_saved


def test_read_saved_values_then_freed():
    a = torch.ones(3, requires_grad=True)
    s = (a * 2).sigmoid()
    saved = read_saved(s.grad_fn)
    assert [name for name, _ in saved.values] == ["result"] and not saved.freed
    s.sum().backward()
    assert read_saved(s.grad_fn).freed


def test_log_says_who_saved_a_tensor_about_to_be_written():
    a = torch.ones(3, requires_grad=True)
    s = (a * 2).sigmoid()
    log = SavedLog()
    log.note(s, line=3)
    assert log
    assert log.before_write(s) == SavedBy("SigmoidBackward0", 3)
    assert log.before_write(s) is None  # said once


def test_saved_inputs_count_too():
    a = torch.ones(3, requires_grad=True) * 1
    b = torch.ones(3)
    z = a * b  # mul saves b for a's gradient
    log = SavedLog()
    log.note(z, line=4)
    assert log.before_write(b) == SavedBy("MulBackward0", 4)


def test_nothing_to_say_once_changed_freed_or_unknown():
    a = torch.ones(3, requires_grad=True)
    log = SavedLog()
    s = (a * 2).sigmoid()
    log.note(s, line=2)
    with torch.no_grad():
        s.add_(1)  # the version moved on: modified already (said then, by whoever saw it)
    assert log.before_write(s) is None
    t = (a * 2).sigmoid()
    log.note(t, line=3)
    t.sum().backward()  # the buffers are freed: a write breaks nothing
    assert log.before_write(t) is None
    assert log.before_write(torch.ones(3)) is None
    c = a + 1  # add saves nothing
    log.note(c, line=4)
    assert log.before_write(c) is None


def test_log_keeps_nothing_alive_and_stays_bounded():
    import weakref

    log = SavedLog(limit=8)
    a = torch.ones(3, requires_grad=True)
    refs = []
    for _ in range(20):
        s = (a * 2).sigmoid()
        refs.append(weakref.ref(s))
        log.note(s, line=1)
    assert len(log._saved) <= 8
    del s
    gc.collect()
    assert all(r() is None for r in refs)
    log.clear()
    assert not log

"""WatchLog: plain records plus weak references that only name things while they live."""

from __future__ import annotations

import gc
import weakref

import torch

from torchmagic.autograd.log import WatchLog


def test_live_cuts_forget_dead_tensors() -> None:
    log = WatchLog()
    kept, dropped = torch.ones(2), torch.ones(3)
    log.cuts[id(kept)] = (weakref.ref(kept), "w.detach() (line 2)")
    log.cuts[id(dropped)] = (weakref.ref(dropped), "v.detach() (line 3)")
    del dropped
    gc.collect()
    assert log.live_cuts() == {id(kept): "w.detach() (line 2)"}


def test_the_log_holds_no_tensor() -> None:
    t = torch.ones(2, requires_grad=True)
    log = WatchLog()
    log.roots.append(weakref.ref(t))
    ref = weakref.ref(t)
    del t
    gc.collect()
    assert ref() is None and log.roots[0]() is None

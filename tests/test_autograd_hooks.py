"""GlobalHooks: registered on enter, all removed on exit however the block ends."""

from __future__ import annotations

import pytest
import torch
from torch.nn.modules import module as torch_module

from torchmagic.autograd.hooks import GlobalHooks


class Counting(GlobalHooks):
    def __init__(self) -> None:
        self.calls = 0
        self.resets = 0

    def register(self) -> list:  # type: ignore[type-arg]
        return [torch_module.register_module_forward_pre_hook(self._pre)]

    def _pre(self, module: torch.nn.Module, args: tuple) -> None:  # type: ignore[type-arg]
        self.calls += 1

    def reset(self) -> None:
        self.resets += 1


def test_hooks_live_only_inside_the_block() -> None:
    before = len(torch_module._global_forward_pre_hooks)
    lin = torch.nn.Linear(2, 2)
    rec = Counting()
    with pytest.raises(ValueError), rec:
        lin(torch.ones(1, 2))
        raise ValueError("the cell failed")
    lin(torch.ones(1, 2))
    assert rec.calls == 1 and rec.resets == 1
    assert len(torch_module._global_forward_pre_hooks) == before
    rec.__exit__(None, None, None)  # a second exit (the watcher may exit a recorder early) is harmless
    assert rec.resets == 2

"""An eval-mode Transformer computes bit for bit as bare under every collector (core/fastpath.py)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.overrides import TorchFunctionMode

from torchmagic.core.fastpath import FastPath

SETUP = """
import torch
torch.manual_seed(0)
enc = torch.nn.TransformerEncoder(
    torch.nn.TransformerEncoderLayer(32, 4, 64, batch_first=True), 2, enable_nested_tensor=False).eval()
x = torch.randn(4, 8, 32)
with torch.no_grad():
    bare = enc(x)
"""
CALL = "with torch.no_grad():\n    out = enc(x)\n"


class _Count(TorchFunctionMode):
    """A user's mode (defined outside torchmagic): it must stay on, and then the slow path runs."""

    calls = 0

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        _Count.calls += 1
        return func(*args, **(kwargs or {}))


def test_the_fast_path_differs_under_a_mode_bare() -> None:
    """The premise: a function mode alone changes the output (other kernels), so lifting matters."""
    torch.manual_seed(0)
    enc = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(32, 4, 64, batch_first=True), 2,
                                      enable_nested_tensor=False).eval()
    x = torch.randn(4, 8, 32)
    with torch.no_grad():
        bare = enc(x)
        with _Count():
            slow = enc(x)
    assert not slow.equal(bare)
    assert torch.allclose(slow, bare, atol=1e-5)


@pytest.mark.parametrize("magic", ["%%device cpu", "%%autograd", "%%tensorinfo", "%%device cpu -n 2 -r 2"])
def test_every_cell_magic_keeps_the_fast_path(ip: Any, magic: str) -> None:
    ip.run_cell(SETUP)
    result = ip.run_cell(f"{magic}\n{CALL}")
    assert result.success, result.error_in_exec
    assert ip.user_ns["out"].equal(ip.user_ns["bare"])
    assert torch.overrides._get_current_function_mode_stack() == []


def test_the_nan_watch_keeps_the_fast_path(ip: Any) -> None:
    ip.run_cell(SETUP)
    ip.run_line_magic("tensorinfo", "--nan on")
    try:
        assert ip.run_cell(CALL).success
    finally:
        ip.run_line_magic("tensorinfo", "--nan off")
    assert ip.user_ns["out"].equal(ip.user_ns["bare"])
    assert torch.overrides._get_current_function_mode_stack() == []


def test_a_users_mode_stays_on(ip: Any) -> None:
    ip.run_cell(SETUP)
    ip.user_ns["Count"] = _Count
    _Count.calls = 0
    assert ip.run_cell("%%device cpu\nwith torch.no_grad(), Count():\n    out = enc(x)\n").success
    assert _Count.calls > 0  # the user's mode saw the ops inside the encoder
    assert torch.overrides._get_current_function_mode_stack() == []
    del ip.user_ns["Count"]


def test_an_interrupt_inside_the_call_puts_our_modes_back() -> None:
    class Ours(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            return func(*args, **(kwargs or {}))

    Ours.__module__ = "torchmagic.tests"  # counts as one of torchmagic's collectors
    layer = torch.nn.TransformerEncoderLayer(16, 2, 32, batch_first=True).eval()

    def interrupt(module: Any, args: Any) -> None:
        raise KeyboardInterrupt

    mode = Ours()
    handle = layer.self_attn.register_forward_pre_hook(interrupt)
    try:
        with mode, FastPath():
            with pytest.raises(KeyboardInterrupt), torch.no_grad():
                layer.train()  # the slow path reaches self_attn (whose hook interrupts) ...
                layer.self_attn.eval()  # ... which is in eval mode: our mode is lifted for it
                layer(torch.randn(2, 3, 16))
            assert torch.overrides._get_current_function_mode_stack() == []  # lifted, not yet put back
        assert torch.overrides._get_current_function_mode_stack() == []
    finally:
        handle.remove()


"""Keep PyTorch's eval-mode fast path for Transformer modules while torchmagic records.

``nn.TransformerEncoderLayer``, ``nn.TransformerEncoder`` and
``nn.MultiheadAttention`` in eval mode (under ``no_grad`` or inference) call
one fused kernel instead of their Python ops, but only when no
``TorchFunctionMode`` is active (PyTorch asks ``has_torch_function``).  Every
collector that watches ops with a function mode would therefore switch the
user's model to other kernels: a few ulps of difference in the output
(≤ 5e-7 measured on a 2-layer encoder) and timings of code the user does not
run bare.  :class:`FastPath` takes torchmagic's own function modes off the
stack for the duration of such a call and puts them back afterwards, so the
module computes exactly as it would bare; the collectors see the call as one
module call (their module hooks still run) but not the ops inside it.

A mode the user pushed stays on: the user's own mode disables the fast path
bare as well.
"""

from __future__ import annotations

import threading
from typing import Any

import torch
from torch import nn

from torchmagic.core.guard import internal_failure

__all__ = ["FastPath", "FAST_PATH_MODULES", "is_ours"]

FAST_PATH_MODULES: tuple[type[nn.Module], ...] = (
    nn.TransformerEncoder, nn.TransformerEncoderLayer, nn.MultiheadAttention,
)


def is_ours(mode: object) -> bool:
    """Whether a function mode is one of torchmagic's collectors (defined in this package)."""
    return type(mode).__module__.startswith("torchmagic.")


class FastPath:
    """Context manager: while it is entered, eval-mode fast-path modules run with our modes lifted."""

    def __init__(self) -> None:
        self._thread = threading.get_ident()
        self._handles: list[Any] = []
        self._saved: list[Any] | None = None  # the whole stack as it was when a call lifted it
        self._owner: int | None = None  # id of the module whose call lifted it (the outermost)

    def __enter__(self) -> FastPath:
        try:
            self._handles = [
                nn.modules.module.register_module_forward_pre_hook(self._pre),
                nn.modules.module.register_module_forward_hook(self._post, always_call=True),
            ]
        except Exception as exc:  # noqa: BLE001 - without it the cell still runs, on the slow path
            self._remove_hooks()
            internal_failure("keeping PyTorch's fast path", exc)
        return self

    def __exit__(self, *exc: object) -> None:
        self._remove_hooks()
        self._put_back()  # an interrupt inside a lifted call never reached the forward hook

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _pre(self, module: nn.Module, args: Any) -> None:
        if self._saved is not None or module.training or not isinstance(module, FAST_PATH_MODULES):
            return
        if threading.get_ident() != self._thread:
            return
        stack = torch.overrides._get_current_function_mode_stack()
        if not any(is_ours(m) for m in stack):
            return
        saved = [torch._C._pop_torch_function_stack() for _ in range(len(stack))][::-1]
        for mode in saved:
            if not is_ours(mode):
                torch._C._push_on_torch_function_stack(mode)
        self._saved, self._owner = saved, id(module)

    def _post(self, module: nn.Module, args: Any, result: Any) -> None:
        if self._saved is not None and id(module) == self._owner and threading.get_ident() == self._thread:
            self._put_back()

    def _put_back(self) -> None:
        saved, self._saved, self._owner = self._saved, None, None
        if saved is None:
            return
        while torch._C._len_torch_function_stack():
            torch._C._pop_torch_function_stack()
        for mode in saved:
            torch._C._push_on_torch_function_stack(mode)

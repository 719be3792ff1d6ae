"""A training loop seen step by step: the loss, each parameter's gradient norm and update.

When a cell calls ``backward()`` many times, the report summarises the loop
instead of listing every call.  Per backward call (a *step*) the
:class:`StepLog` keeps the loss (when the root is a number) and, on sampled
steps, every leaf's gradient norm; PyTorch's global optimizer hooks
(``register_optimizer_step_pre_hook`` / ``..._post_hook``, only while the
cell runs) give the norm of each update ``‖Δw‖`` next to ``‖w‖`` on the same
sampled steps.  Sampling keeps every step until there are
:data:`MAX_SAMPLES`, then every second, fourth... step, so a loop of a
million steps costs the same memory as one of a hundred and the cost per
step stays small.  Only floats and weak references are kept; numbers read
on an accelerator are collected as device scalars and read once at the end.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch.optim import optimizer as _optimizer

from torchmagic.autograd.hooks import GlobalHooks
from torchmagic.core.guard import Fence

if TYPE_CHECKING:
    from torch.utils.hooks import RemovableHandle

_QUIET = torch._C.DisableTorchFunction
__all__ = ["StepLog", "Sampler", "FlowSample", "UpdateSample", "MAX_SAMPLES"]

MAX_SAMPLES = 32  # gradient-norm samples kept (per loop)
MAX_LOSSES = 512  # loss values kept
MAX_UPDATES = 8  # optimizer updates measured (each copies the parameters once)


class Sampler:
    """Which steps to keep: all of them, then every 2nd, 4th... as the count doubles."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.stride = 1

    def wants(self, step: int) -> bool:
        return step % self.stride == 0

    def thin(self, kept: list[Any], step_of: Any) -> list[Any]:
        """``kept`` (one item per kept step) with every second step dropped, once it is full."""
        if len(kept) < self.limit:
            return kept
        self.stride *= 2
        return [item for item in kept if step_of(item) % self.stride == 0]


@dataclass
class FlowSample:
    """Gradient norms of the leaves on one step (``id(leaf) -> norm``)."""

    step: int
    norms: dict[int, float] = field(default_factory=dict)


@dataclass
class UpdateSample:
    """One optimizer step on a sampled training step: ``‖Δw‖`` and ``‖w‖`` per parameter."""

    step: int  # the backward call it followed
    number: int = 0  # which optimizer step it was
    updates: dict[int, tuple[float, float]] = field(default_factory=dict)


class StepLog(GlobalHooks):
    """Losses, gradient norms and optimizer updates of the backward calls of one cell."""

    def __init__(self, fence: Fence | None = None) -> None:
        self.fence = fence or Fence()
        self.losses: list[tuple[int, float]] = []
        self._pending: list[tuple[int, torch.Tensor]] = []  # accelerator scalars, read at the end
        self.loss_sampler = Sampler(MAX_LOSSES)
        self.flow: list[FlowSample] = []
        self.flow_sampler = Sampler(MAX_SAMPLES)
        self.updates: list[UpdateSample] = []
        self.update_sampler = Sampler(MAX_UPDATES)
        self.leaves: dict[int, weakref.ref[torch.Tensor]] = {}
        self.optimizers: dict[int, weakref.ref[torch.optim.Optimizer]] = {}
        self.optimizer_steps = 0
        self.step = 0  # the number of the backward call that ran last
        # True between an optimizer step's pre- and post-hook: the watcher leaves its ops alone.  A
        # step that raises never reaches the post-hook; the next step's pre-hook sets it again anyway.
        self.stepping = False
        self.user_hook: Callable[[], None] | None = None  # called after each optimizer step, in the user's code
        self._snapshot: list[tuple[torch.Tensor, torch.Tensor]] = []

    # -- the loss ----------------------------------------------------------------
    def loss(self, step: int, root: torch.Tensor) -> float | None:
        """Remember ``root``'s value on this step when it is one real number; its value, when on the CPU."""
        if root.numel() != 1 or root.is_complex():
            return None
        value = root.detach()
        number = float(value.reshape(())) if value.device.type == "cpu" else None
        if not self.loss_sampler.wants(step):
            return number
        if number is not None:
            self.losses.append((step, number))
        elif value.device.type != "meta":  # no synchronisation per step on an accelerator: read all at the end
            self._pending.append((step, value.reshape(()).clone()))
        if len(self.losses) + len(self._pending) >= MAX_LOSSES:
            self._read_pending()
            self.losses = self.loss_sampler.thin(self.losses, lambda item: item[0])
        return number

    def _read_pending(self) -> None:
        if self._pending:
            values = torch.stack([v.to(torch.float64) for _, v in self._pending]).cpu().tolist()
            self.losses.extend(zip((s for s, _ in self._pending), values))
            self.losses.sort()
            self._pending.clear()

    def loss_values(self) -> list[tuple[int, float]]:
        self._read_pending()
        return list(self.losses)

    # -- gradient norms ----------------------------------------------------------
    def gradients(self, step: int, leaves: Sequence[torch.Tensor], known: Sequence[float] | None = None) -> None:
        """On sampled steps: every leaf's gradient norm (one fused call, read once; ``known``: already read)."""
        self.step = step
        if not self.flow_sampler.wants(step):
            return
        with_grad = [leaf for leaf in leaves if leaf.grad is not None and leaf.grad.layout == torch.strided]
        grads = [g for leaf in with_grad if (g := leaf.grad) is not None]
        if not grads:
            return
        if known is not None and len(known) == len(leaves) == len(with_grad):
            norms = list(known)
        else:
            with torch.no_grad():
                norms = torch.stack([n.to(torch.float64) for n in torch._foreach_norm(grads)]).cpu().tolist()
        sample = FlowSample(step)
        for leaf, norm in zip(with_grad, norms):
            key = id(leaf)
            if key not in self.leaves:
                self.leaves[key] = weakref.ref(leaf)
            sample.norms[key] = norm
        self.flow.append(sample)
        self.flow = self.flow_sampler.thin(self.flow, lambda s: s.step)

    # -- optimizer steps ---------------------------------------------------------
    def register(self) -> list[RemovableHandle]:
        return [
            _optimizer.register_optimizer_step_pre_hook(self._before_step),
            _optimizer.register_optimizer_step_post_hook(self._after_step),
        ]

    def reset(self) -> None:
        self._snapshot = []
        self.stepping = False

    def _before_step(self, opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self.stepping = True
        with _QUIET():  # our own ops here must not go through the recording mode
            try:
                self.optimizer_steps += 1
                if id(opt) not in self.optimizers:
                    self.optimizers[id(opt)] = weakref.ref(opt)
                sampled = bool(self.flow) and self.flow[-1].step == self.step
                if (not sampled or (self.updates and self.updates[-1].step == self.step)
                        or not self.update_sampler.wants(self.optimizer_steps)):
                    self._snapshot = []
                    return
                params = [p for group in opt.param_groups for p in group["params"]
                          if isinstance(p, torch.Tensor) and p.grad is not None and p.layout == torch.strided]
                with torch.no_grad():
                    self._snapshot = [(p, p.detach().clone()) for p in params]
            except Exception as exc:  # noqa: BLE001 - recording must never break the user's step
                self._snapshot = []
                self.fence.fail(exc)

    def _after_step(self, opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self.stepping = False
        snapshot, self._snapshot = self._snapshot, []
        if self.user_hook is not None:
            self.user_hook()  # the user's code is running: the watcher may step aside here
        if not snapshot:
            return
        with _QUIET():  # our own ops here must not go through the recording mode
            try:
                with torch.no_grad():
                    params = [p for p, _ in snapshot]
                    deltas = torch._foreach_sub([p.detach() for p in params], [old for _, old in snapshot])
                    moved = torch._foreach_norm(deltas)
                    sizes = torch._foreach_norm([p.detach() for p in params])
                    numbers = torch.stack([n.to(torch.float64) for n in (*moved, *sizes)]).cpu().tolist()
                half = len(params)
                sample = UpdateSample(self.step, self.optimizer_steps)
                for k, p in enumerate(params):
                    sample.updates[id(p)] = (numbers[k], numbers[half + k])
                    if id(p) not in self.leaves:
                        self.leaves[id(p)] = weakref.ref(p)
                self.updates.append(sample)
                self.updates = self.update_sampler.thin(self.updates, lambda u: u.number)
            except Exception as exc:  # noqa: BLE001 - recording must never break the user's step
                self.fence.fail(exc)

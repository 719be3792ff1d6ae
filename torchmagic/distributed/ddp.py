"""Data parallelism made visible: each rank's loss, its gradients before and after DDP's all-reduce, the buckets.

While the cell runs, a tensor hook on every parameter of each DDP model in
the namespace sees the *local* gradient the moment autograd computes it —
before DDP's reducer averages it over the ranks; after the cell, ``.grad``
holds the averaged one.  The hooks only read (they return None, so the
gradient is unchanged) and are removed when the cell ends.  A small torch
function mode notes the value ``backward()`` was called on (the loss).
Buckets come from DDP's reducer (which parameters travel together in one
all-reduce, and how many bytes).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

from torch.overrides import TorchFunctionMode

from torchmagic.core.names import is_user_name
from torchmagic.core.runner import Collector
from torchmagic.distributed.report import Bucket, DDPFacts, GradRow
from torchmagic.i18n import N_

__all__ = ["DDPCollector", "summary"]

VALUES = 4  # values of each gradient shown
MAX_PARAMS = 24
MAX_MODELS = 2


def summary(t: Any) -> tuple[tuple[float, ...], float]:
    """The first few values and the norm of a gradient (plain floats)."""
    flat = t.detach().reshape(-1)
    vals = tuple(float(v) for v in flat[:VALUES].float().tolist())
    return vals, float(flat.float().norm())


class _LossMode(TorchFunctionMode):
    """Notes the value of each one-element tensor ``backward()`` is called on, and when backward ended."""

    def __init__(self, losses: list[float], ended: Callable[[], None]) -> None:
        super().__init__()
        self.losses = losses
        self.ended = ended
        import torch

        self.targets = (torch.Tensor.backward, torch.autograd.backward)

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func not in self.targets:
            return func(*args, **kwargs)
        if args and len(self.losses) < 100:
            try:
                t = args[0]
                if hasattr(t, "numel") and t.numel() == 1:
                    self.losses.append(float(t.detach()))
            except Exception:  # noqa: BLE001, S110 - recording is fenced: it never breaks the user's backward
                pass
        out = func(*args, **kwargs)
        self.ended()  # DDP has averaged every bucket by now: .grad holds the all-reduced gradient
        return out


class DDPCollector(Collector):
    """Gradients before/after the all-reduce for the DDP models of the namespace."""

    what = N_("the DDP recording")

    def __init__(self, models: list[tuple[str, Any]]) -> None:
        super().__init__()
        self.models = models
        self.handles: list[Any] = []
        self.before: dict[int, tuple[tuple[float, ...], float]] = {}
        self.after: dict[int, tuple[tuple[float, ...], float]] = {}
        self.losses: list[float] = []
        self.mode: _LossMode | None = None
        self.facts: tuple[DDPFacts, ...] = ()

    @classmethod
    def find(cls, namespace: Mapping[str, Any]) -> DDPCollector | None:
        """A collector when the namespace holds DDP models (None otherwise: nothing to watch)."""
        if "torch.nn.parallel" not in sys.modules:
            return None
        from torch.nn.parallel import DistributedDataParallel as DDP

        models = [(n, v) for n, v in list(namespace.items()) if is_user_name(n) and isinstance(v, DDP)]
        return cls(models[:MAX_MODELS]) if models else None

    def __enter__(self) -> DDPCollector:
        for _, model in self.models:
            for _, p in list(model.module.named_parameters())[:MAX_PARAMS]:
                if p.requires_grad:
                    self.handles.append(p.register_hook(self._hook(id(p))))
        self.mode = _LossMode(self.losses, self._ended)
        self.mode.__enter__()
        return self

    def _hook(self, key: int) -> Any:
        def hook(grad: Any) -> None:
            try:
                self.before[key] = summary(grad)
            except Exception as exc:  # noqa: BLE001 - recording is fenced: it never breaks the user's backward
                self.fence.fail(exc)
            return

        return hook

    def _ended(self) -> None:
        """After a backward(): read every watched parameter's .grad (before an optimizer zeroes it)."""
        try:
            for _, model in self.models:
                for _, p in list(model.module.named_parameters())[:MAX_PARAMS]:
                    if id(p) in self.before and p.grad is not None:
                        self.after[id(p)] = summary(p.grad)
        except Exception as exc:  # noqa: BLE001 - recording is fenced: it never breaks the user's backward
            self.fence.fail(exc)

    def __exit__(self, *exc: Any) -> None:
        mode, self.mode = self.mode, None
        try:
            if mode is not None:
                mode.__exit__(None, None, None)
        finally:
            for h in self.handles:
                h.remove()
            self.handles.clear()

    def report(self, error: BaseException | None) -> None:
        facts = []
        for name, model in self.models:
            params = list(model.module.named_parameters())[:MAX_PARAMS]
            buckets, where = _buckets(model, params)
            rows = []
            for pname, p in params:
                if id(p) not in self.before:
                    continue
                before, bnorm = self.before[id(p)]
                after, anorm = self.after.get(id(p), ((), 0.0))
                rows.append(GradRow(pname, tuple(p.shape), before, after, bnorm, anorm, where.get(id(p), -1)))
            if not rows:
                continue  # no backward through this model in the cell
            facts.append(
                DDPFacts(
                    model=name,
                    losses=tuple(self.losses),
                    grads=tuple(rows),
                    buckets=buckets,
                    bucket_cap=int(getattr(model, "bucket_bytes_cap", 0)),
                )
            )
        self.before.clear()
        self.after.clear()
        self.facts = tuple(facts)
        return


def _buckets(model: Any, params: list[tuple[str, Any]]) -> tuple[tuple[Bucket, ...], dict[int, int]]:
    """DDP's gradient buckets: index, bytes, parameter names; and parameter -> bucket."""
    names = {id(p): n for n, p in params}
    out: list[Bucket] = []
    where: dict[int, int] = {}
    try:
        grad_buckets = model.reducer._get_zeros_like_grad_buckets()
    except Exception:  # noqa: BLE001 - recording is fenced: it never breaks the user's backward
        return (), {}
    for b in grad_buckets:
        members = list(b.parameters())
        for p in members:
            where[id(p)] = int(b.index())
        buf = b.buffer()
        out.append(
            Bucket(
                index=int(b.index()),
                nbytes=int(buf.numel() * buf.element_size()),
                params=tuple(names.get(id(p), f"{tuple(p.shape)}") for p in members),
            )
        )
    return tuple(out), where

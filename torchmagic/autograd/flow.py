"""Gradient flow across a training loop: per-layer norms, update ratios, and which layers look wrong.

Input is what :mod:`torchmagic.autograd.steps` sampled (each leaf's gradient
norm on some steps, each parameter's ``‖Δw‖`` and ``‖w‖`` when an optimizer
stepped) plus the leaves' names; output is a
:class:`~torchmagic.autograd.report.GradFlow`.  A *layer* is the module a
parameter belongs to (``model.0`` for ``model.0.weight``); its norm is that of
all its parameters' gradients together.  The rules, on the sampled steps:

* **non-finite**: a NaN or inf norm on some step;
* **no gradient**: the norm is 0 on every step (the layer is not connected
  to the loss, or its units are dead);
* **vanishing**: on most sampled steps (the median) the norm is below
  :data:`VANISH_REL` times the largest layer's norm of the same step, or on
  the last step below :data:`VANISH_ABS`;
* **exploding**: the norm grew to at least :data:`GROWTH` times its first
  value, or above :data:`HUGE`.

Pure functions: no torch here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from torchmagic.autograd.report import GradFlow, LayerFlow
from torchmagic.autograd.values import fmt_number
from torchmagic.i18n import tr

__all__ = ["grad_flow", "layer_of", "VANISH_ABS", "VANISH_REL", "GROWTH", "HUGE"]

VANISH_ABS = 1e-10
VANISH_REL = 1e-4
GROWTH = 1e3
HUGE = 1e8
MAX_LAYERS = 64  # layers listed; the rest are counted in the last row


def layer_of(name: str) -> str:
    """``model.0.weight`` -> ``model.0``; a plain name is its own layer."""
    return name.rsplit(".", 1)[0] if "." in name else name


def _combine(values: Sequence[float]) -> float:
    return math.sqrt(sum(v * v for v in values))


def _ratio(pairs: Sequence[tuple[float, float]]) -> float:
    """‖update‖ / ‖weight‖ of a layer from its parameters' (‖Δw‖, ‖w‖)."""
    weight = _combine([w for _, w in pairs])
    return _combine([d for d, _ in pairs]) / weight if weight else 0.0


def grad_flow(
    samples: Sequence[tuple[int, Mapping[int, float]]],
    updates: Sequence[tuple[int, Mapping[int, tuple[float, float]]]],
    names: Mapping[int, str],
) -> GradFlow | None:
    """Per-layer flow from the sampled norms (``(step, {leaf: norm})``) and updates (``{leaf: (‖Δw‖, ‖w‖)}``)."""
    if not samples:
        return None
    layers: dict[str, list[int]] = {}
    for _, norms in samples:
        for key in norms:
            name = names.get(key, "")
            layer = layer_of(name) if name else tr("unnamed leaves")
            members = layers.setdefault(layer, [])
            if key not in members:
                members.append(key)
    steps = tuple(step for step, _ in samples)
    rows: list[tuple[str, int, tuple[float, ...], tuple[float, ...]]] = []
    for layer, keys in layers.items():
        layer_norms = tuple(_combine([n.get(k, 0.0) for k in keys]) for _, n in samples)
        ratios = tuple(_ratio([u[k] for k in keys if k in u]) for _, u in updates if any(k in u for k in keys))
        rows.append((layer, len(keys), layer_norms, ratios))
    largest = [max((r[2][k] for r in rows if math.isfinite(r[2][k])), default=0.0) for k in range(len(steps))]
    out = [LayerFlow(layer, tensors, norms, ratios, *_judge(norms, steps, largest))
           for layer, tensors, norms, ratios in rows[:MAX_LAYERS]]
    return GradFlow(steps=steps, layers=tuple(out), update_steps=tuple(step for step, _ in updates))


def _judge(norms: tuple[float, ...], steps: tuple[int, ...], largest: list[float]) -> tuple[str, str]:
    """(flag, why) for one layer's norms on the sampled steps (``largest``: the largest layer's, per step)."""
    for step, norm in zip(steps, norms):
        if not math.isfinite(norm):
            return "non-finite", tr("gradient norm {value} at step {step}", value=fmt_number(norm), step=step)
    last, first = norms[-1], norms[0]
    if all(n == 0.0 for n in norms):
        return "no gradient", tr("gradient is 0 on every sampled step")
    if last > HUGE or (len(norms) >= 3 and first > 0 and last >= GROWTH * first):
        return "exploding", tr("gradient norm grew from {first} to {last}", first=fmt_number(first),
                               last=fmt_number(last))
    shares = sorted(n / top for n, top in zip(norms, largest) if top > 0)
    share = shares[len(shares) // 2] if shares else 1.0
    if share < VANISH_REL:
        return "vanishing", tr("about {share} of the largest layer's gradient norm (median of the steps)",
                               share=f"{share:.0e}")
    if last < VANISH_ABS:
        return "vanishing", tr("gradient norm {value} on the last sampled step", value=fmt_number(last))
    return "", ""

"""The Jacobian behind a small ``backward()``, so a learner can check v·J by hand.

``backward()`` never builds the Jacobian: it computes the vector–Jacobian
product ``v·J`` directly, where ``v`` is the ``gradient=`` argument (1 for a
scalar loss).  For small functions we build ``J`` row by row with extra
``torch.autograd.grad`` passes through the *same* graph (``retain_graph=True``,
before the user's backward frees it), then show ``v``, ``J``, ``v·J`` and what
backward actually added to ``.grad``.  The extra passes never touch ``.grad``;
tensor hooks the user registered do fire for them (documented in the magic).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from torchmagic.autograd.report import Jacobian
from torchmagic.core.text import first_line
from torchmagic.i18n import tr

__all__ = ["jacobian_before", "finish"]


@dataclass
class Pending:
    """The Jacobian computed before the user's backward, waiting for its result."""

    output: str
    output_shape: tuple[int, ...]
    rows: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    matrix: list[tuple[float, ...]] = field(default_factory=list)
    v: tuple[float, ...] = ()
    before: list[float] = field(default_factory=list)
    note: str = ""


def _flat(t: torch.Tensor | None, numel: int) -> list[float]:
    if t is None:
        return [0.0] * numel
    return [float(v) for v in t.detach().reshape(-1).to(torch.float64).tolist()]


def _element_names(name: str, shape: Sequence[int]) -> list[str]:
    if not shape:
        return [name]
    idx = [()]  # type: list[tuple[int, ...]]
    for size in shape:
        idx = [(*i, k) for i in idx for k in range(size)]
    return [f"{name}[{', '.join(str(k) for k in i)}]" for i in idx]


def jacobian_before(
    kind: str,
    roots: list[torch.Tensor],
    gradient: torch.Tensor | Sequence[torch.Tensor] | None,
    leaves: list[torch.Tensor],
    names: dict[int, str],
    root_label: str,
    limit: int,
) -> Pending | None:
    """J of ``roots[0]`` w.r.t. ``leaves`` (None if there is nothing to differentiate)."""
    if not roots or not leaves:
        return None
    out = roots[0]
    shape = tuple(int(s) for s in out.shape)
    pending = Pending(output=root_label, output_shape=shape)
    m = out.numel()
    n = sum(int(leaf.numel()) for leaf in leaves)
    if len(roots) > 1:
        pending.note = tr("several outputs: the Jacobian is shown for the first one")
    if out.is_complex() or any(leaf.is_complex() for leaf in leaves):
        pending.note = tr("complex tensors: torch uses conjugate Wirtinger derivatives; no Jacobian shown")
        return pending
    if m * n > limit:
        pending.note = tr(
            "J would have {m} × {n} = {total} entries, more than the limit of {limit} "
            "(%config TorchMagics.jacobian_max_elements = ...)", m=m, n=n, total=m * n, limit=limit
        )
        return pending
    try:
        for i in range(m):
            e = torch.zeros(m, dtype=out.dtype, device=out.device)
            e[i] = 1
            grads = torch.autograd.grad(
                out, leaves, grad_outputs=e.view(out.shape), retain_graph=True, allow_unused=True
            )
            row: list[float] = []
            for leaf, g in zip(leaves, grads):
                row.extend(_flat(g, int(leaf.numel())))
            pending.matrix.append(tuple(row))
    except RuntimeError as exc:
        pending.matrix = []
        pending.note = tr("could not compute the Jacobian: {error}", error=first_line(str(exc)))
        return pending
    pending.rows = tuple(_element_names(root_label if len(root_label) < 20 else "out", shape))
    cols: list[str] = []
    for leaf in leaves:
        cols.extend(_element_names(names.get(id(leaf), "") or tr("leaf"), tuple(int(s) for s in leaf.shape)))
    pending.columns = tuple(cols)
    grads_v = gradient if gradient is None or isinstance(gradient, torch.Tensor) else gradient[0]
    pending.v = tuple(_flat(grads_v, m)) if grads_v is not None else (1.0,) * m
    if kind != "torch.autograd.grad":
        for leaf in leaves:
            pending.before.extend(_flat(leaf.grad, int(leaf.numel())))
    return pending


def finish(pending: Pending, after: Sequence[torch.Tensor | None], leaves: Sequence[torch.Tensor]) -> Jacobian:
    """Attach what backward produced: ``.grad`` growth, or autograd.grad's results."""
    vj: tuple[float, ...] = ()
    computed: tuple[float, ...] = ()
    matches: bool | None = None
    if pending.matrix:
        cols = len(pending.matrix[0])
        vj = tuple(sum(v * row[j] for v, row in zip(pending.v, pending.matrix)) for j in range(cols))
        flat: list[float] = []
        for leaf, g in zip(leaves, after):
            flat.extend(_flat(g, int(leaf.numel())))
        if pending.before:
            flat = [a - b for a, b in zip(flat, pending.before)]
        computed = tuple(flat)
        if len(computed) == len(vj):
            scale = max([1.0, *(abs(x) for x in vj)])
            matches = all(abs(a - b) <= 1e-3 * scale for a, b in zip(vj, computed))
    return Jacobian(
        output=pending.output,
        output_shape=pending.output_shape,
        columns=pending.columns,
        rows=pending.rows,
        matrix=tuple(pending.matrix),
        v=pending.v,
        vj=vj,
        backward=computed,
        matches=matches,
        note=pending.note,
    )

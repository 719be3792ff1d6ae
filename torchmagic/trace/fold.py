"""Fold repeated structure: ``layers.0`` … ``layers.11`` become one block marked ×12.

Two sibling module calls have the same *structure* when they are of the
same type and ran the same ops and sub-module calls in the same order
(shapes and names may differ).  A run of such siblings, one after the other,
folds into its first call: it gets ``repeat``, the ``instances``' paths and
one line per instance (its own input and output shapes, parameters and
time), so nothing is lost, only not repeated.  Their ops were counted in
the first call's rows already (:mod:`torchmagic.trace.modules`: twins).  A module
called again in a loop is one call site already (its ``calls`` count).

Pure logic on report data, run by :mod:`torchmagic.trace.build`.
"""

from __future__ import annotations

from collections.abc import Sequence

from torchmagic.i18n import tr
from torchmagic.trace.report import ModuleCall, OpRow

__all__ = ["fold", "structure_keys"]

def structure_keys(modules: Sequence[ModuleCall], rows: Sequence[OpRow]) -> list[int]:
    """One small int per module call; equal ints mean equal structure."""
    interned: dict[tuple[object, ...], int] = {}
    keys = [-1] * len(modules)
    for m in reversed(modules):  # children are made after their parents: their keys exist by now
        parts: list[object] = [m.type, m.opaque]
        for kind, i in m.items:
            parts.append(rows[i].op if kind == "op" else keys[i])
        keys[m.index] = interned.setdefault(tuple(parts), len(interned))
    return keys


def _differences(run: list[ModuleCall]) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """One line per instance: its path, shapes in and out, parameters and time (ops are counted together).

    Also which instances' shapes differ from the first's (the terminal lists only those).
    """
    first = run[0]
    lines = []
    differ = []
    for k, m in enumerate(run):
        line = tr("{path}: {inputs} → {outputs}, {params} parameters, {ms} ms", path=m.path, inputs=m.inputs,
                  outputs=m.outputs, params=f"{m.params:,}", ms=f"{m.seconds * 1000:.2f}")
        if m is not first and (m.inputs, m.outputs) != (first.inputs, first.outputs):
            line = tr("{line}; shapes differ from {first}", line=line, first=first.path.rsplit(".", 1)[-1])
            differ.append(k)
        lines.append(line)
    return tuple(lines), tuple(differ)


def fold(modules: Sequence[ModuleCall], rows: Sequence[OpRow], order: Sequence[tuple[str, int]]) -> None:
    """Mark runs of same-structure sibling calls (in ``order`` and inside every call) as folded."""
    keys = structure_keys(modules, rows)
    todo = [list(order)]
    while todo:
        items = todo.pop()
        run: list[ModuleCall] = []
        for kind, i in [*items, ("end", -1)]:
            m = modules[i] if kind == "module" else None
            if run and (m is None or keys[m.index] != keys[run[0].index]):
                _close(run, modules, rows)
                run = []
            if m is not None:
                run.append(m)
                if len(run) == 1:
                    todo.append(m.items)


def _close(run: list[ModuleCall], modules: Sequence[ModuleCall], rows: Sequence[OpRow]) -> None:
    if len(run) < 2:
        return
    first = run[0]
    first.repeat = len(run)
    first.instances = tuple(m.path for m in run)
    first.differences, first.differ = _differences(run)
    for m in run[1:]:
        m.folded = True

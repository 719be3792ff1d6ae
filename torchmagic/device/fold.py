"""Fold repeated layers of the per-module table into one row: pure functions of the rows.

A 12-layer Transformer makes twelve ``enc.layers.N`` rows, each with the
same children.  Rows whose paths differ only in list indices
(``enc.layers.0.linear1`` … ``enc.layers.11.linear1``), of the same module
type, with indices that run without a gap, become one row
``enc.layers.0–11.linear1`` with ``instances`` 12 and the sums of their
calls, times and bytes.  Indices with gaps are left alone: a CNN's
``features.0`` and ``features.3`` are two different convolutions, not a
stack.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from torchmagic.device.report import ModuleStat
from torchmagic.i18n import tr

__all__ = ["fold_rows", "pattern_of", "named", "label", "FOLD_MIN"]

#: a run of at least this many repeated layers is folded
FOLD_MIN = 3


def pattern_of(path: str) -> tuple[str, tuple[int, ...]]:
    """``'enc.layers.3.linear1'`` -> (``'enc.layers.#.linear1'``, (3,)): the path with its list indices taken out."""
    parts = path.split(".")
    indices = tuple(int(p) for p in parts if p.isdigit())
    return ".".join("#" if p.isdigit() else p for p in parts), indices


def _span(values: Sequence[int]) -> str | None:
    """``[0, 1, 2]`` -> ``'0–2'``; ``None`` when the values are not a run without gaps."""
    ordered = sorted(set(values))
    if len(ordered) != len(values) or ordered[-1] - ordered[0] != len(ordered) - 1:
        return None
    return f"{ordered[0]}–{ordered[-1]}"


def _label(pattern: str, indices: Sequence[tuple[int, ...]]) -> str | None:
    """The folded path, each varying index written as its run (``None`` if one has gaps)."""
    spans: list[str] = []
    for pos in range(len(indices[0])):
        values = [ix[pos] for ix in indices]
        if len(set(values)) == 1:
            spans.append(str(values[0]))
            continue
        run = _span(sorted(set(values)))
        if run is None:
            return None
        spans.append(run)
    parts = iter(spans)
    return ".".join(next(parts) if p == "#" else p for p in pattern.split("."))


def _summed(rows: Sequence[ModuleStat], path: str) -> ModuleStat:
    first = rows[0]
    backward = [r.backward_ms for r in rows if r.backward_ms is not None]
    return dataclasses.replace(
        first,
        path=path,
        instances=sum(r.instances for r in rows),
        calls=sum(r.calls for r in rows),
        forward_ms=sum(r.forward_ms for r in rows),
        backward_ms=sum(backward) if backward else None,
        allocated_bytes=sum(r.allocated_bytes for r in rows),
        kept_bytes=sum(r.kept_bytes for r in rows),
        grad_bytes=sum(r.grad_bytes for r in rows),
        params=sum(r.params for r in rows),
        out_shape=first.out_shape if all(r.out_shape == first.out_shape for r in rows) else "",
    )


def fold_rows(rows: Sequence[ModuleStat], min_repeats: int = FOLD_MIN) -> list[ModuleStat]:
    """``rows`` (in call order) with each run of repeated layers as one row, where the first stood."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i, row in enumerate(rows):
        pattern, indices = pattern_of(row.path)
        if indices:
            groups.setdefault((pattern, row.type_name), []).append(i)
    replace: dict[int, ModuleStat] = {}
    dropped: set[int] = set()
    for (pattern, _type), members in groups.items():
        if len(members) < min_repeats:
            continue
        label = _label(pattern, [pattern_of(rows[i].path)[1] for i in members])
        if label is None:
            continue
        replace[members[0]] = _summed([rows[i] for i in members], label)
        dropped.update(members[1:])
    return [replace.get(i, row) for i, row in enumerate(rows) if i not in dropped]


def named(rows: Sequence[ModuleStat]) -> list[ModuleStat]:
    """Each row's ``name``: its path after its parent row's (``model.0`` under ``model`` is ``0``)."""
    out: list[ModuleStat] = []
    parents: list[str] = []  # the path of the last row at each depth
    for row in rows:
        del parents[row.depth:]
        parent = parents[-1] if parents else ""
        name = row.path[len(parent) + 1:] if parent and row.path.startswith(parent + ".") else row.path
        out.append(dataclasses.replace(row, name=name))
        parents.extend([""] * (row.depth - len(parents)))
        parents.append(row.path)
    return out


def label(paths: Sequence[str]) -> str:
    """One name for the modules of one layer: ``enc.layers.0–11.linear1``, or the first and a count."""
    unique = list(dict.fromkeys(p for p in paths if p))
    if len(unique) <= 1:
        return unique[0] if unique else ""
    patterns = {pattern_of(p)[0] for p in unique}
    if len(patterns) == 1:
        folded = _label(patterns.pop(), [pattern_of(p)[1] for p in unique])
        if folded is not None:
            return folded
    return tr("{first} (+{n} more)", first=unique[0], n=len(unique) - 1)

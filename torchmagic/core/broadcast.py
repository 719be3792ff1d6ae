"""Broadcasting as pure shape logic: right-align, add dims on the left, stretch 1s.

Learners meet broadcasting as a silent surprise (``(3,) + (3, 1)`` is a
``(3, 3)`` matrix) or as an error that names "non-singleton dimension 1".
This module turns operand shapes into an :class:`Alignment` that says, for
every output dim, what each operand contributed (its own size, a 1 that was
stretched, or a dim added on the left) and which dims clash.  No torch here:
the recorder and the error explainer both feed it plain int tuples, and the
renderers only lay out its rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from torchmagic.i18n import tr

__all__ = ["Alignment", "AlignedOperand", "align", "broadcast_shape", "needs_diagram"]

# What happened to one operand in one output dim.
KEEP = "keep"  # its own size is the output size
STRETCH = "stretch"  # size 1 stretched to the output size
ADDED = "added"  # the operand had fewer dims: a 1 was added on the left, then stretched
CLASH = "clash"  # incompatible with another operand in this dim


@dataclass(frozen=True)
class AlignedOperand:
    """One operand, padded on the left to the output rank."""

    label: str
    shape: tuple[int, ...]
    padded: tuple[int | None, ...]  # None where a dim was added on the left
    marks: tuple[str, ...]  # KEEP / STRETCH / ADDED / CLASH per output dim


@dataclass(frozen=True)
class Alignment:
    """The broadcast of several shapes; ``result`` is None when they clash."""

    operands: tuple[AlignedOperand, ...]
    result: tuple[int, ...] | None
    clashes: tuple[int, ...]  # output dims (0-based, from the left) that clash

    @property
    def ok(self) -> bool:
        return self.result is not None

    @property
    def rank(self) -> int:
        return max((len(o.shape) for o in self.operands), default=0)

    def clash_text(self) -> str:
        """``'dim 1 (-1): 3 vs 4'`` for each clashing dim, joined by ``; ``."""
        parts = []
        for d in self.clashes:
            sizes = [o.padded[d] for o in self.operands if o.padded[d] not in (None, 1)]
            uniq = " ≠ ".join(str(s) for s in dict.fromkeys(sizes))
            parts.append(tr("dim {dim} ({neg}): {sizes}", dim=d, neg=d - self.rank, sizes=uniq))
        return tr("; ").join(parts)


def _dim_size(sizes: list[int]) -> int | None:
    """The output size of one dim, or None when two sizes > 1 differ."""
    big = {s for s in sizes if s != 1}
    if len(big) > 1:
        return None
    return big.pop() if big else 1


def broadcast_shape(*shapes: tuple[int, ...]) -> tuple[int, ...] | None:
    """Like ``torch.broadcast_shapes`` but returns None instead of raising."""
    return align([(f"#{i}", s) for i, s in enumerate(shapes)]).result


def align(operands: list[tuple[str, tuple[int, ...]]]) -> Alignment:
    """Align labelled shapes from the right and explain every dim.

    >>> a = align([("x", (1, 2)), ("y", (3, 1))])
    >>> a.result
    (3, 2)
    >>> [o.marks for o in a.operands]
    [('stretch', 'keep'), ('keep', 'stretch')]
    """
    rank = max((len(s) for _, s in operands), default=0)
    padded = [
        (label, tuple(shape), (None,) * (rank - len(shape)) + tuple(shape))
        for label, shape in operands
    ]
    result: list[int] = []
    clashes: list[int] = []
    for d in range(rank):
        size = _dim_size([int(s) for _, _, p in padded if (s := p[d]) is not None])
        if size is None:
            clashes.append(d)
            result.append(-1)
        else:
            result.append(size)
    aligned = []
    for label, shape, pad in padded:
        marks = []
        for d, size in enumerate(pad):
            if d in clashes and size not in (None, 1):
                marks.append(CLASH)
            elif size is None:
                marks.append(ADDED)
            elif size == 1 and result[d] != 1:
                marks.append(STRETCH)
            else:
                marks.append(KEEP)
        aligned.append(AlignedOperand(label, shape, pad, tuple(marks)))
    return Alignment(
        operands=tuple(aligned),
        result=None if clashes else tuple(result),
        clashes=tuple(clashes),
    )


def needs_diagram(shapes: list[tuple[int, ...]]) -> bool:
    """True when an elementwise op's operands differ in shape (scalars count as ``()``)."""
    return len(shapes) >= 2 and len(set(shapes)) > 1

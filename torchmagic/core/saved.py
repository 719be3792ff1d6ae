"""Read what autograd saved for backward: the ``_saved_*`` attributes of a ``grad_fn`` node.

The trace (in-place writes to saved tensors), the autograd watcher (``.data``
changes after saving) and the graph walk (saved values in each box) all ask
a backward node the same thing.  Reading an attribute raises once a backward
has freed the buffers, or when the saved tensor was modified in place; those
answers are data here, not exceptions.  Nothing is kept: the caller holds the
values only while it looks at them.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch.autograd.graph import Node

__all__ = ["FREED", "MODIFIED", "Saved", "SavedBy", "SavedLog", "read_saved", "saved_attrs"]

FREED = "Trying to backward through the graph a second time"  # autograd's words once buffers are freed
MODIFIED = "modified by an inplace operation"  # ... and for a saved tensor changed in place

_ATTRS: dict[type, tuple[str, ...]] = {}  # node class -> its ``_saved_*`` attributes (never changes)


def saved_attrs(node: Node) -> tuple[str, ...]:
    """The ``_saved_*`` attribute names of ``node``'s class (sizes and strides left out), cached."""
    kind = type(node)
    attrs = _ATTRS.get(kind)
    if attrs is None:
        attrs = _ATTRS[kind] = tuple(
            a for a in dir(node) if a.startswith("_saved_") and not a.endswith(("_sym_sizes", "_sym_strides"))
        )
    return attrs


@dataclass
class Saved:
    """What one node saved: ``(name, value)`` pairs (``"self"``, ``"other"``, ``"result"``...)."""

    values: list[tuple[str, Any]] = field(default_factory=list)
    freed: bool = False  # a backward already freed them: nothing can be read
    modified: list[str] = field(default_factory=list)  # saved tensors changed in place since


def read_saved(node: Node) -> Saved:
    """Everything ``node`` saved that can still be read."""
    out = Saved()
    for attr in saved_attrs(node):
        try:
            value = getattr(node, attr)
        except RuntimeError as exc:
            message = str(exc)
            if FREED in message:
                return Saved(freed=True)
            if MODIFIED in message:
                out.modified.append(attr[7:])
            continue
        except Exception:  # noqa: BLE001, S112 - a custom node's odd attribute is skipped, not fatal
            continue
        out.values.append((attr[7:], value))
    return out


@dataclass(frozen=True)
class SavedBy:
    """Which backward node saved a tensor, and on which cell line the op that made the node ran."""

    node: str  # "SigmoidBackward0"
    line: int


class SavedLog:
    """The tensors autograd saved for backward, noted as ops run, to catch in-place writes to them.

    After each op whose result has a ``grad_fn``, :meth:`note` records what
    that node saved (by ``id``, with a weak reference and the tensor's
    version counter: nothing is kept alive).  Before an in-place op,
    :meth:`before_write` says whether its target is such a tensor, unchanged
    since and still needed (no backward has freed the buffers yet): the
    write will make ``backward()`` fail with "modified by an inplace
    operation".  The trace warns with it; the autograd watcher's ``.data``
    check asks the same question.  Bounded: the oldest entries go first.
    """

    def __init__(self, limit: int = 4096) -> None:
        import torch  # here, not at import: the graph model imports this module without needing torch

        self._tensor = torch.Tensor
        self.limit = limit
        # id(tensor) -> (its weakref, version when saved, node name, attribute, weakref to the node's output, line)
        self._saved: dict[int, tuple[weakref.ref[torch.Tensor], int, str, str, weakref.ref[torch.Tensor], int]] = {}

    def __bool__(self) -> bool:
        return bool(self._saved)

    def note(self, out: torch.Tensor, line: int) -> None:
        """Record what ``out.grad_fn`` saved (``out`` is the op's tensor result, with a ``grad_fn``)."""
        saved = self._saved
        out_ref = weakref.ref(out)
        node = out.grad_fn
        if node is None:
            return
        node_name = type(node).__name__
        tensor = self._tensor
        for name, t in read_saved(node).values:
            if name == "result":
                t = out  # the very object the user holds, not autograd's unpacked copy
            elif not isinstance(t, tensor):
                continue
            saved.pop(id(t), None)
            saved[id(t)] = (weakref.ref(t), t._version, node_name, "_saved_" + name, out_ref, line)
        while len(saved) > self.limit:
            saved.pop(next(iter(saved)))

    def before_write(self, target: torch.Tensor) -> SavedBy | None:
        """Who saved ``target`` if writing it in place now would break a later ``backward()`` (forgotten then)."""
        entry = self._saved.get(id(target))
        if entry is None:
            return None
        ref, version, node_name, attr, out_ref, line = entry
        if ref() is not target or target._version != version:
            return None  # a different tensor now, or already modified (said then)
        out = out_ref()
        if out is None or out.grad_fn is None:
            return None
        try:
            getattr(out.grad_fn, attr)
        except RuntimeError:  # backward has freed the saved tensors: nothing left to break
            return None
        del self._saved[id(target)]
        return SavedBy(node_name, line)

    def clear(self) -> None:
        self._saved.clear()

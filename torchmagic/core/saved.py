"""Read what autograd saved for backward: the ``_saved_*`` attributes of a ``grad_fn`` node.

The trace (in-place writes to saved tensors), the autograd watcher (``.data``
changes after saving) and the graph walk (saved values in each box) all ask
a backward node the same thing.  Reading an attribute raises once a backward
has freed the buffers, or when the saved tensor was modified in place; those
answers are data here, not exceptions.  Nothing is kept: the caller holds the
values only while it looks at them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["FREED", "MODIFIED", "Saved", "read_saved", "saved_attrs"]

FREED = "Trying to backward through the graph a second time"  # autograd's words once buffers are freed
MODIFIED = "modified by an inplace operation"  # ... and for a saved tensor changed in place

_ATTRS: dict[type, tuple[str, ...]] = {}  # node class -> its ``_saved_*`` attributes (never changes)


def saved_attrs(node: Any) -> tuple[str, ...]:
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


def read_saved(node: Any) -> Saved:
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

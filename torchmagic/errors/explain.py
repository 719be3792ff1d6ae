"""Explain a failed torch op in terms of the operands the user wrote.

PyTorch's shape errors name internal things ("mat1", "tensor b",
"non-singleton dimension 1").  Given the failing op, its operands (labels as
the user wrote them, with shapes, dtypes and devices) and the exception, this
module says which dims clash and why, e.g.
``matmul: x is (2, 3), w is (5, 4): inner dims 3 ≠ 5``.  It is pure logic on
plain data, fed by the recorder (``%%tensorinfo``: exact operands) and by
:mod:`torchmagic.errors.frames` (any cell: operands read from the failing
frame), so both paths explain errors identically.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from torchmagic.core.broadcast import align
from torchmagic.core.meta import fmt_shape
from torchmagic.core.text import first_line
from torchmagic.errors.advice import hint_for
from torchmagic.errors.report import Explanation, Operand

__all__ = ["FailedOp", "explain"]

_MATMUL_OPS = {"matmul", "__matmul__", "__rmatmul__", "mm", "bmm", "mv", "dot", "addmm", "baddbmm", "einsum"}
_VIEW_OPS = {"view", "reshape", "view_as", "reshape_as", "flatten", "unflatten"}


@dataclass
class FailedOp:
    """The op that raised, as plain data."""

    op: str
    operands: list[Operand]
    expression: str = ""
    line: int | None = None
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # "shape": requested view shape, "dim": cat dim


def _tensors(ops: list[Operand]) -> list[Operand]:
    return [o for o in ops if o.kind == "tensor" and o.shape is not None]


def _shape_of(o: Operand) -> tuple[int, ...]:
    return o.shape if o.shape is not None else ()


def _desc(o: Operand) -> str:
    return f"{o.label} is {fmt_shape(_shape_of(o))}"


def _broadcast(f: FailedOp, msg: str) -> Explanation | None:
    ops = [o for o in f.operands if o.kind in ("tensor", "scalar")]
    if len(_tensors(ops)) < 2:
        # An operand we could not read (e.g. a call: never re-run): use the message's sizes.
        m = re.search(
            r"tensor a \((\d+)\) must match the size of tensor b \((\d+)\) at non-singleton dimension (\d+)", msg
        )
        if not m or not ops:
            return None
        title = f"{f.expression or f.op}: " + ", ".join(_desc(o) for o in _tensors(ops))
        title += f": sizes {m.group(1)} ≠ {m.group(2)} at dim {m.group(3)}, and neither is 1"
        return Explanation("broadcast", title, "", msg, operands=tuple(ops))
    al = align([(o.label, _shape_of(o)) for o in ops])
    if al.ok:
        return None
    title = f"{f.expression or f.op}: " + ", ".join(_desc(o) for o in _tensors(ops))
    title += f": shapes don't broadcast at {al.clash_text()}"
    details = (
        "Shapes are aligned from the right; each dim must be equal, or 1 (stretched), or missing (added).",
    )
    return Explanation("broadcast", title, "", msg, operands=tuple(ops), details=details, broadcast=al)


def _matmul(f: FailedOp, msg: str) -> Explanation | None:
    ts = _tensors(f.operands)
    if len(ts) < 2:
        return None
    a, b = ts[-2], ts[-1]
    if f.op in ("addmm", "baddbmm") and len(ts) >= 3:
        a, b = ts[1], ts[2]
    sa, sb = _shape_of(a), _shape_of(b)
    if not sa or not sb:
        return None
    inner_a = sa[-1]
    inner_b = sb[-2] if len(sb) >= 2 else sb[0]
    details: list[str] = []
    hint = ""
    if inner_a != inner_b:
        title = f"{f.op}: {_desc(a)}, {_desc(b)}: inner dims {inner_a} ≠ {inner_b}"
        details.append(
            f"{a.label} @ {b.label} needs {a.label}'s last dim to equal {b.label}'s "
            + ("second-to-last dim." if len(sb) >= 2 else "length.")
        )
        if len(sb) >= 2 and sb[-1] == inner_a:
            hint = f"Did you mean `{a.label} @ {b.label}.T`? ({b.label}.T is {fmt_shape((*sb[:-2], sb[-1], sb[-2]))})"
        elif len(sa) >= 2 and sa[-2] == inner_b:
            hint = f"Did you mean `{a.label}.T @ {b.label}`?"
    else:
        title = f"{f.op}: {_desc(a)}, {_desc(b)}: batch dims {fmt_shape(sa[:-2])} and {fmt_shape(sb[:-2])} don't match"
    return Explanation("matmul", title, "", msg, operands=(a, b), details=tuple(details), hint=hint)


def _linear(f: FailedOp, msg: str) -> Explanation | None:
    ts = _tensors(f.operands)
    if len(ts) < 2 or len(_shape_of(ts[1])) != 2 or not _shape_of(ts[0]):
        return None
    x, w = ts[0], ts[1]
    out_f, in_f = _shape_of(w)
    got = _shape_of(x)[-1]
    layer = f.extra.get("module") or f"Linear(in_features={in_f}, out_features={out_f})"
    title = (
        f"linear: input {x.label} is {fmt_shape(_shape_of(x))}, but {layer} expects the last dim "
        f"to be in_features={in_f}: {got} ≠ {in_f}"
    )
    details = (f"weight {w.label} is {fmt_shape(_shape_of(w))} = (out_features, in_features).",)
    hint = (
        f"Make the layer `nn.Linear({got}, {out_f})`, or reshape/flatten the input so its last dim is {in_f}"
        + (" (e.g. `x.flatten(1)`)." if len(_shape_of(x)) > 2 else ".")
    )
    return Explanation("linear", title, "", msg, operands=(x, w), details=details, hint=hint)


def _prod(dims: list[int]) -> int:
    out = 1
    for d in dims:
        out *= d
    return out


def _strided(f: FailedOp, msg: str) -> Explanation | None:
    """``view`` of a tensor whose memory is not in row-major order (after ``.t()``, ``.transpose``, ``.permute``)."""
    ts = _tensors(f.operands)
    if not ts:
        return None
    t = ts[0]
    state = "is not contiguous" if not t.contiguous else "has strides view cannot reinterpret"
    title = (f"{f.op}: {t.label} {fmt_shape(_shape_of(t))} {state}: its elements are not laid out in memory "
             "in the order the new shape reads them")
    details = (("view never copies: it only reinterprets memory that is already in row-major order. "
                ".t(), .transpose() and .permute() return views whose memory is in another order."),)
    return Explanation("view", title, "", msg, operands=(t,), details=details)


def _with_message_shapes(f: FailedOp, msg: str) -> FailedOp:
    """Fill the shapes of operands that could not be read (calls are never re-run) from the message.

    ``mat1 and mat2 shapes cannot be multiplied (2x3 and 2x3)`` gives the
    shapes of ``torch.ones(2, 3) @ torch.ones(2, 3)``'s two operands.
    """
    m = re.search(r"\((\d+(?:x\d+)*) and (\d+(?:x\d+)*)\)", msg)
    slots = [i for i, o in enumerate(f.operands) if o.kind == "tensor"][-2:]
    if not m or len(slots) != 2 or all(f.operands[i].shape is not None for i in slots):
        return f
    operands = list(f.operands)
    for i, text in zip(slots, m.groups()):
        if operands[i].shape is None:
            o = operands[i]
            operands[i] = Operand(o.label, "tensor", tuple(int(d) for d in text.split("x")), o.dtype, o.device)
    return FailedOp(f.op, operands, f.expression, f.line, f.source, f.extra)


def _view(f: FailedOp, msg: str) -> Explanation | None:
    m = re.search(r"shape '\[(.*?)\]' is invalid for input of size (\d+)", msg)
    ts = _tensors(f.operands)
    if not m:
        return None
    requested = [int(s) for s in m.group(1).split(",") if s.strip()]
    size = int(m.group(2))
    src = ts[0] if ts else None
    who = f"{src.label} {fmt_shape(_shape_of(src))}" if src else "the input"
    req = fmt_shape(tuple(requested))
    if -1 in requested:
        known = _prod([d for d in requested if d != -1])
        title = (
            f"{f.op}: {who} has {size} elements; {req} needs a multiple of {known} "
            f"(the other dims) to fill -1, and {size} is not"
        )
    else:
        title = f"{f.op}: {who} has {size} elements, but {req} holds {_prod(requested)}"
    details = ("view/reshape only rearrange elements: the new shape must hold exactly as many.",)
    return Explanation("view", title, "", msg, operands=tuple(ts[:1]), details=details)


def _cat(f: FailedOp, msg: str) -> Explanation | None:
    ts = _tensors(f.operands)
    if len(ts) < 2:
        return None
    dim = int(f.extra.get("dim", 0) or 0)
    m = re.search(r"except in dimension (\d+)", msg)
    if m:
        dim = int(m.group(1))
    shapes = [_shape_of(t) for t in ts]
    if len({len(s) for s in shapes}) > 1:
        title = f"{f.op}: tensors need the same number of dims: " + ", ".join(_desc(t) for t in ts)
        return Explanation("cat", title, "", msg, operands=tuple(ts))
    rank = len(shapes[0])
    if f.op == "stack":
        bad = [d for d in range(rank) if len({s[d] for s in shapes}) > 1]
        what = "stack needs every tensor to have the same shape"
    else:
        d0 = dim % rank if rank else 0
        bad = [d for d in range(rank) if d != d0 and len({s[d] for s in shapes}) > 1]
        what = f"cat along dim {dim}: every other dim must match"
    clash = "; ".join(f"dim {d}: " + " ≠ ".join(str(v) for v in dict.fromkeys(s[d] for s in shapes)) for d in bad)
    title = f"{what}: " + ", ".join(_desc(t) for t in ts[:6]) + (f": {clash}" if clash else "")
    hint = ""
    if f.op == "stack" and bad:
        hint = "To join along an existing dim with different sizes there, use `torch.cat`."
    return Explanation(f.op, title, "", msg, operands=tuple(ts), hint=hint)


def _device(f: FailedOp, msg: str) -> Explanation | None:
    ts = _tensors(f.operands)
    devices = {t.device for t in ts}
    if len(devices) < 2:
        if not ts:
            return None
        title = f"{f.op}: operands must be on one device: " + ", ".join(f"{t.label} on {t.device}" for t in ts)
    else:
        title = f"{f.op}: operands are on different devices: " + ", ".join(f"{t.label} on {t.device}" for t in ts)
    return Explanation("device", title, "", msg, operands=tuple(ts))


def _dtype(f: FailedOp, msg: str) -> Explanation | None:
    ts = _tensors(f.operands)
    if len({t.dtype for t in ts}) < 2:
        return None
    title = f"{f.op}: operands have different dtypes: " + ", ".join(f"{t.label} is {t.dtype}" for t in ts)
    return Explanation("dtype", title, "", msg, operands=tuple(ts))


def _index(f: FailedOp, msg: str) -> Explanation | None:
    ts = _tensors(f.operands)
    if not ts:
        return None
    t = ts[0]
    m = re.search(r"got (-?\d+)\)", msg)
    if "Dimension out of range" in msg and m:
        n = len(_shape_of(t))
        title = f"{f.op}: {_desc(t)} has {n} dims (valid dims {-n} … {n - 1}), but dim {m.group(1)} was asked"
        return Explanation("index", title, "", msg, operands=(t,))
    m = re.search(r"index (-?\d+) is out of bounds for dimension (\d+) with size (\d+)", msg)
    if m:
        title = f"{f.op}: {_desc(t)}; index {m.group(1)} is past the end of dim {m.group(2)} (size {m.group(3)})"
        return Explanation("index", title, "", msg, operands=(t,))
    return None


_RULES: list[tuple[str, Any]] = [
    (r"must match the size of tensor b|The expanded size of the tensor", _broadcast),
    (r"on the same device|not on the expected device|two devices", _device),
    (r"same dtype|expected scalar type", _dtype),
    ((r"cannot be multiplied|size mismatch, got|Expected size for first two dimensions|"
     r"inconsistent tensor size|shapes cannot be multiplied"), None),  # matmul or linear, by op
    (r"is invalid for input of size", _view),
    (r"view size is not compatible with input tensor's size and stride", _strided),
    (r"Sizes of tensors must match|stack expects each tensor|Tensors must have same number of dimensions", _cat),
    (r"Dimension out of range|out of bounds for dimension", _index),
]


def explain(f: FailedOp, exc_type: str, message: str) -> Explanation | None:
    """An explanation for this failure, or None when there is nothing useful to add."""
    msg = first_line(message)
    f = _with_message_shapes(f, msg)
    found: Explanation | None = None
    for pattern, rule in _RULES:
        if not re.search(pattern, msg):
            continue
        if rule is None:
            rule = _linear if f.op == "linear" else _matmul
        found = rule(f, msg)
        if found is not None:
            break
    hint = hint_for(exc_type, msg, f.expression or f.source)
    if found is None:
        ops = tuple(o for o in f.operands if o.kind != "value")
        if hint:
            found = Explanation("hint", hint, "", msg, operands=ops)
            hint = ""
        elif _tensors(list(ops)):
            title = f"{f.op} failed on " + ", ".join(f"{o.label} {o.short()}" for o in ops)
            found = Explanation("op", title, "", msg, operands=ops)
        else:
            return None
    found.exc_type = exc_type
    found.message = msg
    found.line, found.source, found.expression, found.op = f.line, f.source, f.expression, f.op
    if not found.hint:
        found.hint = hint
    return found

"""Per-shape variants of a row: the signature that tells them apart, and what one variant says.

Every execution of an op computes :func:`signature` (shapes and dtypes of its
tensors, a tuple: cheap to hash).  Only the first execution with a new
signature pays for :func:`describe`: operand labels and metadata, whether
the result is a view, a copy or the input itself, ``-1`` resolved, dtype
promotion and the broadcasting diagram.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from torchmagic.core.broadcast import align, needs_diagram
from torchmagic.core.meta import dtype_name, shape_of
from torchmagic.errors.operands import operand
from torchmagic.trace.notes import division, op_notes
from torchmagic.trace.report import INPLACE, NEW, NONE, SAME, VIEW
from torchmagic.trace.rows import Input, Made, Row, Var

if TYPE_CHECKING:
    from torchmagic.errors.report import Operand

__all__ = ["signature", "describe", "inputs_of", "requested_shape", "is_name"]

_MADE_LIMIT = 4096  # tensors remembered by what made them (the oldest are forgotten first)


def is_name(text: str) -> bool:
    """``x``, ``model.fc.weight``, ``layers.0``: a label that is a name, not an expression."""
    return text.isidentifier() or (bool(text) and all(p.isidentifier() or p.isdigit() for p in text.split(".")))


def requested_shape(args: Sequence[Any]) -> tuple[int, ...]:
    """The shape asked of ``view``/``reshape``: ``x.view(2, -1)`` and ``x.view((2, -1))`` alike."""
    rest = args[1:]
    if len(rest) == 1 and isinstance(rest[0], (tuple, list, torch.Size)):
        rest = rest[0]
    try:
        return tuple(int(d) for d in rest)
    except (TypeError, ValueError):
        return ()


def shares_storage(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Do ``a`` and ``b`` use the same memory (a view)?  Tensors without storage share none."""
    try:
        pa = a.untyped_storage().data_ptr()
        return pa != 0 and pa == b.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):  # sparse, meta-like or subclass tensors
        return False


def signature(args: Sequence[Any], kwargs: Mapping[str, Any], out: Any) -> tuple[Any, ...]:
    """Shapes and dtypes of tensor inputs and outputs: one variant per distinct value."""
    try:
        return _plain_signature(args, kwargs, out)
    except RuntimeError:  # a nested tensor: .shape raises, its sizes need shape_of
        return tuple(
            (shape_of(a), a.dtype) if isinstance(a, torch.Tensor) else type(a)
            for a in (*args, *(kwargs or {}).values(), out)
        )


def _plain_signature(args: Sequence[Any], kwargs: Mapping[str, Any], out: Any) -> tuple[Any, ...]:
    parts: list[Any] = []
    for a in args:
        if isinstance(a, torch.Tensor):
            parts.append(a.shape)
            parts.append(a.dtype)
        elif type(a) is list or type(a) is tuple:
            for t in a:
                if isinstance(t, torch.Tensor):
                    parts.append(t.shape)
        elif type(a) is float or type(a) is int:
            parts.append(type(a))
    if kwargs:
        for v in kwargs.values():
            if isinstance(v, torch.Tensor):
                parts.append(v.shape)
    if isinstance(out, torch.Tensor):
        parts.append(out.shape)
        parts.append(out.dtype)
    elif type(out) is tuple or type(out) is list:
        for t in out[:4]:
            if isinstance(t, torch.Tensor):
                parts.append(t.shape)
    return tuple(parts)


def _label(row: Row, i: int) -> str:
    texts = row.site.arg_texts
    return texts[i] if i < len(texts) else ""


def _maker(t: torch.Tensor, made: Made | None) -> tuple[str, int] | None:
    """What made ``t`` in this cell (an op's row or a module call), if it was noted."""
    if made is None:
        return None
    entry = made.get(id(t))
    return entry[1] if entry is not None and entry[0]() is t else None


def inputs_of(
    row: Row, args: Sequence[Any], kwargs: Mapping[str, Any], names: Mapping[int, str], made: Made | None = None
) -> list[Input]:
    """The op's operands, labelled as the source writes them (or by their names from before the cell)."""
    items: list[Input] = []
    for i, a in enumerate(args):
        text = _label(row, i)
        if isinstance(a, torch.Tensor):
            pre = names.get(id(a), "")
            if not (text or pre):
                pre = next((n for ref, n in row.via_refs if ref() is a), "")
            label = text or pre
            maker = None if label else _maker(a, made)
            items.append((operand(a, label, named=is_name(label)), weakref.ref(a), pre, maker))
        elif isinstance(a, (list, tuple)) and a and all(isinstance(t, torch.Tensor) for t in a):
            elts = row.site.elts.get(i, [])
            for j, t in enumerate(a):
                pre = names.get(id(t), "")
                label = elts[j] if j < len(elts) else (pre or (f"{text}[{j}]" if text else f"#{j}"))
                items.append((operand(t, label, named=is_name(label)), weakref.ref(t), pre, None))
        elif row.info.pointwise and isinstance(a, (bool, int, float, complex)):
            items.append((operand(a, text or repr(a)), None, "", None))
    for k, v in kwargs.items():
        if isinstance(v, torch.Tensor):
            pre = names.get(id(v), "")
            items.append((operand(v, pre or k, named=bool(pre)), weakref.ref(v), pre, None))
    return items


def describe(
    row: Row,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    out: Any,
    names: Mapping[int, str],
    made: Made | None = None,
) -> Var:
    """A new variant of ``row``: operands, outputs, effect on memory and notes (once per signature).

    Its outputs are noted in ``made`` (bounded), so a later op that gets one
    without a name can say which op made it.
    """
    var = Var()
    var.inputs = inputs_of(row, args, kwargs, names, made)
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    tensors_out = [o for o in outs if isinstance(o, torch.Tensor)]
    label = "" if row.via else (row.site.target or row.site.expression)
    for j, o in enumerate(tensors_out[:8]):
        lab = label if len(tensors_out) == 1 else f"{label}[{j}]"
        ref = weakref.ref(o)
        var.outputs.append((operand(o, lab, named=is_name(lab)), ref))
        if made is not None:
            made.pop(id(o), None)
            made[id(o)] = (ref, ("op", row.index))
            if len(made) > _MADE_LIMIT:
                made.pop(next(iter(made)))
    var.effect = _effect(row, args, tensors_out)
    info = row.info
    if info.reshape and tensors_out:
        req = requested_shape(args)
        if -1 in req:
            got = shape_of(tensors_out[0])
            if len(got) == len(req):
                var.notes.append(f"-1 → {got[req.index(-1)]}")
    ops_in = [op for op, *_ in var.inputs if op.kind in ("tensor", "scalar")]
    if info.pointwise and len(ops_in) >= 2:
        if needs_diagram([op.shape or () for op in ops_in]):
            var.broadcast = align([(op.label, op.shape or ()) for op in ops_in])
        if tensors_out:
            out_dtype = dtype_name(tensors_out[0].dtype)
            note = division(row.op, [op.dtype for op in ops_in], out_dtype) or _promotion(ops_in, out_dtype)
            if note:
                var.notes.append(note)
    var.notes.extend(op_notes(row.op, args, kwargs, out))
    return var


def _effect(row: Row, args: Sequence[Any], tensors_out: list[torch.Tensor]) -> str:
    """What the op did with memory: a new tensor, a view of its input, the input itself, in place."""
    info = row.info
    if not tensors_out:
        return INPLACE if info.inplace else NONE
    if info.inplace:
        return INPLACE
    first = args[0] if args and isinstance(args[0], torch.Tensor) else None
    if first is not None and info.maybe_view:
        if tensors_out[0] is first:
            return SAME
        if shares_storage(tensors_out[0], first):
            return VIEW
    return NEW


def _promotion(ops_in: list[Operand], out_dtype: str) -> str:
    """``'int64 + float → float32'`` when a pointwise op's result dtype is not its inputs' one."""
    in_dtypes = {op.dtype for op in ops_in if op.kind == "tensor"}
    if out_dtype == "bool" or not (len(in_dtypes) > 1 or (in_dtypes and out_dtype not in in_dtypes)):
        return ""
    return " + ".join(dict.fromkeys(op.dtype for op in ops_in)) + f" → {out_dtype}"

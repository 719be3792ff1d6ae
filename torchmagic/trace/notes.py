"""Notes for silent surprises: things an op did that no error and no shape tells a learner.

* uninitialised memory: ``torch.empty(2, 3)`` and its kin, and the legacy
  constructors (``torch.FloatTensor(2, 3)``, which no function mode sees:
  they are found in the cell's source);
* values changed by a dtype conversion: ``torch.tensor(1.7, dtype=torch.int8)``
  is 1 (truncated toward zero), 300 as ``uint8`` is 44 (wrapped), 0.1 as
  ``float16`` is 0.09998 (rounded);
* ops that did nothing: ``r.squeeze(0)`` on a dim of size 2, a ``view`` to
  the shape the tensor has;
* integer ÷ integer, which gives floats (``//`` keeps integers).

Each note is computed once per new shape set of a row
(:func:`torchmagic.trace.variants.describe`), reading values only for
conversions of at most :data:`MAX_READ` elements, with every function mode
disabled: reading never changes anything.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from torchmagic.core.meta import dtype_name, fmt_shape
from torchmagic.i18n import N_, tr

__all__ = ["op_notes", "source_notes", "DIVISIONS", "MAX_READ"]

MAX_READ = 1 << 20  # conversions of more elements are not compared value by value
EMPTY = frozenset({"empty", "empty_like", "new_empty", "empty_strided", "new_empty_strided", "empty_permuted"})
DIVISIONS = frozenset({"div", "divide", "true_divide", "__truediv__", "__rtruediv__", "__itruediv__", "div_"})
_CONVERSIONS = frozenset({"to", "type", "long", "int", "short", "char", "byte", "half", "bfloat16", "tensor",
                          "as_tensor"})
_LEGACY = frozenset({"Tensor", "FloatTensor", "DoubleTensor", "HalfTensor", "BFloat16Tensor", "ByteTensor",
                     "CharTensor", "ShortTensor", "IntTensor", "LongTensor", "BoolTensor"})
_LOW_FLOATS = frozenset({torch.float16, torch.bfloat16})
UNINITIALISED = N_("uninitialised memory: its values are whatever was in memory before (fill it before reading it)")


def op_notes(op: str, args: Sequence[Any], kwargs: Mapping[str, Any], out: Any) -> list[str]:
    """The notes for one execution of ``op`` (the first of a new shape set)."""
    if op in EMPTY:
        return [tr(UNINITIALISED)]
    if not isinstance(out, torch.Tensor):
        return []
    first = args[0] if args else None
    if op in _CONVERSIONS:
        with torch._C.DisableTorchFunction(), torch.no_grad():
            note = _conversion(op, first, out)
        return [note] if note else []
    if op in ("squeeze", "squeeze_") and isinstance(first, torch.Tensor) and first.shape == out.shape:
        dim = args[1] if len(args) > 1 else kwargs.get("dim")
        if isinstance(dim, int) and -first.dim() <= dim < first.dim():
            return [tr("no-op: dim {dim} has size {size}; squeeze removes only size-1 dims", dim=dim,
                       size=first.shape[dim])]
        return [tr("no-op: no dim has size 1")]
    if op in ("view", "reshape", "view_as", "reshape_as", "flatten") and isinstance(first, torch.Tensor) and (
            first.shape == out.shape):
        return [tr("no-op: the shape is already {shape}", shape=fmt_shape(tuple(out.shape)))]
    return []


def _conversion(op: str, src: Any, out: torch.Tensor) -> str:
    """How a conversion changed values (``''`` when it changed none, or when it is not one that can)."""
    target = out.dtype
    if (target.is_floating_point and target not in _LOW_FLOATS) or target.is_complex or target == torch.bool:
        return ""  # widening, or a bool test: nothing a learner misses
    if out.numel() > MAX_READ or out.device.type == "meta":
        return ""
    if isinstance(src, torch.Tensor):
        if not (src.is_floating_point() or src.is_complex()) and target in _LOW_FLOATS:
            ref = src.double()
        elif not src.is_floating_point() and not target.is_floating_point:
            ref = src.to(torch.float64)  # int → narrower int: may wrap
        else:
            ref = src.to(torch.float64) if not src.is_complex() else src.real.to(torch.float64)
    elif op in ("tensor", "as_tensor") and isinstance(src, (int, float, list, tuple)):
        try:
            ref = torch.tensor(src, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            return ""
    else:
        return ""
    if ref.shape != out.shape or ref.device != out.device:
        return ""
    changed = ref != out.to(torch.float64)
    n = int(changed.sum())
    if not n:
        return ""
    i = int(changed.flatten().nonzero()[0])
    before, after = ref.flatten()[i].item(), out.flatten()[i].item()
    name = dtype_name(target)
    if target in _LOW_FLOATS:
        why = tr("rounded to {dtype}", dtype=name)
    elif torch.iinfo(target).min <= before <= torch.iinfo(target).max:
        why = tr("{dtype} keeps no fraction: truncated toward zero", dtype=name)
    else:
        why = tr("outside {dtype}'s range {low}…{high}: it wraps around", dtype=name, low=torch.iinfo(target).min,
                 high=torch.iinfo(target).max)
    change = f"{_num(before)} → {_num(after)}"
    if out.numel() > 1:
        return tr("{n} of {total} values changed, e.g. {change} ({why})", n=n, total=out.numel(), change=change,
                  why=why)
    return tr("{change} ({why})", change=change, why=why)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.6g}"


def division(op: str, in_dtypes: Sequence[str], out_dtype: str) -> str:
    """``'int64 ÷ int64 → float32 (true division; // keeps integers)'`` for integer inputs made float."""
    if op not in DIVISIONS or not in_dtypes or not out_dtype.startswith(("float", "bfloat")):
        return ""
    if all(d.startswith(("int", "uint")) or d == "int" for d in in_dtypes):
        return tr("{division} → {dtype} (true division; // keeps integers)", division=" ÷ ".join(in_dtypes),
                  dtype=out_dtype)
    return ""


def source_notes(source: str, first_line: int = 1) -> list[tuple[int, str]]:
    """Legacy constructors with sizes (``torch.FloatTensor(2, 3)``) in a cell's source: uninitialised memory.

    A function mode never sees these calls, so the source is the only place
    to find them.  ``first_line`` is the line number of the source's first
    line.  Calls with data (``torch.Tensor([1, 2])``) copy it: no note.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and node.args):
            continue
        func = node.func
        if not (isinstance(func, ast.Attribute) and func.attr in _LEGACY):
            continue
        name = func.attr
        if not (isinstance(func.value, ast.Name) and func.value.id == "torch"):
            continue
        ints = all(isinstance(a, ast.Constant) and type(a.value) is int for a in node.args)
        sizes_by_name = len(node.args) > 1 and all(
            isinstance(a, ast.Name) or (isinstance(a, ast.Constant) and type(a.value) is int) for a in node.args)
        if ints or sizes_by_name:  # sizes; one non-int argument would be data (copied: initialised)
            sizes = ", ".join(ast.unparse(a) for a in node.args)
            text = tr("{call} makes a tensor of uninitialised memory (whatever was in memory before); {zeros} or "
                      "{tensor} say what they hold", call=f"torch.{name}({sizes})", zeros=f"torch.zeros({sizes})",
                      tensor="torch.tensor(data)")
            found.append((node.lineno + first_line - 1, text))
    return sorted(found)

"""Explain any failing cell from its traceback: no tracing, no re-running code.

Once the extension is loaded, every cell that raises gets a short
explanation under its traceback when torchmagic can add something: the
failing line, each operand of the failing expression with its shape, and the
dims that clash.  We read the frames the traceback already holds: the
innermost frame running a torch call (``F.linear(input, self.weight, ...)``
inside ``nn.Linear``, or the cell line itself), evaluate only *names*,
attribute reads on tensors and modules, and literals there — never calls — and
label tensors with the user's names by identity.  The exception itself is
untouched: the cell fails exactly as before.
"""

from __future__ import annotations

import ast
import inspect
import linecache
import sys
from dataclasses import replace
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from torchmagic.core.text import first_line
from torchmagic.errors.advice import hint_for
from torchmagic.errors.explain import FailedOp, explain
from torchmagic.errors.report import Explanation, Operand

__all__ = ["explain_exception", "mark_explained", "was_explained", "show_explanation", "attach", "attached",
           "describe_module"]

_MISSING = object()
_TENSOR_ATTRS = frozenset({"T", "mT", "H", "mH", "data", "real", "imag"})
# methods whose result is a view: made again to read an operand like ``o.t()`` (no copy, no side effect)
_VIEW_METHODS = frozenset({"t", "transpose", "permute", "unsqueeze", "squeeze", "view", "narrow", "expand",
                           "detach", "movedim", "swapaxes", "swapdims", "select", "diagonal", "unflatten"})
_BINOPS = {
    ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.MatMult: "matmul",
    ast.Pow: "pow", ast.Mod: "remainder", ast.FloorDiv: "floor_divide", ast.BitAnd: "bitwise_and",
    ast.BitOr: "bitwise_or", ast.BitXor: "bitwise_xor",
}
_EXPLAINED = "_torchmagic_explained"  # set on an exception a cell magic's report already explained
_EXPLANATION = "_torchmagic_explanation"  # the explanation a recorder made when the op raised


def _mark(exc: BaseException, attr: str, value: Any) -> None:
    """Set ``attr`` on the exception object itself: no registry of ids that could go stale."""
    try:
        setattr(exc, attr, value)
    except (AttributeError, TypeError):  # an exception type without a __dict__: not marked
        pass


def mark_explained(exc: BaseException) -> None:
    """Note on ``exc`` that a cell magic's report explained it (the any-cell explainer stays quiet)."""
    _mark(exc, _EXPLAINED, True)


def was_explained(exc: BaseException) -> bool:
    """True for an exception passed to :func:`mark_explained`."""
    return getattr(exc, _EXPLAINED, False) is True


def attach(exc: BaseException, explanation: Explanation) -> None:
    """Keep the explanation a recorder made when the op raised ``exc`` (plain data) with ``exc``."""
    _mark(exc, _EXPLANATION, explanation)


def attached(exc: BaseException) -> Explanation | None:
    """The explanation :func:`attach` kept with ``exc``, if any."""
    found = getattr(exc, _EXPLANATION, None)
    return found if isinstance(found, Explanation) else None


def _safe_eval(node: ast.AST, frame: FrameType) -> Any:
    """Value of names, literals and harmless attribute reads in ``frame``; never calls anything."""
    import torch

    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        value = node.operand.value
        return -value if isinstance(value, (int, float)) else _MISSING
    if isinstance(node, ast.Name):
        for scope in (frame.f_locals, frame.f_globals, frame.f_builtins):
            if node.id in scope:
                return scope[node.id]
        return _MISSING
    if isinstance(node, ast.Attribute):
        base = _safe_eval(node.value, frame)
        if base is _MISSING:
            return _MISSING
        if isinstance(base, torch.Tensor):
            return getattr(base, node.attr) if node.attr in _TENSOR_ATTRS else _MISSING
        try:
            static = inspect.getattr_static(base, node.attr)
        except AttributeError:
            static = _MISSING
        if isinstance(base, torch.nn.Module) and static is _MISSING:
            return getattr(base, node.attr, _MISSING)  # parameters, buffers, submodules
        if static is _MISSING or isinstance(static, (property, staticmethod, classmethod)):
            return _MISSING
        if hasattr(type(static), "__get__") and not callable(static):
            return _MISSING  # a descriptor that would run code
        return static
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_safe_eval(e, frame) for e in node.elts]
        return _MISSING if any(i is _MISSING for i in items) else items
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _VIEW_METHODS:
        return _view_of(node, frame)
    return _MISSING


def _view_of(node: ast.Call, frame: FrameType) -> Any:
    """``o.t()``, ``x.transpose(0, 1)``: a view of a tensor, made again (views copy nothing and change nothing).

    Only these methods, on a tensor the frame names, with literal or named
    arguments: the value ``o.t()`` had when the failing op ran.
    """
    import torch

    owner = _safe_eval(node.func.value, frame)  # type: ignore[attr-defined]
    args = [_safe_eval(a, frame) for a in node.args]
    if not isinstance(owner, torch.Tensor) or node.keywords or any(a is _MISSING for a in args):
        return _MISSING
    try:
        with torch._C.DisableTorchFunction(), torch.no_grad():
            return getattr(owner, node.func.attr)(*args)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - a view that cannot be made again: the operand stays unread
        return _MISSING


def _text(source: str, node: ast.AST) -> str:
    seg = ast.get_source_segment(source, node) or ast.unparse(node)
    return " ".join(seg.split())


def _op_and_args(node: ast.AST, frame: FrameType) -> tuple[str, list[Any]] | None:
    import torch

    if isinstance(node, ast.BinOp):
        return _BINOPS.get(type(node.op), type(node.op).__name__.lower()), [node.left, node.right]
    if isinstance(node, ast.AugAssign):
        return _BINOPS.get(type(node.op), "op") + "_", [node.target, node.value]
    if isinstance(node, ast.Subscript):
        return ("__setitem__" if isinstance(node.ctx, ast.Store) else "__getitem__"), [node.value]
    if isinstance(node, ast.Call):
        func = node.func
        args = [a for a in node.args if not isinstance(a, ast.Starred)]
        if isinstance(func, ast.Attribute):
            owner = _safe_eval(func.value, frame)
            if isinstance(owner, torch.Tensor):
                return func.attr, [func.value, *args]  # a method of the tensor: it is the first operand
            return func.attr, args
        if isinstance(func, ast.Name):
            return func.id, args
        return "call", args
    return None


def _frame_failure(tb: TracebackType, names: dict[int, str]) -> FailedOp | None:
    """The failing op at one traceback entry, if its expression is a torch-like call."""
    import executing
    import torch

    try:
        ex = executing.Source.executing(tb)
        node, source = ex.node, ex.source.text
    except Exception:  # noqa: BLE001 - the explainer only adds words: any failure means "no explanation"
        return None
    if node is None:
        return None
    frame = tb.tb_frame
    found = _op_and_args(node, frame)
    if found is None:
        return None
    op, arg_nodes = found
    operands: list[Operand] = []
    from torchmagic.errors.operands import operand

    for arg in arg_nodes:
        value = _safe_eval(arg, frame)
        if value is _MISSING:
            if isinstance(node, ast.BinOp) and isinstance(arg, ast.Call):  # `torch.ones(2, 3) @ ...`: never re-run
                operands.append(Operand(_text(source, arg), "tensor"))  # its shape may come from the message
            continue
        if isinstance(value, list) and isinstance(arg, (ast.List, ast.Tuple)):
            for elt, v in zip(arg.elts, value):
                if isinstance(v, torch.Tensor):
                    label = names.get(id(v)) or _text(source, elt)
                    operands.append(operand(v, label, named=True))
            continue
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, torch.Tensor) for v in value):
            base = _text(source, arg)
            for i, v in enumerate(value):
                operands.append(operand(v, names.get(id(v)) or f"{base}[{i}]"))
            continue
        label = _text(source, arg)
        if isinstance(value, torch.Tensor):
            label = names.get(id(value)) or label
            operands.append(operand(value, label, named=isinstance(arg, (ast.Name, ast.Attribute))))
        elif isinstance(value, (bool, int, float)):
            operands.append(operand(value, label))
    extra: dict[str, Any] = {}
    this = frame.f_locals.get("self")
    if isinstance(this, torch.nn.Module):
        extra["module"] = describe_module(this)
    extra["arg_texts"] = [_text(source, a) for a in arg_nodes]
    return FailedOp(op=op, operands=operands, expression=_text(source, node), extra=extra)


def describe_module(module: torch.nn.Module) -> str:
    """``Linear(in_features=3, ...)``: the module as its repr's first line says it ('' if that fails)."""
    try:
        return f"{type(module).__name__}({module.extra_repr()})"
    except Exception:  # noqa: BLE001 - the user's own extra_repr raised: the explanation names no layer
        return ""


def id_named(op: Operand, names: dict[int, str]) -> bool:
    """True when the operand's label is one of the user's names."""
    return op.label in set(names.values())


def _is_cell_file(filename: str, cells: Any) -> bool:
    return filename in cells or filename.startswith("<ipython-input-")


def explain_exception(exc: BaseException, shell: Any = None) -> Explanation | None:
    """An explanation of ``exc`` from its traceback's frames, or None (never raises)."""
    if "torch" not in sys.modules or not isinstance(exc, Exception):
        return None
    try:
        return _explain(exc, shell)
    except Exception:  # noqa: BLE001 - the explainer only adds words: any failure means "no explanation"
        return None


def _explain(exc: BaseException, shell: Any) -> Explanation | None:
    from torchmagic.core.names import user_names

    entries: list[TracebackType] = []
    tb = exc.__traceback__
    while tb is not None:
        entries.append(tb)
        tb = tb.tb_next
    cells = getattr(getattr(shell, "compile", None), "_filename_map", {}) if shell is not None else {}
    cell_idx = None
    for i, entry in enumerate(entries):
        if _is_cell_file(entry.tb_frame.f_code.co_filename, cells):
            cell_idx = i
    if cell_idx is None:
        return None
    cell_tb = entries[cell_idx]
    filename = cell_tb.tb_frame.f_code.co_filename
    line = cell_tb.tb_lineno
    source = linecache.getline(filename, line).strip()
    names = user_names(shell.user_ns) if shell is not None else {}
    exc_type, message = type(exc).__name__, str(exc)
    cell_failure = _frame_failure(cell_tb, names)
    failure = None
    for entry in reversed(entries[cell_idx:]):
        failure = _frame_failure(entry, names)
        if failure is not None and any(o.kind == "tensor" for o in failure.operands):
            break
        failure = None
    if failure is None:
        failure = cell_failure
    if failure is None:
        hint = hint_for(exc_type, first_line(message), source)
        if not hint:
            return None
        return Explanation("hint", hint, exc_type, first_line(message), line=line, source=source)
    if cell_failure is not None and failure is not cell_failure:
        # The op ran inside a library call on this line (``lin(x)``): name its
        # unnamed first operand by the call's first argument as written.
        texts = cell_failure.extra.get("arg_texts", [])
        first = failure.operands[0] if failure.operands else None
        if first is not None and first.kind == "tensor" and id_named(first, names) is False and texts:
            failure.operands[0] = replace(first, label=texts[0])
        failure.expression = cell_failure.expression or failure.expression
    failure.line, failure.source = line, source
    return explain(failure, exc_type, message)


def show_explanation(exc: BaseException, shell: Any) -> None:
    """Show the explanation of ``exc`` under the cell, unless ``%%tensorinfo`` already did."""
    if was_explained(exc):
        return
    explanation = explain_exception(exc, shell)
    if explanation is None:
        return
    from torchmagic.core.report import show
    from torchmagic.errors.report import ErrorReport

    show(ErrorReport(explanation), shell)

"""What a torch callable is, as the function-level modes see it: its name, in-place, view, pointwise.

``TorchFunctionMode`` hands every recorder the callable (``torch.Tensor.add``,
``torch.nn.functional.linear``, a property getter for ``.T``...).  The trace,
the device watcher and the autograd watcher ask the same questions about it
(what to call it, does it write in place, may it return a view), so the
answers live here, computed once per callable and process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["FuncInfo", "func_info", "SKIP_OPS", "INPLACE_DUNDER", "MAYBE_VIEW", "VIEW_PROPS"]

# Calls made on the user's behalf by Python itself, not ops they wrote.
SKIP_OPS = frozenset(
    "__len__ __iter__ __repr__ __str__ __format__ __hash__ __bool__ __index__ __int__ "
    "__float__ __complex__ __array__ __array_wrap__ __contains__ __reduce_ex__ __deepcopy__ "
    "__dir__ __getstate__ __setstate__ __reversed__ __get__ __set__ __delete__ _set_grad_enabled".split()
)
# Property getters that are ops a learner writes (all views).
VIEW_PROPS = frozenset({"data", "T", "mT", "H", "mH", "real", "imag"})
# Ops that may return a view of their first input (checked on each new shape variant).
MAYBE_VIEW = frozenset(
    "view view_as reshape reshape_as __getitem__ transpose t permute squeeze unsqueeze expand "
    "expand_as narrow select unfold flatten unflatten split chunk unbind data detach as_strided "
    "diagonal movedim moveaxis swapaxes swapdims T mT H mH real imag contiguous to type float "
    "double half int long bool cpu cuda view_as_real view_as_complex tensor_split hsplit vsplit "
    "alias squeeze_ unsqueeze_ transpose_ t_ detach_".split()
)
_RESHAPE = frozenset({"view", "reshape"})
_DUNDER_ATEN = {
    "__add__": "add", "__radd__": "add", "__iadd__": "add_", "__sub__": "sub", "__rsub__": "sub",
    "__isub__": "sub_", "__mul__": "mul", "__rmul__": "mul", "__imul__": "mul_",
    "__truediv__": "div", "__rtruediv__": "div", "__itruediv__": "div_", "__div__": "div",
    "__floordiv__": "floor_divide", "__rfloordiv__": "floor_divide", "__mod__": "remainder",
    "__rmod__": "remainder", "__pow__": "pow", "__rpow__": "pow", "__ipow__": "pow_",
    "__and__": "bitwise_and", "__rand__": "bitwise_and", "__or__": "bitwise_or", "__ror__": "bitwise_or",
    "__xor__": "bitwise_xor", "__rxor__": "bitwise_xor", "__lshift__": "bitwise_left_shift",
    "__rshift__": "bitwise_right_shift", "__eq__": "eq", "__ne__": "ne", "__lt__": "lt", "__le__": "le",
    "__gt__": "gt", "__ge__": "ge", "__neg__": "neg", "__abs__": "abs", "__invert__": "bitwise_not",
}
INPLACE_DUNDER = frozenset({"__iadd__", "__isub__", "__imul__", "__itruediv__", "__ipow__", "__setitem__",
                             "__iand__", "__ior__", "__ixor__", "__ifloordiv__", "__imod__"})


class FuncInfo:
    """What we know about one torch callable, computed once."""

    __slots__ = ("name", "skip", "pointwise", "inplace", "maybe_view", "reshape")

    def __init__(self, name: str, skip: bool, pointwise: bool, inplace: bool) -> None:
        self.name = name
        self.skip = skip
        self.pointwise = pointwise
        self.inplace = inplace
        self.maybe_view = name in MAYBE_VIEW
        self.reshape = name in _RESHAPE


def _is_pointwise(name: str) -> bool:
    base = _DUNDER_ATEN.get(name, name)
    try:
        packet = getattr(torch.ops.aten, base)
        return any(torch.Tag.pointwise in getattr(packet, ov).tags for ov in packet.overloads())
    except Exception:  # noqa: BLE001 - any failure to read op tags means "not pointwise"
        return False


_FUNC_INFO: dict[Callable[..., Any], FuncInfo] = {}  # shared by all recorders: what a callable is never changes


def func_info(func: Callable[..., Any]) -> FuncInfo:
    """The :class:`FuncInfo` of ``func``, computed once per process (bounded cache)."""
    try:
        info = _FUNC_INFO.get(func)
    except TypeError:  # an unhashable callable
        return _func_info(func)
    if info is None:
        if len(_FUNC_INFO) >= 4096:
            _FUNC_INFO.clear()
        info = _FUNC_INFO[func] = _func_info(func)
    return info


def _func_info(func: Callable[..., Any]) -> FuncInfo:
    name = getattr(func, "__name__", None) or type(func).__name__
    if name == "__get__":  # a property getter: keep the few that are ops (.T, .data)
        prop = getattr(getattr(func, "__self__", None), "__name__", "")
        if prop in VIEW_PROPS:
            return FuncInfo(prop, False, False, False)
        return FuncInfo(prop or name, True, False, False)
    inplace = name in INPLACE_DUNDER or (name.endswith("_") and not name.endswith("__") and not name.startswith("_"))
    return FuncInfo(name, name in SKIP_OPS, _is_pointwise(name), inplace)

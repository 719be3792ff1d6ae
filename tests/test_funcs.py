"""What a torch callable is (core.funcs): the answers every function-level mode relies on."""

from __future__ import annotations

import torch

from torchmagic.core.funcs import func_info


def test_names_inplace_and_views() -> None:
    add = func_info(torch.Tensor.add)
    assert (add.name, add.inplace, add.pointwise, add.skip) == ("add", False, True, False)
    assert func_info(torch.Tensor.add_).inplace and func_info(torch.Tensor.__iadd__).inplace
    assert func_info(torch.Tensor.__setitem__).inplace
    assert not func_info(torch.Tensor.__add__).inplace and func_info(torch.Tensor.__add__).pointwise
    assert func_info(torch.Tensor.view).maybe_view and func_info(torch.Tensor.view).reshape
    assert not func_info(torch.matmul).maybe_view and not func_info(torch.matmul).pointwise


def test_python_protocol_calls_are_skipped_but_view_properties_are_ops() -> None:
    assert func_info(torch.Tensor.__repr__).skip and func_info(torch.Tensor.__len__).skip
    getter = torch.Tensor.T.__get__  # what a function mode receives for `x.T`
    info = func_info(getter)
    assert (info.name, info.skip, info.maybe_view) == ("T", False, True)
    other = func_info(torch.Tensor.shape.__get__)
    assert other.skip and other.name == "shape"


def test_answers_are_cached_per_callable_and_unhashable_callables_work() -> None:
    assert func_info(torch.Tensor.mul) is func_info(torch.Tensor.mul)

    class Unhashable:
        __hash__ = None  # type: ignore[assignment]
        __name__ = "mul_"

    info = func_info(Unhashable())  # type: ignore[arg-type]
    assert info.name == "mul_" and info.inplace

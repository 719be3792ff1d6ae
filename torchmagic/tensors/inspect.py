"""Collect the facts ``%tensorinfo`` shows, as plain report dataclasses.

One function per kind of object: tensors, NumPy arrays, modules and any
other Python value.  Nothing here formats for display (that is render.py)
and nothing here keeps a reference to the inspected object.
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torchmagic.core.meta import dtype_name, fmt_shape, rank_word, shape_of
from torchmagic.core.names import is_user_name
from torchmagic.core.text import exc_line
from torchmagic.i18n import N_, tr
from torchmagic.tensors import image, stats
from torchmagic.tensors.preview import preview, preview_label
from torchmagic.tensors.report import (
    ArrayReport,
    InfoReport,
    ItemReport,
    ModuleReport,
    ParamRow,
    TensorReport,
    ValueReport,
)

__all__ = ["InfoOptions", "inspect_one", "inspect_many", "sharing"]

MODULE_ROWS = 200  # parameter/buffer rows listed for one module


@dataclass
class InfoOptions:
    """What to compute: fields named like their trait (see :mod:`torchmagic.options`), and ``--image``."""

    stats_max_elements: int
    preview_items: int
    preview_max_elements: int
    precision: int
    histogram_bins: int
    image_max_frames: int
    image: bool = False


def inspect_many(
    items: Sequence[tuple[str, Any]], namespace: Mapping[str, Any], options: InfoOptions
) -> InfoReport:
    return InfoReport(items=[inspect_one(name, obj, namespace, options) for name, obj in items])


def inspect_one(name: str, obj: Any, namespace: Mapping[str, Any], options: InfoOptions) -> ItemReport:
    import torch

    from torchmagic.distributed.dtensor import is_dtensor

    if is_dtensor(obj):  # this rank's shard, plus the mesh, placements and drawing
        from torchmagic.distributed.dtensor import local_report

        return local_report(name, obj, lambda local: inspect_tensor(name, local, namespace, options))
    if isinstance(obj, torch.Tensor):
        return inspect_tensor(name, obj, namespace, options)
    if isinstance(obj, torch.nn.Module):
        return inspect_module(name, obj)
    if type(obj).__module__ == "numpy" and type(obj).__name__ == "ndarray":
        return inspect_array(name, obj, namespace, options)
    return inspect_value(name, obj)


def _grad_text(t: Any, precision: int) -> str | None:
    import torch

    if not t.is_leaf:  # reading .grad of a non-leaf only warns
        return None
    g = t.grad
    if g is None:
        return None
    text = f"{fmt_shape(tuple(g.shape))} {dtype_name(g.dtype)}"
    if g.device.type != "meta" and g.layout == torch.strided and g.numel():
        with torch.no_grad():
            norm = torch.linalg.vector_norm(g.detach().abs().double() if g.is_complex() else g.detach().double())
        text = tr("{grad}, norm {norm}", grad=text, norm=format(norm.item(), f".{precision}g"))
    return text


def _pinned(t: Any) -> bool | None:
    if t.device.type != "cpu":
        return None
    try:
        return bool(t.is_pinned())
    except Exception:  # noqa: BLE001 - exotic tensors and arrays: a missing fact, never a crash
        return False


def inspect_tensor(name: str, t: Any, namespace: Mapping[str, Any], options: InfoOptions) -> TensorReport:
    import torch

    nested = bool(getattr(t, "is_nested", False))
    strided = t.layout == torch.strided and not nested
    report = TensorReport(
        name=name,
        type_name=type(t).__name__,
        shape=shape_of(t),
        rank=t.dim(),
        rank_word=rank_word(t.dim()),
        dtype=dtype_name(t.dtype),
        device=str(t.device),
        layout=str(t.layout).removeprefix("torch."),
        requires_grad=bool(t.requires_grad),
        is_leaf=bool(t.is_leaf),
        grad_fn=type(t.grad_fn).__name__ if t.grad_fn is not None else None,
        grad=_grad_text(t, options.precision),
        strides=tuple(t.stride()) if strided else None,
        contiguous=bool(t.is_contiguous()) if strided else None,
        numel=int(t.numel()),
        nbytes=int(t.numel() * t.element_size()),
        element_size=int(t.element_size()),
        storage_offset=int(t.storage_offset()) if strided else None,
        pinned=_pinned(t),
    )
    if strided:
        report.sharing = sharing(name, t, namespace)
    reason = stats.skip_reason(t)
    if reason:
        report.notes.append(tr("Statistics skipped — {reason}.", reason=reason))
    else:
        try:
            report.stats = stats.compute_stats(t, options.stats_max_elements)
            uninitialised = stats.looks_uninitialised(report.stats)
            if uninitialised:
                report.notes.append(uninitialised)
            if t.dtype != torch.bool:
                report.histogram = stats.compute_histogram(t, options.histogram_bins, options.stats_max_elements)
            whole = t.numel() <= options.preview_max_elements
            report.preview = preview(t, options.preview_items, options.precision, options.preview_max_elements)
            report.preview_of = preview_label(name, t.dim(), whole)
        except Exception as exc:  # noqa: BLE001 - exotic tensors and arrays: a missing fact, never a crash
            report.notes.append(tr("Values could not be read: {error}", error=type(exc).__name__ + ": " + str(exc)))
    if options.image:
        pic = image.picture(t, options.image_max_frames)
        if isinstance(pic, str):
            report.notes.append(pic)
        else:
            report.picture = pic
    if nested:
        report.notes.append(tr("Nested tensor: -1 in the shape marks a ragged dimension."))
    if t.requires_grad and not t.is_leaf:
        report.notes.append(tr("Not a leaf: backward() will not fill its .grad (use retain_grad() to keep it)."))
    return report


def _tensor_span(t: Any) -> tuple[str, int, int] | None:
    try:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
    except Exception:  # noqa: BLE001 - exotic tensors and arrays: a missing fact, never a crash
        return None
    if not ptr:
        return None
    return str(t.device), ptr, ptr + storage.nbytes()


def _array_span(a: Any) -> tuple[str, int, int] | None:
    base = a
    while getattr(base, "base", None) is not None and hasattr(base.base, "__array_interface__"):
        base = base.base
    try:
        ptr = base.__array_interface__["data"][0]
    except Exception:  # noqa: BLE001 - exotic tensors and arrays: a missing fact, never a crash
        return None
    return "cpu", ptr, ptr + base.nbytes


def sharing(name: str, obj: Any, namespace: Mapping[str, Any]) -> list[str]:
    """Sentences naming every namespace tensor/array that shares memory with ``obj``."""
    import torch

    is_tensor = isinstance(obj, torch.Tensor)
    mine = _tensor_span(obj) if is_tensor else _array_span(obj)
    if mine is None:
        return []
    found: list[str] = []
    for other_name, other in namespace.items():
        if other is obj or not is_user_name(other_name) or other_name == name:
            continue
        if isinstance(other, torch.Tensor):
            span = _tensor_span(other)
            what = tr("tensor")
        elif type(other).__module__ == "numpy" and type(other).__name__ == "ndarray":
            span = _array_span(other)
            what = tr("NumPy array")
        else:
            continue
        if span is None or span[0] != mine[0] or span[1] >= mine[2] or mine[1] >= span[2]:
            continue
        both = is_tensor and isinstance(other, torch.Tensor)
        name_ = f"`{other_name}`"
        if both and obj._base is other:
            found.append(tr("a view of {what} {name} (changing one changes the other)", what=what, name=name_))
        elif both and other._base is obj:
            found.append(tr("{what} {name} is a view of it (changing one changes the other)", what=what, name=name_))
        elif both and obj._base is not None and obj._base is other._base:
            found.append(tr("a view of the same memory as {name} (changing one changes the other)", name=name_))
        else:
            found.append(tr("shares memory with {what} {name} (changing one changes the other)", what=what,
                            name=name_))
    return found


def inspect_array(name: str, a: Any, namespace: Mapping[str, Any], options: InfoOptions) -> ArrayReport:
    import torch

    shape = tuple(int(s) for s in a.shape)
    try:
        t = torch.from_numpy(a)
        from_numpy = tr("{call} gives a {shape} {dtype} tensor that shares this memory (no copy)",
                        call="torch.from_numpy(" + name + ")", shape=fmt_shape(shape), dtype=dtype_name(t.dtype))
        tensor_copy = tr("{call} copies it into new memory", call="torch.tensor(" + name + ")")
        prev = preview(t, options.preview_items, options.precision, options.preview_max_elements) if t.numel() else ""
        del t
    except Exception as exc:  # noqa: BLE001 - exotic tensors and arrays: a missing fact, never a crash
        from_numpy = tr("{call} fails: {error}", call="torch.from_numpy(" + name + ")", error=exc)
        tensor_copy = ""
        prev = ""
    return ArrayReport(name=name, shape=shape, dtype=str(a.dtype), nbytes=int(a.nbytes),
                       from_numpy=from_numpy, tensor_copy=tensor_copy,
                       sharing=sharing(name, a, namespace), preview=prev)


def inspect_value(name: str, value: Any) -> ValueReport:
    import torch

    text = reprlib.Repr()
    text.maxstring = text.maxother = 80
    text.maxlist = text.maxtuple = 8
    try:
        t = torch.tensor(value)
        shown = tr("{call} makes a {rank} of shape {shape}, dtype {dtype}", call="torch.tensor(" + name + ")",
                   rank=rank_word(t.dim()), shape=fmt_shape(tuple(t.shape)), dtype=dtype_name(t.dtype))
        ok = True
        del t
    except Exception as exc:  # noqa: BLE001 - exotic tensors and arrays: a missing fact, never a crash
        shown = tr("{call} fails: {error}", call="torch.tensor(" + name + ")", error=exc_line(exc))
        ok = False
    return ValueReport(name=name, type_name=type(value).__name__, value=text.repr(value), as_tensor=shown, ok=ok)


def inspect_module(name: str, module: Any) -> ModuleReport:
    rows: list[ParamRow] = []
    total = trainable = nbytes = tensors = 0
    devices: list[str] = []
    for kind, named in ((N_("parameter"), module.named_parameters()), (N_("buffer"), module.named_buffers())):
        for pname, p in named:
            size = int(p.numel() * p.element_size())
            total += int(p.numel()) if kind == "parameter" else 0
            tensors += 1 if kind == "parameter" else 0
            trainable += int(p.numel()) if kind == "parameter" and p.requires_grad else 0
            nbytes += size
            if str(p.device) not in devices:
                devices.append(str(p.device))
            if len(rows) < MODULE_ROWS:
                rows.append(ParamRow(name=pname, kind=kind, shape=tuple(int(s) for s in p.shape),
                                     dtype=dtype_name(p.dtype), device=str(p.device),
                                     requires_grad=bool(p.requires_grad), numel=int(p.numel()), nbytes=size))
    lines = repr(module).splitlines()
    children = len(list(module.children()))
    # One-line reprs (Linear(in_features=3, ...)) say it all; multi-line ones get a count.
    first = lines[0] if len(lines) == 1 else tr("{type} with {n} child modules", type=type(module).__name__,
                                                 n=children)
    return ModuleReport(name=name, type_name=type(module).__name__, rows=rows, total_params=total,
                        trainable_params=trainable, total_bytes=nbytes, devices=devices,
                        rows_shown=len(rows), summary=first[:120], param_tensors=tensors)


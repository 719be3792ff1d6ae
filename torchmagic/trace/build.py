"""Turn a finished recording into a :class:`TraceReport`, after the cell.

Names are resolved only now: a tensor the cell bound to ``y`` gets that
label if the weakref taken when the op ran still points at the object the
namespace holds; an unnamed intermediate is named by what made it
(``net.conv1 →``, ``relu →``).  Module calls get their paths (a module made
in the cell is named by the variable that holds it now), identical sibling
calls are folded (:mod:`torchmagic.trace.fold`), broadcast diagrams are
relabelled with the final names, and the annotated source is built from the
rows.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence

import torch
from torch import nn

from torchmagic.core.broadcast import align
from torchmagic.core.meta import dtype_name
from torchmagic.errors.report import Explanation, Operand
from torchmagic.trace.annotate import annotate
from torchmagic.trace.fold import fold
from torchmagic.trace.modules import ModuleTracker, Node, count_params, shapes_text
from torchmagic.trace.nans import Found
from torchmagic.trace.notes import source_notes
from torchmagic.trace.recorder import Recorder
from torchmagic.trace.report import ModuleCall, NanOrigin, OpRow, TraceReport, Variant
from torchmagic.trace.rows import Row

__all__ = ["finish", "module_paths"]

_MAKER_TEXT = 32  # a maker's own expression names an intermediate when it is at most this long


def module_paths(nodes: Sequence[Node], names_now: Callable[[nn.Module], str]) -> list[str]:
    """Each node's path: its parent's path and attribute, or the module's name before the cell or now."""
    paths: list[str] = []
    for node in nodes:  # parents come before their children
        if node.parent >= 0:
            path = f"{paths[node.parent]}.{node.attr or '<' + node.type + '>'}"
        else:
            module = node.ref()
            path = node.name or (names_now(module) if module is not None else "") or f"{node.type}()"
        paths.append(path)
    return paths


def _maker_label(maker: tuple[str, int], rows: Sequence[Row], paths: Sequence[str]) -> str:
    kind, index = maker
    if kind == "module":
        return f"{paths[index]} →"
    row = rows[index]
    text = row.inner or ("" if row.via else row.site.expression)
    return f"{text} →" if text and len(text) <= _MAKER_TEXT else f"{row.op} →"


def _final_input(
    op: Operand,
    ref: weakref.ref[torch.Tensor] | None,
    pre: str,
    maker: str,
    post: dict[int, str],
    i: int,
) -> Operand:
    if op.named or op.kind != "tensor":
        return op if op.label else op.relabel(f"arg{i}", op.named)
    t = ref() if ref is not None else None
    if t is not None and id(t) in post:
        return op.relabel(post[id(t)], True)
    if op.label:
        return op
    if pre:
        return op.relabel(pre, True)
    return op.relabel(maker or f"arg{i}", False)


def _final_output(op: Operand, ref: weakref.ref[torch.Tensor] | None, row: Row, post: dict[int, str]) -> Operand:
    if row.site.target and not row.via:
        return op
    t = ref() if ref is not None else None
    if t is not None and id(t) in post:
        return op.relabel(post[id(t)], True)
    return op


def _op_row(r: Row, lines: list[str], post: dict[int, str], paths: Sequence[str], rows: Sequence[Row]) -> OpRow:
    variants = []
    for var in r.variants.values():
        inputs = tuple(
            _final_input(op, ref, pre, _maker_label(maker, rows, paths) if maker else "", post, i)
            for i, (op, ref, pre, maker) in enumerate(var.inputs)
        )
        outputs = tuple(_final_output(op, ref, r, post) for op, ref in var.outputs)
        bc = var.broadcast
        if bc is not None:  # relabel the diagram with the final names
            labels = [o.label for o in inputs if o.kind in ("tensor", "scalar")]
            if len(labels) == len(bc.operands):
                bc = align([(lab, o.shape) for lab, o in zip(labels, bc.operands)])
        variants.append(Variant(inputs, outputs, var.count, var.effect, tuple(var.notes), bc))
    line = r.line
    return OpRow(
        index=r.index,
        line=line,
        source=lines[line - 1].strip() if 0 < line <= len(lines) else "",
        expression=r.site.expression,
        op=r.op,
        via=r.via,
        count=r.count,
        variants=variants,
        other_count=r.other,
        warnings=list(r.warnings),
        children=sorted(r.children.items(), key=lambda kv: -kv[1]),
        children_other=r.children_other,
        module=r.module,
        inner=r.inner,
    )


def _module_calls(nodes: Sequence[Node], paths: Sequence[str]) -> list[ModuleCall]:
    memo: dict[int, int] = {}
    calls = []
    for n in nodes:
        module = n.ref()
        calls.append(ModuleCall(
            index=n.index, path=paths[n.index], type=n.type, parent=n.parent, line=n.line, calls=n.count,
            inputs=shapes_text(n.inputs),
            outputs=n.outputs if isinstance(n.outputs, str) else shapes_text(n.outputs),
            params=count_params(module, memo) if module is not None else 0,
            seconds=n.seconds, items=list(n.items), shape_sets=max(1, len(n.shape_sets)), opaque=n.opaque,
        ))
    return calls


def finish(
    rec: Recorder,
    lines: list[str],
    post_names: dict[int, str],
    view: str = "table",
    error: Explanation | None = None,
    names_now: Callable[[nn.Module], str] | None = None,
) -> TraceReport:
    """Turn the recorder's rows into a :class:`TraceReport` (names resolved now, after the cell).

    ``post_names`` maps ids of the tensors the namespace holds now to their
    names; ``names_now`` names a module the cell made (:class:`~torchmagic.trace.modules.ModuleNames`).
    """
    nodes = rec.tracker.nodes if rec.tracker is not None else []
    paths = module_paths(nodes, names_now or (lambda m: ""))
    rows = [_op_row(r, lines, post_names, paths, rec.ordered) for r in rec.ordered]
    for index, times in rec.nans.carried.items():
        if isinstance(index, int) and 0 <= index < len(rows):
            rows[index].nonfinite = times
    nan = _nan_origin(rec.nan_found, rows, paths, rec.tracker) if rec.nan_found is not None else None
    tops = {r.index for r in rec.ordered if r.site.top}
    modules = _module_calls(nodes, paths)
    fold(modules, rows, rec.top)
    return TraceReport(
        rows=rows,
        total_ops=rec.total,
        distinct_ops=len({r.op for r in rows}),
        dropped_ops=rec.dropped,
        seconds=rec.seconds,
        deep=rec.deep,
        deep_note=rec.deep_note,
        view=view,
        annotated=annotate(lines, rows, tops),
        error=error,
        max_rows=rec.options.trace_max_rows,
        default_dtype=dtype_name(torch.get_default_dtype()),
        modules=modules,
        order=list(rec.top),
        nan=nan,
        notes=source_notes("\n".join(lines[1:]), first_line=2),
    )


def _nan_origin(
    found: Found, rows: list[OpRow], paths: Sequence[str], tracker: ModuleTracker | None
) -> NanOrigin | None:
    """The report's NaN line: the origin op's row, what it made and why (or which inputs held them already)."""
    if not isinstance(found.tag, int) or not 0 <= found.tag < len(rows):
        return None
    row = rows[found.tag]
    row.nan_origin = True
    var = row.variants[0] if row.variants else None
    came_in: tuple[str, ...] = ()
    if found.came_in and var is not None:
        came_in = tuple(o.label for o in var.inputs if o.kind == "tensor")[:3]
    where = ""
    if row.module >= 0 and tracker is not None:
        where = f"{paths[row.module]} ({tracker.nodes[row.module].type})"
    note = found.note()
    return NanOrigin(row.line, row.source, row.inner or row.expression, row.op, found.made(), found.why,
                     came_in, where, note)

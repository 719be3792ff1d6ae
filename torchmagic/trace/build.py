"""Turn a finished recording into a :class:`TraceReport`, after the cell.

Names are resolved only now: a tensor the cell bound to ``y`` gets that
label if the weakref taken when the op ran still points at the object the
namespace holds.  Broadcast diagrams are relabelled with the final names,
and the annotated source is built from the rows.
"""

from __future__ import annotations

import weakref
from dataclasses import replace

import torch

from torchmagic.core.broadcast import align
from torchmagic.core.meta import dtype_name
from torchmagic.errors.report import Explanation, Operand
from torchmagic.trace.annotate import annotate
from torchmagic.trace.recorder import Recorder
from torchmagic.trace.report import OpRow, TraceReport, Variant
from torchmagic.trace.rows import Row

__all__ = ["finish"]


def _final_input(op: Operand, ref: weakref.ref[torch.Tensor] | None, pre: str, post: dict[int, str], i: int) -> Operand:
    if op.named or op.kind != "tensor":
        return op if op.label else replace(op, label=f"arg{i}")
    t = ref() if ref is not None else None
    if t is not None and id(t) in post:
        return replace(op, label=post[id(t)], named=True)
    if op.label:
        return op
    return replace(op, label=pre or f"arg{i}", named=bool(pre))


def _final_output(op: Operand, ref: weakref.ref[torch.Tensor] | None, row: Row, post: dict[int, str]) -> Operand:
    if row.site.target and not row.via:
        return op
    t = ref() if ref is not None else None
    if t is not None and id(t) in post:
        return replace(op, label=post[id(t)], named=True)
    return op


def finish(
    rec: Recorder,
    lines: list[str],
    post_names: dict[int, str],
    view: str = "table",
    error: Explanation | None = None,
) -> TraceReport:
    """Turn the recorder's rows into a :class:`TraceReport` (names resolved now, after the cell)."""
    rows: list[OpRow] = []
    tops: set[int] = set()
    for r in rec.ordered:
        variants = []
        for var in r.variants.values():
            inputs = tuple(_final_input(op, ref, pre, post_names, i) for i, (op, ref, pre) in enumerate(var.inputs))
            outputs = tuple(_final_output(op, ref, r, post_names) for op, ref in var.outputs)
            bc = var.broadcast
            if bc is not None:  # relabel the diagram with the final names
                labels = [o.label for o in inputs if o.kind in ("tensor", "scalar")]
                if len(labels) == len(bc.operands):
                    bc = align([(lab, o.shape) for lab, o in zip(labels, bc.operands)])
            variants.append(Variant(inputs, outputs, var.count, var.effect, tuple(var.notes), bc))
        line = r.line
        rows.append(
            OpRow(
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
            )
        )
        if r.site.top:
            tops.add(r.index)
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
    )

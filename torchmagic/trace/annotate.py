"""The annotated-source view: the cell's own lines with the shapes they produced.

``y = x @ w.T   # (4, 5)`` is easy to read and to copy back into the
notebook.  Each line gets the output shapes of its statement-level ops (the
op that is a statement's whole expression, e.g. the matmul in ``y = x @ w.T``),
falling back to the line's last op; dtype and device are added where they
differ from the op's first input, loops show every shape seen and a count.
"""

from __future__ import annotations

from torchmagic.core.meta import fmt_shape
from torchmagic.trace.report import AnnotatedLine, OpRow, Variant

__all__ = ["annotate"]

_MAX_SHAPES = 3


def _out_text(var: Variant) -> str:
    parts = []
    first_in = next((o for o in var.inputs if o.kind == "tensor"), None)
    for out in var.outputs:
        text = fmt_shape(out.shape or ())
        if first_in is None or out.dtype != first_in.dtype:
            text += f" {out.dtype}"
        if out.device != "cpu" and (first_in is None or out.device != first_in.device):
            text += f" {out.device}"
        parts.append(text)
    return ", ".join(parts)


def _row_comment(row: OpRow) -> str:
    texts = list(dict.fromkeys(_out_text(v) for v in row.variants if v.outputs))
    if not texts:
        return ""
    text = " | ".join(texts[:_MAX_SHAPES]) + (" | …" if len(texts) > _MAX_SHAPES or row.other_count else "")
    if row.count > 1:
        text += f"  ×{row.count}"
    return text


def annotate(lines: list[str], rows: list[OpRow], tops: set[int], first_line: int = 2) -> list[AnnotatedLine]:
    """``lines`` are the file's lines (line 1 the magic); ``tops`` the indexes of statement-level rows."""
    by_line: dict[int, list[OpRow]] = {}
    for row in rows:
        by_line.setdefault(row.line, []).append(row)
    out: list[AnnotatedLine] = []
    for lineno in range(first_line, len(lines) + 1):
        text = lines[lineno - 1].rstrip()
        here = by_line.get(lineno, [])
        chosen = [r for r in here if r.index in tops and not r.via]
        via = [r for r in here if r.via]
        if via:
            chosen.append(via[-1])  # a library call's last op made its result
        if not chosen and here:
            chosen = [here[-1]]
        comment = "; ".join(c for c in (_row_comment(r) for r in chosen) if c)
        out.append(AnnotatedLine(lineno, text, comment))
    return out

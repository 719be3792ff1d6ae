"""A tensor's values as text: small tensors whole, with brackets that show the nesting.

Up to ``whole`` elements (``TorchMagics.preview_max_elements``) the tensor
is shown entire, at any rank, nested like ``print`` nests it: the lesson of
``r = o.unsqueeze(1)`` is exactly the new pair of brackets.  Larger tensors
show the first and last ``items // 2`` values along each dimension of their
first matrix (the shape tells the rest).  Numbers are right-aligned in
columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["preview", "preview_label", "fmt_value"]


def fmt_value(value: object, precision: int) -> str:
    """One value as the preview writes it (floats keep a dot, as torch prints them: ``1.``)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        text = f"{value:.{precision}g}"
        return text if any(c in text for c in ".eninf") else text + "."
    if isinstance(value, complex):
        return f"{value.real:.{precision}g}{value.imag:+.{precision}g}j"
    return str(value)


def preview_label(name: str, rank: int, whole: bool = False) -> str:
    """What :func:`preview` shows: the whole tensor (``name``), or its first matrix for rank > 2."""
    if whole or rank <= 2:
        return name
    return f"{name}[{', '.join(['0'] * (rank - 2))}, :, :]"


def _kept(size: int, k: int) -> list[int | None]:
    """Indices shown along a dimension of ``size``: all, or the first and last ``k`` around a gap (``None``)."""
    if size > 2 * k:
        return [*range(k), None, *range(size - k, size)]
    return list(range(size))


def preview(t: torch.Tensor, items: int, precision: int, whole: int = 0) -> str:
    """The values of ``t`` nested like a list: whole up to ``whole`` elements, else head and tail."""
    import torch

    k = max(items // 2, 1)
    with torch.no_grad():
        x = t.detach()
        if t.numel() > whole:
            while x.dim() > 2:
                x = x[0]
        keep: list[list[int | None]] = []
        for size in x.shape:
            idx: list[int | None] = _kept(int(size), k) if t.numel() > whole else [*range(int(size))]
            if len(idx) < size:
                real = [i for i in idx if i is not None]
                x = x.index_select(len(keep), torch.tensor(real, dtype=torch.long, device=x.device))
            keep.append(idx)
        values = x.tolist()
    texts = _texts(values, len(keep), precision)
    width = max((len(s) for s in texts), default=0)
    cells = iter(s.rjust(width) for s in texts)
    rank = len(keep)

    def render(v: Any, depth: int) -> str:
        if depth == rank:
            return next(cells)
        parts: list[str] = []
        pos = 0
        for i in keep[depth]:
            if i is None:
                parts.append("…")
            else:
                parts.append(render(v[pos], depth + 1))
                pos += 1
        # the innermost values on one line; a blank line between the blocks of rank 3 and up, as print does
        blank = "\n" if rank - depth >= 3 else ""
        sep = ", " if depth == rank - 1 else ",\n" + blank + " " * (depth + 1)
        return "[" + sep.join(parts) + "]"

    return render(values, 0)


def _texts(values: Any, rank: int, precision: int) -> list[str]:
    """Every shown value formatted, in the order :func:`preview` renders them."""
    if rank == 0:
        return [fmt_value(values, precision)]
    out: list[str] = []
    for v in values:
        out.extend(_texts(v, rank - 1, precision))
    return out

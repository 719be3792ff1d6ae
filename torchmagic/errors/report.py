"""What an error explanation is made of: the operands of the failing op, and the explanation.

Plain data (str, int, tuples), shared by the any-cell explainer
(:mod:`torchmagic.errors.frames`), the trace of ``%%tensorinfo`` (whose rows
list operands too) and the ``%%device`` mismatch explanations' renderer.
"""

from __future__ import annotations

from dataclasses import dataclass

from torchmagic.core.broadcast import Alignment
from torchmagic.core.meta import fmt_shape
from torchmagic.core.report import Report

__all__ = ["Operand", "Explanation", "ErrorReport"]


@dataclass(frozen=True)
class Operand:
    """One input or output of an op, as the user would name it."""

    label: str  # variable name, sub-expression text, or the value for scalars
    kind: str  # "tensor", "scalar" (Python number), "tensors" (a list of them), "value"
    shape: tuple[int, ...] | None = None
    dtype: str = ""
    device: str = ""
    named: bool = False  # label is a variable name (not an expression)
    requires_grad: bool = False
    contiguous: bool = True  # its elements lie in memory in row-major order (``view`` needs that)

    def relabel(self, label: str, named: bool) -> Operand:
        """The same operand under another label (cheaper than ``dataclasses.replace``: reports make many)."""
        return Operand(label, self.kind, self.shape, self.dtype, self.device, named, self.requires_grad,
                       self.contiguous)

    def short(self) -> str:
        """``x (2, 3) float32`` (device added when not the CPU)."""
        if self.kind == "tensor" and self.shape is not None:
            text = f"{fmt_shape(self.shape)} {self.dtype}".rstrip()
            if self.device and self.device != "cpu":
                text += f" {self.device}"
            return text
        if self.kind == "scalar":
            return f"scalar {self.dtype}".rstrip()
        return self.kind


@dataclass
class Explanation:
    """Why a line failed, in terms of the operands the user wrote."""

    kind: str  # broadcast, matmul, linear, view, cat, stack, device, dtype, index, hint, op
    title: str  # the one-line explanation
    exc_type: str
    message: str  # the exception's first line
    line: int | None = None
    source: str = ""
    expression: str = ""
    op: str = ""
    operands: tuple[Operand, ...] = ()
    details: tuple[str, ...] = ()
    broadcast: Alignment | None = None
    hint: str = ""


@dataclass
class ErrorReport(Report):
    """The explanation shown under any failing cell (default-on explainer)."""

    _renderer = "torchmagic.errors.render"

    explanation: Explanation

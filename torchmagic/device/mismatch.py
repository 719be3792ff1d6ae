"""Explaining "tensors on different devices" errors with each operand's device.

The error torch raises names two devices but not the tensors.  When a
user-level call fails inside a ``%%device`` cell we look at its tensor
operands: if they live on more than one device (or the message is one of
torch's device-mismatch messages), we keep a :class:`Mismatch` with every
operand's name, shape and device and a hint in a learner's terms.  The user's
exception itself is re-raised unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from torchmagic.core.meta import dtype_name, fmt_shape, shape_of
from torchmagic.core.names import user_names
from torchmagic.core.text import first_line
from torchmagic.device.report import Mismatch, Operand
from torchmagic.i18n import tr

if TYPE_CHECKING:
    import torch

__all__ = ["is_mismatch_message", "tensor_operands", "explain"]

_PATTERNS = (
    r"Expected all tensors to be on the same device",
    r"is not on the expected device",
    r"Expected .* to be on .* device",
    r"should be the same or input should be a MKLDNN tensor",
    r"Input type \(.*\) and weight type \(.*\) should be the same",
    r"indices should be either on cpu or on the same device",
    r"to be on the same device",
    r"device mismatch",
)
_RE = re.compile("|".join(_PATTERNS), re.IGNORECASE)


def is_mismatch_message(message: str) -> bool:
    """True for torch's messages about operands on different devices."""
    return bool(_RE.search(message))


def tensor_operands(args: Iterable[Any], kwargs: Mapping[str, Any] | None) -> list[tuple[str, torch.Tensor]]:
    """``(role, tensor)`` for tensors among a call's arguments (one level into lists)."""
    import torch

    found: list[tuple[str, torch.Tensor]] = []
    values = [(f"argument {i + 1}", a) for i, a in enumerate(args)]
    values += [(f"{k}=", v) for k, v in (kwargs or {}).items()]
    for role, value in values:
        if isinstance(value, torch.Tensor):
            found.append((role, value))
        elif isinstance(value, (list, tuple)):
            for j, item in enumerate(value[:16]):
                if isinstance(item, torch.Tensor):
                    found.append((f"{role}[{j}]", item))
    return found


def _devices(operands: list[tuple[str, torch.Tensor]]) -> set[str]:
    # 0-dim CPU tensors mix with any device (torch treats them like Python numbers)
    return {str(t.device) for _, t in operands if not (t.device.type == "cpu" and t.dim() == 0)}


def explain(
    exc: BaseException,
    operands: list[tuple[str, torch.Tensor]],
    op: str,
    line: int,
    source: str,
    target: str,
    namespace: Mapping[str, Any] | None,
) -> Mismatch | None:
    """A :class:`Mismatch` if ``exc`` is about devices, else ``None``."""
    message = first_line(str(exc)) or type(exc).__name__
    if not operands or not (is_mismatch_message(message) or len(_devices(operands)) > 1):
        return None
    names = user_names(namespace) if namespace is not None else {}
    ops = [
        Operand(
            name=names.get(id(t), role),
            shape=shape_of(t),
            dtype=dtype_name(t.dtype),
            device=str(t.device),
        )
        for role, t in operands
    ]
    return Mismatch(line=line, source=source, op=op, message=message, operands=ops, hint=hint(ops, target))


def _same(device: str, target: str) -> bool:
    return device == target or (device.split(":")[0] == target and device.endswith(":0"))


def hint(operands: list[Operand], target: str) -> str:
    """What to do, naming the operands that are not on the cell's device."""
    away = [o for o in operands if not _same(o.device, target)]
    if not away:
        devices = sorted({o.device for o in operands})
        return tr("The operands live on {devices}: move them to one device with .to(...).",
                  devices=", ".join(devices))
    listed = tr(", ").join(tr("{name} {shape} is on {device}", name=o.name, shape=fmt_shape(o.shape), device=o.device)
                           for o in away)
    first = away[0].name
    move = f"{first}.to('{target}')" if first.replace(".", "_").isidentifier() else f".to('{target}')"
    return tr(
        "{listed} but this cell runs on {target}. %%device only changes where new tensors are created; tensors "
        "from earlier cells or made with an explicit device= keep theirs. Move it with {move} or create it "
        "inside the cell.", listed=listed, target=target, move=move,
    )

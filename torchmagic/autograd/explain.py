"""Autograd's error messages, said in plain words with the user's tensor names.

Pure functions: they get the error text plus what the collector found out
(which tensor ``backward()`` was called on, which tensors match the shape and
version in the message) and return an :class:`Explanation`.  The original
exception is re-raised unchanged by the magic; this only adds understanding.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from torchmagic.autograd.report import Explanation
from torchmagic.core.text import first_line
from torchmagic.errors.advice import advice
from torchmagic.i18n import tr

__all__ = ["explain", "parse_inplace"]

_INPLACE_RE = re.compile(
    r"\[(?P<type>[\w.]+) \[(?P<shape>[\d, ]*)\]\](?:, which is output (?P<out>\d+) of "
    r"(?P<op>\w+),)? is at version (?P<now>\d+); expected version (?P<then>\d+)"
)


def parse_inplace(message: str) -> dict[str, str] | None:
    """Fields of autograd's in-place error: type, shape, op, now, then (None if not one)."""
    m = _INPLACE_RE.search(message)
    if m is None:
        return None
    return {k: (v or "") for k, v in m.groupdict().items()}


def _names(names: Sequence[str]) -> str:
    quoted = [f"`{n}`" for n in names]
    if len(quoted) <= 1:
        return "".join(quoted)
    return tr("{names} or {last}", names=", ".join(quoted[:-1]), last=quoted[-1])


def explain(message: str, root: str = "", suspects: Sequence[str] = (), saved_by: str = "") -> Explanation | None:
    """An explanation of ``message`` (the exception text), or None if it is not autograd's."""
    first = first_line(message)
    root_txt = f"`{root}`" if root else tr("the tensor")
    fix = advice("RuntimeError", message, tensor=root_txt, code=root)  # the one wording of the advice table

    def made(kind: str, plain: str, tensors: Sequence[str] = ()) -> Explanation:
        return Explanation(kind=kind, error=first, plain=plain, fix=fix, tensors=tuple(tensors))

    rooted = (root,) if root else ()
    if "backward through the graph a second time" in message:
        if saved_by:
            plain = tr("{root}.backward() needs the intermediate values autograd saved while {root} was computed "
                       "(for {saved_by}). The first backward() through this graph freed them to save memory, so a "
                       "second backward() through the same graph has nothing to work with.",
                       root=root_txt, saved_by=saved_by)
        else:
            plain = tr("{root}.backward() needs the intermediate values autograd saved while {root} was computed. "
                       "The first backward() through this graph freed them to save memory, so a second backward() "
                       "through the same graph has nothing to work with.", root=root_txt)
        return made("second-backward", plain, rooted)
    info = parse_inplace(message)
    if info is not None or "modified by an inplace operation" in message:
        shape = f"({info['shape']})" if info and info["shape"] else ""
        op = info["op"] if info and info["op"] else ""
        now, then = (info["now"], info["then"]) if info else ("?", "?")
        who = _names(suspects) if suspects else tr("a tensor of shape {shape}", shape=shape or "?")
        made_by = tr(" (it is the output of {op})", op=op) if op else ""
        return made("inplace", tr(
            "Autograd saved {who}{made_by} during the forward pass because it needs its "
            "value to compute gradients. Afterwards the tensor was changed in place "
            "(e.g. `+=`, `.add_()`, `x[0] = ...`, `relu_()`): its version counter went from "
            "{then} to {now}. The saved value is gone, so backward() refuses to compute a "
            "wrong gradient.", who=who, made_by=made_by, then=then, now=now
        ), suspects)
    if "does not require grad and does not have a grad_fn" in message:
        return made("no-grad", tr(
            "{root} is not connected to any tensor with requires_grad=True: it was "
            "computed under torch.no_grad() / inference_mode(), from .detach()ed tensors, "
            "or from tensors that never required grad. There is no graph to go back through.", root=root_txt
        ), rooted)
    if "grad can be implicitly created only for scalar outputs" in message:
        return made("non-scalar", tr(
            "{root} has more than one element, so backward() does not know how to "
            "weigh them: it computes v·J (vector–Jacobian product) and needs the vector v.", root=root_txt
        ), rooted)
    if "leaf Variable that requires grad is being used in an in-place operation" in message:
        return made("leaf-inplace", tr(
            "A leaf tensor with requires_grad=True (a parameter) was changed in place while "
            "autograd was recording; its gradient would then be meaningless."
        ))
    return None

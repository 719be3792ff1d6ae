"""The warnings of an ``%%autograd`` report, written from what the recorders saw.

Gradient accumulation is said once per cell, with the numbers: for a loop,
"4 parameters accumulated over 19 steps: ``opt.zero_grad()`` missing in the
loop at line 5"; for a single backward, each leaf's gradient before, what
this backward added, and after.  Non-finite gradients name the leaves and the
backward node where the NaN or inf appeared.  Pure text from plain data,
apart from looking up in the namespace which model or optimizer to name in
the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torchmagic.autograd.log import Accumulation, WatchLog
from torchmagic.autograd.report import LoopSummary, Note
from torchmagic.autograd.site import CellSite

__all__ = ["accumulation_notes", "nonfinite_notes"]

_PER_LEAF = 3  # up to this many accumulated leaves get a note each, with their values


def _listed(names: list[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _zeroing(names: list[str], loop: LoopSummary | None, ns: Mapping[str, Any]) -> str:
    """The call that would have zeroed these leaves: the optimizer's, the model's, or ``.grad = None``."""
    if loop is not None and loop.optimizers:
        return f"{loop.optimizers[0]}.zero_grad()"
    tops = {name.split(".", 1)[0] for name in names if "." in name}
    if len(tops) == 1:
        top = tops.pop()
        if hasattr(ns.get(top), "zero_grad"):
            return f"{top}.zero_grad()"
    return f"{names[0]}.grad = None" if names else "zero_grad()"


def accumulation_notes(log: WatchLog, leaf_names: Mapping[int, str], loop: LoopSummary | None,
                       site: CellSite, ns: Mapping[str, Any]) -> list[Note]:
    """One warning for a loop that never zeroed; else one per leaf (few) or one for all (many)."""
    entries = [(a.name or leaf_names.get(key, "") or "a leaf", a) for key, a in log.accumulated.items()]
    if not entries:
        return []
    names = [name for name, _ in entries]
    zero = _zeroing(names, loop, ns)
    if loop is not None:
        steps = max(a.steps for _, a in entries)
        where = f"the loop at line {loop.loop_line}" if loop.loop_line else f"the cell before line {loop.line}"
        count = f"{len(entries)} parameter{'s' if len(entries) != 1 else ''}"
        return [Note(
            kind="accumulated", line=loop.line, subject=names[0], count=steps,
            message=(f"{count} accumulated over {steps} step{'s' if steps != 1 else ''}: `{zero}` missing in "
                     f"{where}. Each backward() added its gradient to the one before ({_listed(names)}), "
                     "so every update used the sum of all gradients so far."),
            fix=f"Call {zero} at the start of each step, before loss.backward(). Skip this if "
                "accumulating on purpose.",
        )]
    if len(entries) > _PER_LEAF:
        previous = entries[0][1].previous or "an earlier backward"
        return [Note(
            kind="accumulated", line=entries[0][1].line, subject=names[0],
            message=(f"{len(entries)} gradients accumulated ({_listed(names)}): this backward() added onto "
                     f"the gradients left by {previous}, which were not zeroed."),
            fix=f"Zero gradients before each backward(): {zero}. Skip this if accumulating on purpose.",
        )]
    return [_leaf_note(name, a, zero) for name, a in entries]


def _leaf_note(name: str, a: Accumulation, zero: str) -> Note:
    source = f"from {a.previous}" if a.previous else "already (from an earlier backward or set by hand)"
    if a.values is None:
        message = (f"{name}.grad accumulated: this backward() added onto the gradient {source}, "
                   "which was not zeroed (values are recorded for the first calls only).")
    else:
        before, added, after = a.values
        message = (f"{name}.grad accumulated: it held {before.text} {source} and was not zeroed, "
                   f"so this backward() added {added.text} to it and {name}.grad is now {after.text}.")
    return Note(
        kind="accumulated", line=a.line, subject=name, message=message, count=a.steps,
        fix=(f"Zero gradients before each backward(): optimizer.zero_grad() or model.zero_grad(), "
             f"or {name}.grad = None{'' if zero.endswith('= None') else f' ({zero} here)'}. "
             "Skip this if accumulating on purpose."),
    )


def nonfinite_notes(log: WatchLog) -> list[Note]:
    """One warning per backward call whose gradients hold NaN or inf (the first few calls)."""
    out: list[Note] = []
    for bad in log.nonfinite[:3]:
        where = ""
        if bad.origin and bad.inside:
            where = (f" It appeared inside {bad.inside}: the gradient that reached its output ({bad.origin}) "
                     "was finite, the one it passed on was not.")
        elif bad.origin:
            made = f" (the backward of {', '.join(bad.origin_names)})" if bad.origin_names else ""
            where = (f" It appeared in {bad.origin}{made}: the gradient that reached it was finite, "
                     "the one it passed on was not.")
        elif bad.root:
            where = f" The gradient given to backward() for {bad.root} was already not finite."
        out.append(Note(
            kind="nonfinite", line=bad.line, subject=bad.leaves[0].split(":")[0],
            message=(f"Non-finite gradient after the backward() at line {bad.line}: "
                     f"{_listed(list(bad.leaves), 3).replace(', ', '; ')}.{where}"),
            fix=("Look at that op's inputs: sqrt/log/pow at 0 or below, division by 0, or an overflow "
                 "produce inf/NaN derivatives. Clamp the input (x.clamp_min(1e-12)), add an epsilon, or "
                 "use a stable form (torch.logsumexp, F.log_softmax)."),
        ))
    return out

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
from torchmagic.i18n import tr, trn

__all__ = ["accumulation_notes", "nonfinite_notes"]

_PER_LEAF = 3  # up to this many accumulated leaves get a note each, with their values


def _listed(names: list[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return tr("{names} and {n} more", names=shown, n=len(names) - limit) if len(names) > limit else shown


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
    entries = [(a.name or leaf_names.get(key, "") or tr("a leaf"), a) for key, a in log.accumulated.items()]
    if not entries:
        return []
    names = [name for name, _ in entries]
    zero = _zeroing(names, loop, ns)
    if loop is not None:
        steps = max(a.steps for _, a in entries)
        where = (tr("the loop at line {line}", line=loop.loop_line) if loop.loop_line
                 else tr("the cell before line {line}", line=loop.line))
        count = trn("{n} parameter", "{n} parameters", len(entries))
        over = trn("{count} accumulated over {n} step", "{count} accumulated over {n} steps", steps, count=count)
        return [Note(
            kind="accumulated", line=loop.line, subject=names[0], count=steps,
            message=tr("{accumulated}: `{zero}` missing in {where}. Each backward() added its gradient to the one "
                       "before ({names}), so every update used the sum of all gradients so far.",
                       accumulated=over, zero=zero, where=where, names=_listed(names)),
            fix=tr("Call {zero} at the start of each step, before loss.backward(). Skip this if "
                   "accumulating on purpose.", zero=zero),
        )]
    if len(entries) > _PER_LEAF:
        previous = entries[0][1].previous or tr("an earlier backward")
        return [Note(
            kind="accumulated", line=entries[0][1].line, subject=names[0],
            message=tr("{n} gradients accumulated ({names}): this backward() added onto "
                       "the gradients left by {previous}, which were not zeroed.",
                       n=len(entries), names=_listed(names), previous=previous),
            fix=tr("Zero gradients before each backward(): {zero}. Skip this if accumulating on purpose.", zero=zero),
        )]
    return [_leaf_note(name, a, zero) for name, a in entries]


def _leaf_note(name: str, a: Accumulation, zero: str) -> Note:
    source = (tr("from {previous}", previous=a.previous) if a.previous
              else tr("already (from an earlier backward or set by hand)"))
    if a.values is None:
        message = tr("{name}.grad accumulated: this backward() added onto the gradient {source}, "
                     "which was not zeroed (values are recorded for the first calls only).", name=name, source=source)
    else:
        before, added, after = a.values
        message = tr("{name}.grad accumulated: it held {before} {source} and was not zeroed, "
                     "so this backward() added {added} to it and {name}.grad is now {after}.",
                     name=name, before=before.text, source=source, added=added.text, after=after.text)
    if zero.endswith("= None"):
        fix = tr("Zero gradients before each backward(): optimizer.zero_grad() or model.zero_grad(), "
                 "or {name}.grad = None. Skip this if accumulating on purpose.", name=name)
    else:
        fix = tr("Zero gradients before each backward(): optimizer.zero_grad() or model.zero_grad(), "
                 "or {name}.grad = None ({zero} here). Skip this if accumulating on purpose.", name=name, zero=zero)
    return Note(kind="accumulated", line=a.line, subject=name, message=message, count=a.steps, fix=fix)


def nonfinite_notes(log: WatchLog) -> list[Note]:
    """One warning per backward call whose gradients hold NaN or inf (the first few calls)."""
    out: list[Note] = []
    for bad in log.nonfinite[:3]:
        where = ""
        if bad.origin and bad.inside:
            where = tr(" It appeared inside {module}: the gradient that reached its output ({node}) "
                       "was finite, the one it passed on was not.", module=bad.inside, node=bad.origin)
        elif bad.origin and bad.origin_names:
            where = tr(" It appeared in {node} (the backward of {names}): the gradient that reached it was finite, "
                       "the one it passed on was not.", node=bad.origin, names=", ".join(bad.origin_names))
        elif bad.origin:
            where = tr(" It appeared in {node}: the gradient that reached it was finite, "
                       "the one it passed on was not.", node=bad.origin)
        elif bad.root:
            where = tr(" The gradient given to backward() for {root} was already not finite.", root=bad.root)
        out.append(Note(
            kind="nonfinite", line=bad.line, subject=bad.leaves[0].split(":")[0],
            message=tr("Non-finite gradient after the backward() at line {line}: {leaves}.{where}", line=bad.line,
                       leaves=_listed(list(bad.leaves), 3).replace(", ", "; "), where=where),
            fix=tr("Look at that op's inputs: sqrt/log/pow at 0 or below, division by 0, or an overflow "
                   "produce inf/NaN derivatives. Clamp the input (x.clamp_min(1e-12)), add an epsilon, or "
                   "use a stable form (torch.logsumexp, F.log_softmax)."),
        ))
    return out

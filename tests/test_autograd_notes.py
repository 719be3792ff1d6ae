"""The report's warnings: accumulation said once with its numbers, non-finite gradients with their origin."""

from __future__ import annotations

from typing import Any

from torchmagic.autograd.log import Accumulation, NonFinite, WatchLog
from torchmagic.autograd.notes import accumulation_notes, nonfinite_notes
from torchmagic.autograd.report import LoopSummary
from torchmagic.autograd.site import CellSite
from torchmagic.autograd.values import Values

SITE = CellSite("<cell>", ["# %%autograd", "for i in range(5):", "    loss.backward()"], {})


def _loop(optimizers: tuple[str, ...] = ("opt",)) -> LoopSummary:
    return LoopSummary(steps=20, line=5, loop_line=3, loop_source="for step in range(20):", root="loss",
                       losses=(), loss_steps=(), optimizers=optimizers)


def _log(*names: str, steps: int = 19, values: Any = None) -> WatchLog:
    log = WatchLog()
    for k, name in enumerate(names):
        log.accumulated[k] = Accumulation(name, 5, 2, steps=steps,
                                          previous="the backward() at line 5 of this cell", values=values)
    return log


def test_a_loop_gets_one_counted_note() -> None:
    (note,) = accumulation_notes(_log("w", "b", "m.0.weight", "m.0.bias"), {}, _loop(), SITE, {})
    assert note.message.startswith(
        "4 parameters accumulated over 19 steps: `opt.zero_grad()` missing in the loop at line 3.")
    assert note.count == 19 and note.fix.startswith("Call opt.zero_grad() at the start of each step")
    (plain,) = accumulation_notes(_log("m.0.weight"), {}, _loop(optimizers=()), SITE, {"m": object()})
    assert "`m.0.weight.grad = None` missing" in plain.message  # no optimizer and `m` has no zero_grad


def test_few_leaves_get_their_values_many_get_one_line() -> None:
    v = (Values("[3, 4]"), Values("[3, 4]"), Values("[6, 8]"))
    (note,) = accumulation_notes(_log("w", steps=1, values=v), {}, None, SITE, {})
    assert note.message == (
        "w.grad accumulated: it held [3, 4] from the backward() at line 5 of this cell and was not zeroed, "
        "so this backward() added [3, 4] to it and w.grad is now [6, 8].")
    many = accumulation_notes(_log("a", "b", "c", "d", "e", steps=1), {}, None, SITE, {})
    assert len(many) == 1 and many[0].message.startswith("5 gradients accumulated (a, b, c, d and 1 more)")
    named = accumulation_notes(_log("", steps=1), {0: "late"}, None, SITE, {})
    assert named[0].subject == "late"  # a call past the detailed ones is named at the end


def test_nonfinite_note_names_the_origin() -> None:
    log = WatchLog()
    log.nonfinite.append(NonFinite(1, 4, ("w: 1 inf",), "SqrtBackward0", ("y",)))
    (note,) = nonfinite_notes(log)
    assert note.kind == "nonfinite" and note.subject == "w" and note.line == 4
    assert note.message == ("Non-finite gradient after the backward() at line 4: w: 1 inf. It appeared in "
                            "SqrtBackward0 (the backward of y): the gradient that reached it was finite, the one "
                            "it passed on was not.")
    assert "clamp_min" in note.fix

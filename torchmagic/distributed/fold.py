"""Fold N rank reports into one: identical outputs once, collectives merged, shape differences found.

Pure functions of plain data (no torch, no processes), so every rule here is
tested directly: which ranks printed the same, which collectives match up
across ranks, which rank came late, which ops had other shapes on some
ranks, and who waited in what when the cell was stopped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from torchmagic.core.meta import fmt_shape
from torchmagic.core.text import source_line
from torchmagic.distributed.report import (
    Collective,
    CollectiveRow,
    DistributedReport,
    Hang,
    OutputGroup,
    RankReport,
    ShapeDiff,
    Wait,
)
from torchmagic.i18n import N_, tr, trn

__all__ = ["fold_texts", "ranks_text", "state_text", "merge_collectives", "shape_diffs", "explain_hang", "build"]

LATE_MS = 1.0  # a rank stands out as late when it arrives this much after the others on average
# What a rank was doing (Wait.state) or how its cell ended (RankError.kind), as a person reads it.
_STATES = frozenset(
    (
        N_("running"),
        N_("done"),
        N_("failed"),
        N_("dead"),
        N_("silent"),
        N_("timeout"),
        N_("released"),
        N_("interrupted"),
        N_("stopped"),
        N_("stuck"),
        N_("internal"),
    )
)


def state_text(word: str) -> str:
    """A rank's state or error kind (``'dead'``, ``'stuck'``...) in the current language; unknown words as they are."""
    return tr(word) if word in _STATES else word


def ranks_text(ranks: Sequence[int]) -> str:
    """``[0, 1, 2, 3, 5]`` -> ``'ranks 0–3, 5'``; ``[2]`` -> ``'rank 2'``."""
    rs = sorted(set(ranks))
    if len(rs) == 1:
        return tr("rank {rank}", rank=rs[0])
    parts: list[str] = []
    i = 0
    while i < len(rs):
        j = i
        while j + 1 < len(rs) and rs[j + 1] == rs[j] + 1:
            j += 1
        if j - i >= 2:
            parts.append(f"{rs[i]}–{rs[j]}")
        else:
            parts.extend(str(r) for r in rs[i : j + 1])
        i = j + 1
    return trn("rank {ranks}", "ranks {ranks}", len(rs), ranks=", ".join(parts))


def fold_texts(items: Iterable[tuple[int, str, str]]) -> tuple[OutputGroup, ...]:
    """Group (rank, text, html) by identical text; empty texts are left out; first rank first."""
    groups: dict[str, list[int]] = {}
    html: dict[str, str] = {}
    for rank, text, markup in items:
        if not text.strip() and not markup:
            continue
        groups.setdefault(text, []).append(rank)
        html.setdefault(text, markup)
    return tuple(OutputGroup(tuple(rs), text, html[text]) for text, rs in groups.items())


def _key(c: Collective) -> tuple[object, ...]:
    """Calls of one row: same line, op, library call and group (shapes may differ by rank: a scatter's root)."""
    return (c.line, c.op, c.via, c.group)


def _sig(c: Collective) -> str:
    return (
        ", ".join(fmt_shape(s) for s in c.shapes[:3]) + (" …" if len(c.shapes) > 3 else "") + f" {c.dtype}"
    ).strip() or "—"


def _shapes_by_rank(calls: dict[int, list[Collective]]) -> tuple[tuple[tuple[int, ...], str], ...]:
    """(ranks, shapes) for each distinct set of shapes when ranks differ; () when all agree."""
    per_rank = {rank: " | ".join(dict.fromkeys(_sig(c) for c in cs)) for rank, cs in calls.items()}
    if len(set(per_rank.values())) <= 1:
        return ()
    groups: dict[str, list[int]] = {}
    for rank, text in sorted(per_rank.items()):
        groups.setdefault(text, []).append(rank)
    return tuple((tuple(rs), text) for text, rs in groups.items())


def merge_collectives(
    ranks: Sequence[RankReport], lines: Sequence[str], max_rows: int
) -> tuple[tuple[CollectiveRow, ...], int]:
    """Merge every rank's collectives into rows (line, op, shapes, ...) and say who was late.

    The k-th call of a kind on one rank is matched with the k-th call of the
    same kind on the others (collectives are issued in the same order on
    every rank of a group); the offsets of their issue times show which rank
    arrives last.  Returns (rows in order of first issue, total number of calls).
    """
    failed = {r.rank for r in ranks if r.error is not None}  # only they can still be waiting in one
    per_key: dict[tuple[object, ...], dict[int, list[Collective]]] = defaultdict(lambda: defaultdict(list))
    first: dict[tuple[object, ...], int] = {}
    total = 0
    for r in ranks:
        for c in r.collectives:
            k = _key(c)
            per_key[k][r.rank].append(c)
            first[k] = min(first.get(k, c.issued_ns), c.issued_ns)
            total += 1
    rows: list[CollectiveRow] = []
    for k in sorted(per_key, key=lambda k: first[k])[:max_rows]:
        calls = per_key[k]
        sample = max((cs[0] for cs in calls.values()), key=lambda c: c.nbytes)
        offsets: dict[int, list[float]] = defaultdict(list)
        depth = max(len(v) for v in calls.values())
        for i in range(depth):
            present = {rank: cs[i].issued_ns for rank, cs in calls.items() if i < len(cs)}
            if len(present) < 2:
                continue
            t0 = min(present.values())
            for rank, t in present.items():
                offsets[rank].append((t - t0) / 1e6)
        means = {rank: sum(v) / len(v) for rank, v in offsets.items() if v}
        late_rank, late_ms = -1, 0.0
        if len(means) >= 2:
            rank, worst = max(means.items(), key=lambda kv: kv[1])
            others = [m for q, m in means.items() if q != rank]
            if worst >= LATE_MS and worst > 2 * max(others, default=0.0):
                late_rank, late_ms = rank, worst
        rows.append(
            CollectiveRow(
                line=sample.line,
                source=source_line(lines, sample.line) if sample.line else "",
                op=sample.op,
                via=sample.via,
                group=sample.group,
                shapes=sample.shapes,
                dtype=sample.dtype,
                nbytes=sample.nbytes,
                ranks=tuple(sorted(calls)),
                count=depth,
                late_rank=late_rank,
                late_ms=late_ms,
                per_rank=tuple((rank, len(calls[rank]), round(means.get(rank, 0.0), 3)) for rank in sorted(calls)),
                pending=tuple(
                    sorted(rank for rank, cs in calls.items() if rank in failed and any(not c.done for c in cs))
                ),
                by_rank=_shapes_by_rank(calls),
            )
        )
    return tuple(rows), total


def _variant_text(row: object) -> str:
    variants = getattr(row, "variants", [])
    parts = []
    for v in variants[:2]:
        ins = ", ".join(fmt_shape(o.shape) for o in v.inputs if o.shape is not None and _is_tensor(o))
        outs = ", ".join(fmt_shape(o.shape) for o in v.outputs if o.shape is not None)
        parts.append(f"{ins} → {outs}" if outs else ins)
    return " | ".join(parts)


def _is_tensor(operand: object) -> bool:
    return getattr(operand, "kind", "tensor") == "tensor"


def shape_diffs(ranks: Sequence[RankReport], max_rows: int = 20) -> tuple[ShapeDiff, ...]:
    """Ops (by line and op) whose shapes differ between ranks, from each rank's trace."""
    seen: dict[tuple[int, str, str], dict[str, list[int]]] = {}
    sources: dict[tuple[int, str, str], str] = {}
    order: list[tuple[int, str, str]] = []
    for r in ranks:
        trace = r.trace
        if trace is None:
            continue
        for row in trace.rows:
            key = (row.line, row.op, row.expression)
            if key not in seen:
                seen[key] = {}
                sources[key] = row.source
                order.append(key)
            seen[key].setdefault(_variant_text(row), []).append(r.rank)
    diffs = []
    for key in order:
        variants = seen[key]
        if len(variants) > 1:
            diffs.append(
                ShapeDiff(
                    line=key[0],
                    source=sources[key],
                    op=key[1],
                    shapes=tuple((tuple(rs), text) for text, rs in variants.items()),
                )
            )
    return tuple(diffs[:max_rows])


def explain_hang(waits: Sequence[Wait], timeout: float, released: bool) -> Hang:
    """Who waited in what, at which line, and which rank is the odd one out."""
    in_coll = [w for w in waits if w.state == "collective"]
    dead = [w for w in waits if w.state == "dead"]
    others = [w for w in waits if w.state not in ("collective", "done")]
    kinds: dict[tuple[str, int], list[int]] = defaultdict(list)
    for w in in_coll:
        kinds[(w.op.split(" ")[0], w.line)].append(w.rank)
    waiting, what = ranks_text([w.rank for w in in_coll]), _what(in_coll)
    secs = f"{timeout:g}"
    odd: tuple[int, ...] = ()
    if dead:
        odd = tuple(w.rank for w in dead)
        gone = ranks_text(list(odd))
        if len(dead) == 1 and dead[0].line:
            reason = tr("{ranks} died at line {line}", ranks=gone, line=dead[0].line)
        else:
            reason = tr("{ranks} died", ranks=gone)
        if in_coll:
            reason = trn(
                "{reason}; {waiting} waited in {what} for it",
                "{reason}; {waiting} waited in {what} for them",
                len(odd),
                reason=reason,
                waiting=waiting,
                what=what,
            )
    elif in_coll and others:
        odd = tuple(w.rank for w in others)
        failed = [w for w in others if w.state == "failed"]
        fields = {"waiting": waiting, "what": what, "timeout": secs, "odd": ranks_text(list(odd))}
        if failed and len(failed) == len(others) and failed[0].line:
            reason = tr(
                "{waiting} waited in {what} for more than {timeout} s; {odd} failed at line {line} before joining it",
                line=failed[0].line,
                **fields,
            )
        elif failed and len(failed) == len(others):
            reason = tr(
                "{waiting} waited in {what} for more than {timeout} s; {odd} failed before joining it", **fields
            )
        else:
            reason = tr("{waiting} waited in {what} for more than {timeout} s; {odd} never joined it", **fields)
    elif len(kinds) > 1:
        groups = sorted(kinds.values(), key=len)
        odd = tuple(groups[0]) if len(groups[0]) < len(groups[-1]) else ()
        reason = tr("ranks waited in mismatched collectives for more than {timeout} s", timeout=secs)
    elif in_coll:
        reason = tr("{waiting} waited in {what} for more than {timeout} s", waiting=waiting, what=what, timeout=secs)
    else:
        reason = tr("ranks made no progress for more than {timeout} s", timeout=secs)
    return Hang(reason=reason, waits=tuple(sorted(waits, key=lambda w: w.rank)), odd=odd, released=released)


def _what(waits: Sequence[Wait]) -> str:
    ops = {w.op for w in waits if w.op}
    return next(iter(ops)) if len(ops) == 1 else tr("a collective")


def build(
    header: str,
    backend: str,
    ranks: Sequence[RankReport],
    lines: Sequence[str],
    seconds: float,
    max_rows: int,
    hang: Hang | None = None,
    trace: bool = False,
    notes: tuple[str, ...] = (),
) -> DistributedReport:
    """The one report of a cell, from every rank's report."""
    ordered = sorted(ranks, key=lambda r: r.rank)
    rows, total = merge_collectives(ordered, lines, max_rows)
    return DistributedReport(
        header=header,
        world_size=len(ordered),
        backend=backend,
        seconds=seconds,
        ranks=tuple(ordered),
        outputs=fold_texts((r.rank, r.stdout, "") for r in ordered),
        errors_out=fold_texts((r.rank, r.stderr, "") for r in ordered),
        values=fold_texts((r.rank, r.value, r.value_html) for r in ordered),
        collectives=rows,
        collectives_total=total,
        collectives_lost=sum(r.collectives_lost for r in ordered),
        shape_diffs=shape_diffs(ordered),
        failed=tuple(r.rank for r in ordered if r.error is not None),
        hang=hang,
        trace=trace,
        notes=notes,
    )

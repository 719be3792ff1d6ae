"""``%%distributed`` report → HTML (notebooks) and rich (terminals); pure functions, everything escaped.

Order of the report: what went wrong first (the hang, each failing rank's
traceback and explanation), then output and values folded over ranks, the
collectives, ops whose shapes differ between ranks, and the three kinds of
parallelism when the cell used them (DDP gradients and buckets, DTensor
placements with a drawing, pipeline stages with a timeline).
"""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from torchmagic.core.html import details, esc, table, wrap
from torchmagic.core.meta import fmt_shape
from torchmagic.core.term import txt
from torchmagic.distributed import sharding, timeline
from torchmagic.distributed.flight import via_text
from torchmagic.distributed.fold import ranks_text, state_text
from torchmagic.distributed.report import (
    CollectiveRow,
    DDPFacts,
    DistributedReport,
    DTensorFacts,
    Hang,
    OutputGroup,
    PipelineFacts,
    RankReport,
    Wait,
)
from torchmagic.i18n import N_, tr, trn

__all__ = ["to_html", "to_rich", "fmt_bytes", "title"]


def fmt_bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def title(r: DistributedReport) -> str:
    state = " · " + tr("{ranks} failed", ranks=ranks_text(list(r.failed))) if r.failed else ""
    size = trn("{n} rank", "{n} ranks", r.world_size)
    return f"%%distributed · {size} · {r.backend} · {_ms(r.seconds)}{state}"


def _html(message: str, **markup: str) -> str:
    """``message`` translated and escaped, its placeholders filled with ``markup`` (already HTML)."""
    return esc(tr(message)).format(**markup)


def _shapes(c: CollectiveRow) -> str:
    if c.by_rank:
        return "; ".join(f"{ranks_text(list(rs))}: {text}" for rs, text in c.by_rank)
    text = ", ".join(fmt_shape(s) for s in c.shapes[:3])
    return text + (f" (+{len(c.shapes) - 3})" if len(c.shapes) > 3 else "")


def _late(c: CollectiveRow) -> str:
    if c.pending:
        return tr("{ranks} still waiting", ranks=ranks_text(list(c.pending)))
    if c.late_rank >= 0:
        late = f"{c.late_ms:.1f}"
        return tr("rank {rank} late by {ms} ms", rank=c.late_rank, ms=late)
    return ""


def _collective_cells(c: CollectiveRow) -> list[str]:
    return [
        str(c.line or "—"),
        c.source or "",
        c.op,
        via_text(c.via),
        c.group,
        _shapes(c),
        "" if c.by_rank else c.dtype,
        fmt_bytes(c.nbytes),
        ranks_text(list(c.ranks)),
        f"×{c.count}",
        _late(c),
    ]


_COLL_HEAD = [
    N_("line"),
    N_("code"),
    N_("op"),
    N_("via"),
    N_("group"),
    N_("shapes"),
    N_("dtype"),
    N_("bytes"),
    N_("ranks"),
    N_("count"),
    N_("arrival"),
]
_DIFFER = N_("ops whose shapes differ between ranks")
_COLL_HEAD_RICH = [N_("line"), N_("op"), N_("shapes"), N_("bytes"), N_("ranks"), N_("arrival")]


def _heads(names: list[str]) -> list[str]:
    return [tr(n) for n in names]


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _collective_rich_cells(c: CollectiveRow) -> list[str]:
    """The terminal's narrower row: code under the line, via and group under the op."""
    line = f"{c.line} {_clip(c.source, 26)}" if c.line else "—"
    op = tr("{op} via {via}", op=c.op, via=via_text(c.via)) if c.via else c.op
    op += f" [{c.group}]" if c.group != "default" else ""
    shapes = _shapes(c) if c.by_rank else f"{_shapes(c)} {c.dtype}"
    return [line, op, shapes, fmt_bytes(c.nbytes), f"{ranks_text(list(c.ranks))} ×{c.count}", _late(c)]


def _no_collectives(r: DistributedReport) -> str:
    if any(s.sends for rank in r.ranks if rank.pipeline for s in rank.pipeline.stages):
        return tr(
            "no collectives (point-to-point sends are not in gloo's flight recorder: the pipeline's are listed below)"
        )
    return tr("no collectives")


def _error_text(rank: RankReport) -> str:
    e = rank.error
    assert e is not None
    if e.kind == "exception":
        return f"{e.type}: {e.message}"
    return tr("{state}: {message}", state=state_text(e.kind), message=e.message) if e.message else state_text(e.kind)


# -- HTML ------------------------------------------------------------------------------
def _groups_html(groups: tuple[OutputGroup, ...], label: str, world: int) -> str:
    if not groups:
        return ""
    cells = []
    for g in groups:
        who = tr("all ranks") if len(g.ranks) == world and world > 1 else ranks_text(list(g.ranks))
        body = g.html if g.html else f"<pre>{esc(g.text.rstrip())}</pre>"
        box = '<div class="tm-rankbox" style="flex:1 1 0;min-width:12em">'
        cells.append(f'{box}<div class="tm-muted">{esc(who)}</div>{body}</div>')
    row = '<div style="display:flex;gap:12px;flex-wrap:wrap">'
    return f'<div class="tm-title">{esc(label)}</div>{row}{"".join(cells)}</div>'


def _hang_html(h: Hang) -> str:
    rows = [[str(w.rank), _waiting_in(w, h), str(w.line or "—"), w.source, _for(w)] for w in h.waits]
    released = tr("the waiting ranks were released") if h.released else tr("the ranks are still waiting")
    stopped = tr("stopped: {reason}; {released}", reason=h.reason, released=released)
    return f'<div class="tm-error tm-title">{esc(stopped)}</div>' + table(
        _heads([N_("rank"), N_("waiting in"), N_("line"), N_("code"), N_("for")]), rows
    )


def _waiting_in(w: Wait, h: Hang) -> str:
    what = w.op if w.state == "collective" else state_text(w.state)
    return tr("{what} ← odd one out", what=what) if w.rank in h.odd else what


def _for(w: Wait) -> str:
    return f"{w.seconds:g} s" if w.seconds else ""


def _errors_html(r: DistributedReport) -> str:
    out = []
    for rank in r.ranks:
        if rank.error is None:
            continue
        e = rank.error
        head = tr("rank {rank}: {error}", rank=rank.rank, error=_error_text(rank))
        body = ""
        if e.explanation is not None:
            from torchmagic.trace.render_error import explanation_html

            body += explanation_html(e.explanation)
        if e.traceback:
            body += f"<pre>{esc(e.traceback)}</pre>"
        out.append(
            f'<div class="tm-error">{esc(head)}</div>'
            + (details(tr("traceback"), body, open_=e.kind == "exception") if body else "")
        )
    return "".join(out)


def _ddp_html(rank_facts: list[tuple[int, DDPFacts]]) -> str:
    if not rank_facts:
        return ""
    first = rank_facts[0][1]
    losses = ", ".join(tr("rank {rank}: {values}", rank=rk, values=_losses(f)) for rk, f in rank_facts)
    head = [
        *_heads([N_("parameter"), N_("shape"), N_("bucket")]),
        *(tr("rank {rank} before", rank=rk) for rk, _ in rank_facts),
        tr("after (every rank)"),
    ]
    rows = []
    for i, g in enumerate(first.grads):
        befores = []
        afters = set()
        for _, f in rank_facts:
            row = f.grads[i] if i < len(f.grads) else None
            befores.append(_vals(row.before, row.before_norm) if row else "")
            if row:
                afters.add(_vals(row.after, row.after_norm))
        after = afters.pop() if len(afters) == 1 else tr("differ: {values}", values=" | ".join(sorted(afters)))
        rows.append([g.name, fmt_shape(g.shape), str(g.bucket) if g.bucket >= 0 else "—", *befores, after])
    buckets = (
        table(
            _heads([N_("bucket"), N_("bytes"), N_("parameters")]),
            [[str(b.index), fmt_bytes(b.nbytes), ", ".join(b.params)] for b in first.buckets],
        )
        if first.buckets
        else ""
    )
    model = _html(N_("data parallel: DDP model {model}"), model=f"<code>{esc(first.model)}</code>")
    per_rank = tr("loss per rank: {losses}", losses=losses)
    explain = tr(
        "each rank computes its own gradient (before); DDP all-reduces and averages them, "
        "bucket by bucket, during backward (after: the same on every rank)"
    )
    return (
        f'<div class="tm-title">{model}</div>'
        f"<div>{esc(per_rank)}</div>"
        f'<div class="tm-muted">{esc(explain)}</div>' + table(head, rows) + buckets
    )


def _losses(f: DDPFacts) -> str:
    return ", ".join(f"{v:.4g}" for v in f.losses) or "—"


def _ddp_rich(ddp: list[tuple[int, DDPFacts]]) -> list[Any]:
    """The terminal's DDP view: gradient norms per rank before, and after (every values' detail is in HTML)."""
    first = ddp[0][1]
    losses = ", ".join(f"r{rk} {_losses(f)}" for rk, f in ddp)
    head = Text(
        tr(
            "data parallel: DDP {model} · loss {losses} · ‖grad‖ before (each rank) → after (averaged)",
            model=first.model,
            losses=losses,
        )
    )
    lines = []
    for i, g in enumerate(first.grads):
        befores = " ".join(f"r{rk} {f.grads[i].before_norm:.4g}" for rk, f in ddp if i < len(f.grads))
        grad = tr(
            "{name} {shape} bucket {bucket}: {before} → {after}",
            name=g.name,
            shape=fmt_shape(g.shape),
            bucket=g.bucket,
            before=befores,
            after=format(g.after_norm, ".4g"),
        )
        lines.append(f"  {grad}")
    for b in first.buckets:
        bucket = tr(
            "bucket {bucket}: {bytes} · {params}", bucket=b.index, bytes=fmt_bytes(b.nbytes), params=", ".join(b.params)
        )
        lines.append(f"  {bucket}")
    return [head, txt("\n".join(lines))]


def _vals(values: tuple[float, ...], norm: float) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + (", …]" if values else "]") + f" ‖{norm:.4g}‖"


def _dtensor_html(facts: list[DTensorFacts]) -> str:
    if not facts:
        return ""
    head = tr("layer-wise partitioning: DTensors (which rank holds which block)")
    return f'<div class="tm-title">{esc(head)}</div>' + "".join(sharding.section_html(f) for f in facts)


def _pipeline_html(p: PipelineFacts | None) -> str:
    if p is None or not p.stages:
        return ""
    rows = [
        [
            str(s.stage),
            str(s.rank),
            "; ".join(s.layers),
            f"{s.params:,}",
            f"{sum(e.kind == 'F' for e in s.events)} F / {sum(e.kind == 'B' for e in s.events)} B",
        ]
        for s in sorted(p.stages, key=lambda s: s.stage)
    ]
    sched = ""
    if p.schedule:
        many = tr("{schedule}, {n} micro-batches", schedule=p.schedule, n=p.microbatches)
        sched = " · " + (many if p.microbatches else p.schedule)
    body = table(_heads([N_("stage"), N_("rank"), N_("layers"), N_("parameters"), N_("micro-batches")]), rows)
    sent = _sends_rows(p)
    if sent:
        each = tr("sent between stages (each micro-batch)")
        body += f'<div class="tm-muted">{esc(each)}</div>' + table(_heads(_SENT_HEAD), sent)
    if any(s.events for s in p.stages):
        body += timeline.svg(p)
    head = tr("network partitioning: pipeline stages{schedule}", schedule=sched)
    return f'<div class="tm-title">{esc(head)}</div>' + body


_SENT_HEAD = [N_("from"), N_("to"), N_("what"), N_("shape"), N_("dtype"), N_("micro-batches")]


def _sends_rows(p: PipelineFacts) -> list[list[str]]:
    """One row per (stage, peer, what, shape): the activations and gradients that crossed ranks."""
    rows: dict[tuple[int, int, int, str, tuple[int, ...], str], int] = {}
    for s in sorted(p.stages, key=lambda s: s.stage):
        for send in s.sends:
            key = (s.stage, s.rank, send.peer, send.what, send.shape, send.dtype)
            rows[key] = rows.get(key, 0) + 1
    return [
        [
            tr("stage {stage} (rank {rank})", stage=st, rank=rk),
            tr("rank {rank}", rank=peer),
            tr(what),
            fmt_shape(shape),
            dtype,
            str(n),
        ]
        for (st, rk, peer, what, shape, dtype), n in rows.items()
    ]


def _gather_pipeline(r: DistributedReport) -> PipelineFacts | None:
    stages = [s for rank in r.ranks if rank.pipeline for s in rank.pipeline.stages]
    if not stages:
        return None
    first = next(rank.pipeline for rank in r.ranks if rank.pipeline)
    assert first is not None
    return PipelineFacts(stages=tuple(stages), schedule=first.schedule, microbatches=first.microbatches)


def _gather_dtensors(r: DistributedReport) -> list[DTensorFacts]:
    """One description per DTensor name (every rank holds the same facts about its mesh)."""
    seen: dict[str, DTensorFacts] = {}
    for rank in r.ranks:
        for f in rank.dtensors:
            seen.setdefault(f.name, f)
    return list(seen.values())


def _gather_ddp(r: DistributedReport) -> list[tuple[int, DDPFacts]]:
    return [(rank.rank, rank.ddp[0]) for rank in r.ranks if rank.ddp]


def to_html(r: DistributedReport) -> str:
    cls = "tm-error" if r.failed else ""
    parts = [f'<div class="tm-title {cls}">{esc(title(r))}</div>']
    if r.hang is not None:
        parts.append(_hang_html(r.hang))
    parts.append(_errors_html(r))
    parts.append(_groups_html(r.outputs, tr("output"), r.world_size))
    parts.append(_groups_html(r.errors_out, "stderr", r.world_size))
    parts.append(_groups_html(r.values, tr("value of the last line"), r.world_size))
    if r.collectives:
        n, lost = r.collectives_total, r.collectives_lost
        head = (
            trn(
                "collectives: {n} call on all ranks, {lost} older ones not kept",
                "collectives: {n} calls on all ranks, {lost} older ones not kept",
                n,
                lost=lost,
            )
            if lost
            else trn("collectives: {n} call on all ranks", "collectives: {n} calls on all ranks", n)
        )
        parts.append(
            f'<div class="tm-title">{esc(head)}</div>'
            + table(_heads(_COLL_HEAD), [_collective_cells(c) for c in r.collectives])
        )
    else:
        parts.append(f'<div class="tm-muted">{esc(_no_collectives(r))}</div>')
    if r.shape_diffs:
        parts.append(
            f'<div class="tm-title">{esc(tr(_DIFFER))}</div>'
            + table(
                _heads([N_("line"), N_("code"), N_("op"), N_("shapes per rank")]),
                [
                    [str(d.line), d.source, d.op, "; ".join(f"{ranks_text(list(rs))}: {t}" for rs, t in d.shapes)]
                    for d in r.shape_diffs
                ],
            )
        )
    parts.append(_ddp_html(_gather_ddp(r)))
    parts.append(_dtensor_html(_gather_dtensors(r)))
    parts.append(_pipeline_html(_gather_pipeline(r)))
    if r.trace:
        for rank in r.ranks:
            if rank.trace is not None:
                parts.append(
                    details(
                        tr(
                            "rank {rank}: {magic} trace ({summary})",
                            rank=rank.rank,
                            magic="%%tensorinfo",
                            summary=rank.trace.summary(),
                        ),
                        rank.trace.to_html(),
                    )
                )
    for note in r.notes:
        parts.append(f'<div class="tm-muted">{esc(note)}</div>')
    return wrap("".join(p for p in parts if p), "distributed")


# -- rich --------------------------------------------------------------------------------
def _table(headers: list[str], rows: list[list[str]], title_: str = "") -> Table:
    t = Table(*headers, title=title_ or None, title_justify="left", show_lines=False, expand=False)
    for row in rows:
        t.add_row(*(txt(c) for c in row))
    return t


def _groups_rich(groups: tuple[OutputGroup, ...], label: str, world: int) -> list[Any]:
    out: list[Any] = []
    for g in groups:
        who = tr("all ranks") if len(g.ranks) == world and world > 1 else ranks_text(list(g.ranks))
        out.append(Text.assemble((f"{label} · {who}\n", "bold"), g.text.rstrip()))
    return out


def to_rich(r: DistributedReport) -> Any:
    items: list[Any] = []
    if r.hang is not None:
        h = r.hang
        items.append(Text(tr("stopped: {reason}", reason=h.reason), style="bold red"))
        items.append(
            _table(
                _heads([N_("rank"), N_("waiting in"), N_("line"), N_("for")]),
                [[str(w.rank), _waiting_in(w, h), str(w.line or "—"), _for(w)] for w in h.waits],
            )
        )
    for rank in r.ranks:
        if rank.error is not None:
            items.append(Text(tr("rank {rank}: {error}", rank=rank.rank, error=_error_text(rank)), style="bold red"))
            if rank.error.explanation is not None:
                from torchmagic.trace.render_error import explanation_rich

                items.append(explanation_rich(rank.error.explanation))
            if rank.error.traceback and rank.error.kind == "exception":
                items.append(txt("\n".join(rank.error.traceback.splitlines()[-12:]), "dim"))
    items += _groups_rich(r.outputs, tr("output"), r.world_size)
    items += _groups_rich(r.errors_out, "stderr", r.world_size)
    items += _groups_rich(r.values, tr("value"), r.world_size)
    if r.collectives:
        items.append(
            _table(
                _heads(_COLL_HEAD_RICH),
                [_collective_rich_cells(c) for c in r.collectives],
                tr("collectives: {n} calls on all ranks", n=r.collectives_total),
            )
        )
    if r.shape_diffs:
        items.append(
            _table(
                _heads([N_("line"), N_("op"), N_("shapes per rank")]),
                [
                    [str(d.line), d.op, "; ".join(f"{ranks_text(list(rs))}: {t}" for rs, t in d.shapes)]
                    for d in r.shape_diffs
                ],
                tr(_DIFFER),
            )
        )
    ddp = _gather_ddp(r)
    if ddp:
        items += _ddp_rich(ddp)
    dtensors = _gather_dtensors(r)
    for f in dtensors:
        items.append(sharding.section_rich(f))
    if dtensors:
        items.append(Text(tr(sharding.LEGEND), style="dim"))
    p = _gather_pipeline(r)
    if p is not None:
        items.append(
            _table(
                _heads([N_("stage"), N_("rank"), N_("layers"), N_("parameters")]),
                [
                    [str(s.stage), str(s.rank), "; ".join(s.layers), f"{s.params:,}"]
                    for s in sorted(p.stages, key=lambda s: s.stage)
                ],
                tr("pipeline stages {schedule}", schedule=p.schedule),
            )
        )
        sent = _sends_rows(p)
        if sent:
            items.append(_table(_heads(_SENT_HEAD), sent, tr("sent between stages")))
        if any(s.events for s in p.stages):
            items.append(timeline.rich_timeline(p))
    if r.trace:
        for rank in r.ranks:
            if rank.trace is not None:
                items.append(Text(tr("rank {rank}: {magic} trace", rank=rank.rank, magic="%%tensorinfo"), style="bold"))
                items.append(rank.trace.__rich__())
    for note in r.notes:
        items.append(Text(note, style="dim"))
    if not r.collectives:
        items.append(Text(_no_collectives(r), style="dim"))
    return Panel(Group(*items), title=txt(title(r)), title_align="left", border_style="red" if r.failed else "blue")

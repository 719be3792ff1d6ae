"""The %%distributed report drawn: HTML and rich from plain data, every user string escaped."""

from __future__ import annotations

import re

from torchmagic.core.report import rich_to_text
from torchmagic.distributed import render_pool, sharding, timeline
from torchmagic.distributed.dtensor import blocks
from torchmagic.distributed.fold import build, explain_hang
from torchmagic.distributed.report import (
    Bucket,
    Collective,
    DDPFacts,
    DTensorFacts,
    GradRow,
    PipelineFacts,
    Placement,
    PoolStatus,
    RankError,
    RankReport,
    Send,
    StageEvent,
    StageFacts,
    Wait,
)

EVIL = "<script>alert(1)</script>[bold]x[/bold]"
LINES = ["# %%distributed", f"y = 1  # {EVIL}", "dist.all_reduce(t)"]


ROWS = (Placement("Shard", 0),)


def dtensor(name: str = "w", places: tuple[Placement, ...] = ROWS) -> DTensorFacts:
    return DTensorFacts(
        name,
        (16, 8),
        (8, 8),
        "float32",
        (2,),
        (0, 1),
        ("",),
        tuple(places),
        blocks((16, 8), (2,), (0, 1), list(places)),
    )


def report(**kw):  # type: ignore[no-untyped-def]
    c = Collective(0, "all_reduce", "default", ((4,),), ((4,),), "float32", 16, 2, "", 0)
    r0 = RankReport(0, "h", 1, 0.01, stdout=f"hello {EVIL}\n", value=EVIL, collectives=(c,))
    r1 = RankReport(
        1,
        "h",
        2,
        0.01,
        stdout=f"hello {EVIL}\n",
        value="2",
        collectives=(c,),
        error=RankError("exception", "ValueError", EVIL, traceback=f"Cell In[1], line 2\n{EVIL}", line=2),
    )
    for k, v in kw.items():
        setattr(r0, k, v)
        setattr(r1, k, v)
    return build("%%distributed", "gloo", [r0, r1], LINES, 0.5, 50)


def test_html_escapes_everything_and_has_the_sections() -> None:
    html = report().to_html()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "ranks 0, 1" in html or "all ranks" in html  # the folded output
    assert "rank 1: ValueError" in html and "collectives: 2 calls" in html
    assert html.count("<table") >= 1


def test_rich_prints_user_text_literally() -> None:
    text = rich_to_text(report())
    assert "[bold]x[/bold]" in text
    assert "output · all ranks" in text and "rank 1: ValueError" in text
    assert "all_reduce" in text


def test_hang_section() -> None:
    rep = report()
    rep.hang = explain_hang([Wait(0, "collective", 2, "", "all_reduce (4,) float32"), Wait(1, "running", 3)], 5, True)
    html = rep.to_html()
    assert "stopped: rank 0 waited in all_reduce (4,) float32" in html and "odd one out" in html
    assert "odd one out" in rich_to_text(rep)


def test_ddp_section_shows_before_and_after() -> None:
    g = GradRow("0.weight", (2, 2), (1.0, 2.0), (1.5, 2.5), 2.2, 2.9, 0)
    facts = (DDPFacts("model", (0.25,), (g,), (Bucket(0, 16, ("0.weight",)),), 25 << 20),)
    rep = report(ddp=facts)
    html = rep.to_html()
    assert "data parallel" in html and "rank 0 before" in html and "[1.5, 2.5, …]" in html
    text = rich_to_text(rep)
    assert "0.weight (2, 2) bucket 0: r0 2.2 r1 2.2 → 2.9" in text and "bucket 0: 16 B" in text


def test_dtensor_drawing_has_one_box_per_block_and_replicas_merge() -> None:
    svg = sharding.svg(dtensor())
    assert svg.count('<g class="node">') == 2 and ">r0<" in svg and ">r1<" in svg
    rep_svg = sharding.svg(dtensor(places=(Placement("Replicate"),)))
    assert rep_svg.count('<g class="node">') == 1 and "r0,1" in rep_svg
    grid = rich_to_text(sharding.rich_grid(dtensor()))
    assert grid.splitlines()[0] == "0" * 8 and grid.splitlines()[-1] == "1" * 8
    evil = sharding.section_html(dtensor(name=EVIL))
    assert "<script>" not in evil


MS = 1_000_000


def stages() -> tuple[StageFacts, StageFacts]:
    """Two pipeline stages, one micro-batch: stage 0 idles 50% of the 8 ms (F0 0–2, B0 6–8)."""
    s0 = StageFacts(
        0,
        0,
        ("0: Linear",),
        1_040,
        (StageEvent("F", 0, 0, 2 * MS), StageEvent("B", 0, 6 * MS, 8 * MS)),
        (Send("activation", 0, 1, (2, 16), "float32"),),
    )
    s1 = StageFacts(
        1,
        1,
        ("0: ReLU", "1: Linear"),
        170,
        (StageEvent("F", 0, 2 * MS, 4 * MS), StageEvent("B", 0, 4 * MS, 6 * MS)),
        (Send("gradient", 0, 0, (2, 16), "float32"),),
    )
    return s0, s1


def test_pipeline_timeline_and_bubbles() -> None:
    ms = MS
    s0, s1 = stages()
    p = PipelineFacts((s0, s1), "ScheduleGPipe", 1)
    assert timeline.span(p) == (0, 8 * ms)
    assert abs(timeline.bubble_share(s0, 0, 8 * ms) - 0.5) < 1e-9
    svg = timeline.svg(p)
    assert svg.count('<g class="node">') == 4 and "F0" in svg
    html = report(pipeline=p).to_html()
    assert "network partitioning" in html and "activation" in html
    text = rich_to_text(report(pipeline=p))
    assert re.search(r"stage 0 r0 .*idle 50%", text)


def test_pool_status() -> None:
    s = PoolStatus(
        True,
        2,
        "gloo",
        "local",
        "127.0.0.1",
        True,
        ((0, EVIL, 11, "alive (cpu)"), (1, "h", 12, "dead")),
        "rank 1 died: %distributed restart",
    )
    html = s.to_html()
    assert "<script>" not in html and "died" in html
    assert "2 ranks · gloo process group" in render_pool.summary(s)
    assert "[bold]x[/bold]" in rich_to_text(s)

"""Folding rank reports: identical outputs once, collectives matched across ranks, hangs explained."""

from __future__ import annotations

from types import SimpleNamespace

from torchmagic.distributed.fold import build, explain_hang, fold_texts, merge_collectives, ranks_text, shape_diffs
from torchmagic.distributed.report import Collective, RankError, RankReport, Wait

LINES = ["# %%distributed", "t = torch.ones(4)", "dist.all_reduce(t)", "dist.broadcast(t, 0)"]


def call(
    op: str = "all_reduce", line: int = 3, t_ms: float = 0.0, shapes=((4,),), done: bool = True, rec: int = 0
) -> Collective:
    return Collective(rec, op, "default", shapes, shapes, "float32", 16 * len(shapes), line, "", int(t_ms * 1e6), done)


def rank(r: int, *calls: Collective, out: str = "", error: RankError | None = None) -> RankReport:
    return RankReport(rank=r, host="h", pid=100 + r, seconds=0.01, stdout=out, collectives=calls, error=error)


def test_ranks_text() -> None:
    assert ranks_text([2]) == "rank 2"
    assert ranks_text([0, 1]) == "ranks 0, 1"
    assert ranks_text([3, 0, 1, 2, 5]) == "ranks 0–3, 5"
    assert ranks_text([0, 2, 4]) == "ranks 0, 2, 4"


def test_identical_outputs_fold_and_differing_ones_stay_apart() -> None:
    groups = fold_texts([(0, "same\n", ""), (1, "same\n", ""), (2, "other\n", ""), (3, "", "")])
    assert [(g.ranks, g.text) for g in groups] == [((0, 1), "same\n"), ((2,), "other\n")]


def test_collectives_match_up_across_ranks_and_the_late_rank_stands_out() -> None:
    ranks = [
        rank(0, call(t_ms=0), call(t_ms=10), call("broadcast", 4, t_ms=20)),
        rank(1, call(t_ms=30), call(t_ms=40), call("broadcast", 4, t_ms=50)),
    ]
    rows, total = merge_collectives(ranks, LINES, 50)
    assert total == 6
    assert [(r.line, r.op, r.count, r.ranks) for r in rows] == [
        (3, "all_reduce", 2, (0, 1)),
        (4, "broadcast", 1, (0, 1)),
    ]
    assert rows[0].source == "dist.all_reduce(t)"
    assert rows[0].late_rank == 1 and abs(rows[0].late_ms - 30.0) < 1e-6
    assert rows[0].by_rank == ()


def test_no_late_rank_when_arrivals_are_close() -> None:
    rows, _ = merge_collectives([rank(0, call(t_ms=0)), rank(1, call(t_ms=0.2))], LINES, 50)
    assert rows[0].late_rank == -1


def test_shapes_that_differ_between_ranks_are_listed_per_rank() -> None:
    rows, _ = merge_collectives([rank(0, call(shapes=((2, 8),))), rank(1, call(shapes=()))], LINES, 50)
    assert rows[0].by_rank == (((0,), "(2, 8) float32"), ((1,), "float32"))


def test_pending_only_counts_for_ranks_that_failed() -> None:
    err = RankError("timeout", "RuntimeError", "Timed out")
    rows, _ = merge_collectives([rank(0, call(done=False), error=err), rank(1, call(done=False))], LINES, 50)
    assert rows[0].pending == (0,)


def test_row_cap() -> None:
    calls = [call(line=i, t_ms=i) for i in range(10)]
    rows, total = merge_collectives([rank(0, *calls)], LINES, 3)
    assert len(rows) == 3 and total == 10


def _trace(*rows: tuple[int, str, tuple[int, ...], tuple[int, ...]]) -> SimpleNamespace:
    op = lambda s: SimpleNamespace(shape=s)  # noqa: E731
    return SimpleNamespace(
        rows=[
            SimpleNamespace(
                line=line,
                op=name,
                expression="x",
                source="y = x + 1",
                variants=[SimpleNamespace(inputs=[op(i)], outputs=[op(o)])],
            )
            for line, name, i, o in rows
        ]
    )


def test_shape_diffs_only_lists_ops_that_differ() -> None:
    r0, r1 = rank(0), rank(1)
    r0.trace = _trace((2, "add", (4,), (4,)), (3, "mul", (2,), (2,)))
    r1.trace = _trace((2, "add", (5,), (5,)), (3, "mul", (2,), (2,)))
    diffs = shape_diffs([r0, r1])
    assert len(diffs) == 1
    assert diffs[0].op == "add" and diffs[0].shapes == (((0,), "(4,) → (4,)"), ((1,), "(5,) → (5,)"))


def test_hang_rank_never_joined() -> None:
    h = explain_hang([Wait(0, "collective", 3, "", "all_reduce (4,) float32"), Wait(1, "running", 7)], 5, True)
    assert h.odd == (1,)
    assert h.reason == "rank 0 waited in all_reduce (4,) float32 for more than 5 s; rank 1 never joined it"


def test_hang_mismatched_collectives() -> None:
    waits = [
        Wait(0, "collective", 3, "", "all_reduce (4,)"),
        Wait(1, "collective", 5, "", "all_gather (3,)"),
        Wait(2, "collective", 5, "", "all_gather (3,)"),
    ]
    h = explain_hang(waits, 2, True)
    assert "mismatched" in h.reason and h.odd == (0,)


def test_hang_failed_and_dead_ranks() -> None:
    h = explain_hang(
        [Wait(0, "collective", 4, "", "all_reduce (2,)"), Wait(1, "failed", 3, "", "ZeroDivisionError")], 3, True
    )
    assert h.reason.endswith("rank 1 failed at line 3 before joining it")
    d = explain_hang([Wait(0, "collective", 4, "", "all_reduce (2,)"), Wait(1, "dead", 3)], 3, True)
    assert d.reason == "rank 1 died at line 3; rank 0 waited in all_reduce (2,) for it" and d.odd == (1,)


def test_build_marks_failed_ranks_and_folds_values() -> None:
    err = RankError("exception", "ValueError", "bad")
    a, b = rank(0, out="hi\n"), rank(1, out="hi\n", error=err)
    a.value = b.value = "tensor(3.)"
    rep = build("%%distributed", "gloo", [b, a], LINES, 0.1, 50)
    assert rep.failed == (1,) and [r.rank for r in rep.ranks] == [0, 1]
    assert rep.outputs[0].ranks == (0, 1) and rep.values[0].text == "tensor(3.)"
    assert rep.to_dict()["kind"] == "DistributedReport"

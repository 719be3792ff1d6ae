"""The report's plain data: JSON, the status of a leaf, the exports."""

from __future__ import annotations

import json

from torchmagic.autograd.graph import GNode, Graph
from torchmagic.autograd.report import AutogradReport, LeafGrad, LoopSummary, Note
from torchmagic.autograd.values import NONE, Values


def test_statuses_exports_and_json() -> None:
    bad = Values("[inf]", shape=(1,), flat=(float("inf"),), inf=1)
    ok = Values("[1]", shape=(1,), flat=(1.0,), nonzero=True, norm=1.0)
    assert LeafGrad("w", (1,), "float32", NONE, ok, ok).status == "ok"
    assert LeafGrad("w", (1,), "float32", ok, ok, ok, accumulated=True).status == "accumulated"
    assert LeafGrad("w", (1,), "float32", NONE, bad, bad, accumulated=True).status == "non-finite"
    graph = Graph(nodes=[GNode(0, "leaf", "w", shape=(1,), dtype="float32")], roots=[0])
    r = AutogradReport(title="%%autograd", graph=graph, notes=[Note("accumulated", "w.grad accumulated"),
                                                                Note("info", "fyi")],
                       loop=LoopSummary(20, 5, 2, "for i in range(20):", "loss", (1.0, float("nan")), (1, 2)))
    assert [n.kind for n in r.accumulated] == ["accumulated"]
    assert r.svg.startswith("<svg") and r.to_dot().startswith("digraph")
    data = json.loads(json.dumps(r.to_dict()))
    assert data["kind"] == "AutogradReport" and data["loop"]["losses"] == [1.0, "nan"]
    assert AutogradReport(title="x").svg == ""

"""tensors.report: plain data; what the statistics cover; reports serialise."""

from __future__ import annotations

import json
import math

from torchmagic.tensors.report import NamespaceReport, NamespaceRow, Stats, SummaryRow


def test_nonfinite_is_the_sum_of_the_special_counts() -> None:
    s = Stats(of="the 2 finite values (of 5)", count=5, nans=1, posinf=1, neginf=1, finite=2)
    assert s.nonfinite == 3 and Stats(of="all values", count=3, finite=3).nonfinite == 0


def test_rows_and_listing_serialise_with_odd_floats() -> None:
    stats = Stats(of="all values", count=2, minimum=math.nan, maximum=math.inf, finite=0, nans=1, posinf=1)
    row = SummaryRow("b", "Tensor", (2,), "float32", "cpu", 8, "", stats)
    data = json.loads(json.dumps(NamespaceReport(rows=[row], total_bytes=8, asked=True).to_dict()))
    assert data["kind"] == "NamespaceReport" and data["asked"] is True
    assert data["rows"][0]["stats"]["minimum"] == "nan" and data["rows"][0]["shape"] == [2]
    assert NamespaceRow is SummaryRow  # the earlier name still works

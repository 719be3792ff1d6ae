"""Which rank holds which block: the pure layout, checked against torch's own sharding."""

from __future__ import annotations

from torchmagic.distributed.dtensor import blocks
from torchmagic.distributed.report import Placement

S0, S1, R, P = Placement("Shard", 0), Placement("Shard", 1), Placement("Replicate"), Placement("Partial", reduce="sum")


def test_row_and_column_sharding() -> None:
    rows = blocks((16, 8), (2,), (0, 1), [S0])
    assert [(b.rank, b.offset, b.size) for b in rows] == [(0, (0, 0), (8, 8)), (1, (8, 0), (8, 8))]
    cols = blocks((8, 16), (2,), (0, 1), [S1])
    assert [(b.offset, b.size) for b in cols] == [((0, 0), (8, 8)), ((0, 8), (8, 8))]


def test_uneven_split_is_like_torch_chunk() -> None:
    out = blocks((5,), (4,), (0, 1, 2, 3), [S0])
    assert [b.size for b in out] == [(2,), (2,), (1,), (0,)]
    assert [b.offset for b in out] == [(0,), (2,), (4,), (5,)]


def test_two_dim_mesh_replicate_and_partial() -> None:
    out = blocks((4, 4), (2, 2), (0, 1, 2, 3), [S0, R])
    assert [(b.rank, b.offset, b.size) for b in out] == [
        (0, (0, 0), (2, 4)),
        (1, (0, 0), (2, 4)),
        (2, (2, 0), (2, 4)),
        (3, (2, 0), (2, 4)),
    ]
    nested = blocks((8,), (2, 2), (0, 1, 2, 3), [S0, S0])
    assert [b.offset for b in nested] == [(0,), (2,), (4,), (6,)]
    partial = blocks((3,), (2,), (0, 1), [P])
    assert all(b.partial and b.size == (3,) for b in partial)

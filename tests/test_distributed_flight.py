"""Flight-recorder entries to plain collectives: op names, dtypes, bytes, cell lines, the library call between."""

from __future__ import annotations

from typing import Any

from torchmagic.distributed.flight import describe, dtype_name, group_names, op_name, to_collectives

CELL = "/tmp/ipykernel_1/123.py"
TORCH = "/x/site-packages/torch"


def entry(
    rec: int,
    name: str,
    frames: list[dict[str, Any]],
    sizes=((4,),),
    dtypes=("Float",),
    retired=True,
    t=10,
    pg=("0", "default_pg"),
) -> dict[str, Any]:
    return {
        "record_id": rec,
        "profiling_name": name,
        "frames": frames,
        "input_sizes": [list(s) for s in sizes],
        "input_dtypes": list(dtypes),
        "output_sizes": [list(s) for s in sizes],
        "time_created_ns": t,
        "retired": retired,
        "process_group": pg,
    }


def fr(name: str, filename: str, line: int) -> dict[str, Any]:
    return {"name": name, "filename": filename, "line": line}


def test_names() -> None:
    assert op_name("gloo:all_reduce") == "all_reduce"
    assert op_name("nccl:_allgather_base") == "all_gather"
    assert op_name("gloo:reduce_scatter_tensor_coalesced") == "reduce_scatter"
    assert dtype_name("BFloat16") == "bfloat16" and dtype_name("Long") == "int64"


def test_a_user_call_gets_its_cell_line_and_no_via() -> None:
    frames = [
        fr("all_reduce", f"{TORCH}/distributed/distributed_c10d.py", 3000),
        fr("wrapper", f"{TORCH}/distributed/c10d_logger.py", 80),
        fr("<module>", CELL, 4),
    ]
    (c,) = to_collectives([entry(5, "gloo:all_reduce", frames, sizes=((4, 2),))], CELL)
    assert (c.op, c.line, c.via, c.shapes, c.dtype, c.nbytes, c.group) == (
        "all_reduce",
        4,
        "",
        ((4, 2),),
        "float32",
        32,
        "default",
    )
    assert describe(c) == "all_reduce (4, 2) float32"


def test_ddp_and_dtensor_calls_name_the_library() -> None:
    ddp = [
        fr("_sync_params", f"{TORCH}/distributed/utils.py", 1),
        fr("__init__", f"{TORCH}/nn/parallel/distributed.py", 9),
        fr("<module>", CELL, 2),
    ]
    bwd = [
        fr("__torch_function__", "/work/torchmagic/distributed/ddp.py", 1),
        fr("backward", f"{TORCH}/_tensor.py", 600),
        fr("<module>", CELL, 6),
    ]
    dt = [
        fr("<lambda>", f"{TORCH}/distributed/tensor/_api.py", 1),
        fr("forward", f"{TORCH}/nn/modules/linear.py", 1),
        fr("<module>", CELL, 8),
    ]
    out = to_collectives(
        [entry(1, "gloo:broadcast", ddp), entry(2, "gloo:all_reduce", bwd), entry(3, "gloo:all_reduce", dt)], CELL
    )
    assert [c.via for c in out] == ["DDP __init__", "backward", "DTensor"]


def test_only_new_entries_of_this_cell() -> None:
    frames = [fr("<module>", CELL, 2)]
    entries = [
        entry(1, "gloo:barrier", frames, t=5),
        entry(2, "gloo:barrier", frames, t=20),
        entry(3, "gloo:barrier", frames, t=30),
    ]
    assert [c.record for c in to_collectives(entries, CELL, after=1, since_ns=10)] == [2, 3]
    assert [c.record for c in to_collectives(entries, CELL, after=2)] == [3]


def test_outside_the_cell_and_pending_and_groups() -> None:
    e = entry(1, "gloo:all_gather", [fr("f", "/home/u/lib.py", 3)], retired=False, pg=("3", "mesh_tp"))
    (c,) = to_collectives([e], CELL, groups=group_names({"3": {"desc": "mesh_tp", "ranks": "[0, 1]"}}))
    assert (c.line, c.via, c.done, c.group) == (0, "f", False, "mesh_tp [0, 1]")

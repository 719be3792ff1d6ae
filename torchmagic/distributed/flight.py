"""Every collective a rank issued, read from PyTorch's flight recorder.

Why the flight recorder (``TORCH_FR_BUFFER_SIZE``) and not a torch function
mode or the profiler: it sits in c10d itself, so it sees every collective
whoever issues it — the user's ``dist.all_reduce``, DDP's bucket
all-reduces from inside backward, FSDP's all-gathers, DTensor's
redistributions, pipelining's send/recv — with the input sizes, dtypes, the
process group and the Python stack that issued it (so each one gets its cell
line).  It costs nothing in Python per op, pushes no mode, and leaves the
profiler free for the user.  Measured on this machine: 100 all-reduces of
4 MiB take the same time with and without it (benchmarks/bench_distributed.py).

The recorder is a ring buffer: after each cell we read the entries newer
than the last one seen; the buffer size (``distributed_max_collectives``)
bounds both memory and the cost of reading (about 9 µs per entry).  The
conversion from entries to :class:`~torchmagic.distributed.report.Collective`
is pure, so it is tested without a process group.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from torchmagic.distributed.report import Collective
from torchmagic.i18n import N_, tr

__all__ = [
    "ENV",
    "enable",
    "read_entries",
    "to_collectives",
    "group_names",
    "op_name",
    "dtype_name",
    "describe",
    "via_text",
]

ENV = "TORCH_FR_BUFFER_SIZE"

# The flight recorder's dtype names (c10d's ScalarType names) as torch spells them.
_DTYPES = {
    "Float": "float32",
    "Double": "float64",
    "Half": "float16",
    "BFloat16": "bfloat16",
    "Long": "int64",
    "Int": "int32",
    "Short": "int16",
    "Char": "int8",
    "Byte": "uint8",
    "Bool": "bool",
    "ComplexFloat": "complex64",
    "ComplexDouble": "complex128",
    "Float8_e4m3fn": "float8_e4m3fn",
    "Float8_e5m2": "float8_e5m2",
}
_ITEMSIZE = {
    "float32": 4,
    "float64": 8,
    "float16": 2,
    "bfloat16": 2,
    "int64": 8,
    "int32": 4,
    "int16": 2,
    "int8": 1,
    "uint8": 1,
    "bool": 1,
    "complex64": 8,
    "complex128": 16,
    "float8_e4m3fn": 1,
    "float8_e5m2": 1,
}
# backend op names -> the torch.distributed names a learner knows
_OPS = {
    "allreduce": "all_reduce",
    "allgather": "all_gather",
    "_allgather_base": "all_gather",
    "allgather_into_tensor_coalesced": "all_gather",
    "allgather_coalesced": "all_gather",
    "reduce_scatter_tensor_coalesced": "reduce_scatter",
    "_reduce_scatter_base": "reduce_scatter",
    "reducescatter": "reduce_scatter",
    "alltoall": "all_to_all",
    "alltoall_base": "all_to_all",
    "allreduce_coalesced": "all_reduce",
}
# library files -> the area a learner knows, for "via DDP backward"
_AREAS = (
    ("nn/parallel/distributed.py", "DDP"),
    ("distributed/fsdp/", "FSDP"),
    ("distributed/_composable/fsdp/", "FSDP"),
    ("distributed/tensor/parallel/", N_("tensor parallel")),
    ("distributed/tensor/", "DTensor"),
    ("distributed/pipelining/", N_("pipelining")),
    ("distributed/device_mesh.py", "DeviceMesh"),
    ("_functional_collectives.py", N_("functional collectives")),
)
_WORDS = ("tensor parallel", "pipelining", "functional collectives")  # the areas said in words, not by a name
_PLUMBING = frozenset(
    "_wrapped_call_impl _call_impl wrapper inner decorate_context _fn __call__ _run_ddp_forward "
    "_pre_forward _post_forward _engine_run_backward __torch_function__ __torch_dispatch__".split()
)
_OWN = "/torchmagic/"  # our own recording modes can sit in the stack: never a "via"
_DIRECT = ("distributed_c10d.py", "c10d_logger.py")


def enable(entries: int) -> None:
    """Turn the recorder on for process groups created from now on (the pool does this before init)."""
    os.environ[ENV] = str(max(int(entries), 1))


def read_entries() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The recorder's entries (oldest first, with stacks) and its process-group table."""
    import pickle

    import torch._C._distributed_c10d as c10d

    data = pickle.loads(c10d._dump_fr_trace(True, True, False))  # type: ignore[attr-defined]
    return list(data.get("entries", ())), dict(data.get("pg_config", {}))


def op_name(profiling_name: str) -> str:
    """``'gloo:all_reduce'`` -> ``'all_reduce'``; ``'nccl:_allgather_base'`` -> ``'all_gather'``."""
    name = profiling_name.split(":", 1)[-1].strip()
    return _OPS.get(name, name)


def dtype_name(fr_dtype: str) -> str:
    return _DTYPES.get(fr_dtype, fr_dtype.lower())


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _cell_frame(frames: Sequence[Mapping[str, Any]], filename: str) -> int:
    """Index of the innermost frame of the cell (frames run innermost first); -1 when none."""
    for i, f in enumerate(frames):
        if f.get("filename") == filename:
            return i
    return -1


def _via(frames: Sequence[Mapping[str, Any]], cell_index: int) -> str:
    """The library call between the cell line and the collective: 'DDP backward', 'DTensor redistribute'."""
    inner = frames[:cell_index] if cell_index >= 0 else frames
    # walk outward from the cell: the first frame that is neither plumbing nor c10d itself
    for f in reversed(inner):
        path = str(f.get("filename", "")).replace(os.sep, "/")
        name = str(f.get("name", ""))
        if _OWN in path and "/site-packages/torch/" not in path:
            continue
        if path.endswith(_DIRECT):
            return ""
        if name == "backward" and (path.endswith("torch/_tensor.py") or "torch/autograd/" in path):
            return "backward"  # a collective a backward hook issued (DDP's bucket all-reduce)
        area = next((a for key, a in _AREAS if key in path), "")
        plain = name.isidentifier() and (name == "__init__" or not name.startswith("__")) and name not in _PLUMBING
        if area:
            return f"{area} {name}" if plain else area
        if plain and "/torch/" not in path:  # the user's own function, defined in another file or cell
            return name
    return ""


def to_collectives(
    entries: Iterable[Mapping[str, Any]],
    filename: str,
    after: int = -1,
    since_ns: int = 0,
    groups: Mapping[str, str] | None = None,
) -> list[Collective]:
    """The entries newer than record ``after`` and issued at or after ``since_ns``, as plain data.

    ``filename`` is the cell's file: the innermost frame in it gives the line.
    ``groups`` names process groups by their id (the recorder's ``pg_config``).
    """
    out: list[Collective] = []
    for e in entries:
        record = int(e.get("record_id", -1))
        if record <= after or int(e.get("time_created_ns", 0)) < since_ns:
            continue
        frames = list(e.get("frames") or ())
        at = _cell_frame(frames, filename)
        sizes = tuple(tuple(int(d) for d in s) for s in e.get("input_sizes") or ())
        dtypes = [dtype_name(str(d)) for d in e.get("input_dtypes") or ()]
        dtype = dtypes[0] if dtypes else ""
        nbytes = sum(_numel(s) * _ITEMSIZE.get(d, 0) for s, d in zip(sizes, dtypes))
        out.append(
            Collective(
                record=record,
                op=op_name(str(e.get("profiling_name", ""))),
                group=_group(e.get("process_group"), groups or {}),
                shapes=sizes,
                out_shapes=tuple(tuple(int(d) for d in s) for s in e.get("output_sizes") or ()),
                dtype=dtype,
                nbytes=nbytes,
                line=int(frames[at].get("line", 0)) if at >= 0 else 0,
                via=_via(frames, at),
                issued_ns=int(e.get("time_created_ns", 0)),
                done=bool(e.get("retired", True)),
            )
        )
    return out


def _group(pg: Any, groups: Mapping[str, str]) -> str:
    """A group as a learner reads it: 'default' or its name with its ranks."""
    if isinstance(pg, (list, tuple)) and len(pg) == 2:
        pg_id, name = str(pg[0]), str(pg[1])
    else:
        pg_id, name = str(pg), ""
    if name in ("default_pg", "") and pg_id == "0":
        return "default"
    known = groups.get(pg_id) or groups.get(name)
    return known or name or pg_id


def group_names(pg_config: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Group id -> 'desc ranks' from the recorder's ``pg_config`` ('mesh_tp [0, 1]')."""
    names: dict[str, str] = {}
    for key, conf in pg_config.items():
        desc = str(conf.get("desc") or conf.get("name") or key)
        ranks = str(conf.get("ranks", ""))
        names[str(key)] = f"{desc} {ranks}".strip()
    return names


def via_text(via: str) -> str:
    """A ``via`` as a person reads it: an area said in words is translated, the function name after it is code."""
    for words in _WORDS:
        if via == words or via.startswith(words + " "):
            return tr(words) + via[len(words) :]
    return via


def describe(c: Collective) -> str:
    """'all_reduce (4,) float32' — what a rank waits in, in a few words."""
    shapes = ", ".join("(" + ", ".join(map(str, s)) + ("," if len(s) == 1 else "") + ")" for s in c.shapes[:2])
    more = " …" if len(c.shapes) > 2 else ""
    return " ".join(p for p in (c.op, shapes + more, c.dtype) if p)

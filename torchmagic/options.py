"""Every option torchmagic has: one traitlets trait each, one name and one default.

:class:`Options` holds the traits (``%config TorchMagics`` lists them: the
magics class inherits them; ``c.TorchMagics.<name> = ...`` in
``ipython_config.py`` sets them for every session).  Each area reads its
options through a small dataclass whose fields are named exactly like the
traits (``TraceOptions.trace_max_rows``), filled by :func:`options_for`
from the live magics object or from the defaults below, so an option keeps
its name from the trait down to the code that uses it, and its default
lives here only.  Importing this module imports traitlets, not torch or
IPython.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from traitlets import Bool, Enum, Float, Int, Unicode
from traitlets.config import Configurable

__all__ = ["Options", "options_for"]

T = TypeVar("T")


class Options(Configurable):
    """torchmagic's options (the traits of ``TorchMagics``)."""

    # -- all magics ------------------------------------------------------------
    language = Unicode(
        "auto",
        help="The language of explanations, hints, warnings and labels: 'en', 'zh_CN' (简体中文), or "
        "'auto' for the locale of the kernel process (LANGUAGE, LC_ALL, LC_MESSAGES, LANG), English "
        "when there is no catalog for it. Code, shapes, dtypes and PyTorch's own messages stay as they are.",
    ).tag(config=True)

    # -- %tensorinfo ---------------------------------------------------------
    stats_max_elements = Int(
        1_000_000,
        help="Tensors with more elements than this get statistics from a strided "
        "sample of about this many elements (labelled as a sample) instead of "
        "every value, so huge tensors answer quickly.",
    ).tag(config=True)
    preview_items = Int(
        6, help="How many values per dimension the value preview of a large tensor shows (first and last half)."
    ).tag(config=True)
    preview_max_elements = Int(
        64,
        help="Tensors with at most this many elements are previewed whole, at any rank, with brackets "
        "that show the nesting (as print shows them); larger ones show the first and last values of "
        "their first matrix.",
    ).tag(config=True)
    precision = Int(4, help="Significant digits for floats in reports.").tag(config=True)
    histogram_bins = Int(24, help="Number of bins in the value histogram.").tag(config=True)
    image_max_frames = Int(
        16, help="With --image, at most this many images/frames are drawn per tensor."
    ).tag(config=True)
    summary_max_elements = Int(
        65_536,
        help="One-line summaries (%tensorinfo with no argument, --short, tensor_display) read at most "
        "this many values of a tensor, a strided sample marked with ~, so listing many big tensors stays quick.",
    ).tag(config=True)
    tensor_display = Enum(
        ["repr", "summary"],
        "repr",
        help="'summary': a cell whose value is a tensor shows a one-line summary (shape, dtype, device, "
        "grad, range, mean/std, NaN/Inf) above torch's own repr, in notebooks (HTML) and terminals; "
        "torch.Tensor.__repr__ is not changed.  'repr' (the default): torch's repr alone.  "
        "Removed with %unload_ext torchmagic.",
    ).tag(config=True)

    # -- %%tensorinfo (cell trace) and the error explainer --------------------
    trace_max_rows = Int(
        200,
        help="%%tensorinfo shows at most this many rows (distinct op sites); further ops "
        "are counted in the summary line, so huge loops stay readable and memory stays bounded.",
    ).tag(config=True)
    trace_max_shapes = Int(
        4,
        help="Per row, how many distinct input/output shape combinations are listed; "
        "further ones are counted as '… n more with other shapes'.",
    ).tag(config=True)
    trace_max_aten = Int(
        40, help="With --deep, at most this many distinct aten ops are listed under one op."
    ).tag(config=True)
    trace_modules = Bool(
        True,
        help="%%tensorinfo files each op under the nn.Module call it ran in (net.conv1 › conv2d), "
        "in the order the data flowed, with a module summary table (type, input → output shapes, "
        "parameter elements, time share) and identical layers folded ×N.  Uses two global module "
        "hooks while the cell runs; set False to list ops by line only.",
    ).tag(config=True)
    nan_watch = Bool(
        False,
        help="After every cell, say which op made its first NaN or ±Inf from finite inputs (line, "
        "sub-expression, op, counts and why), without a full trace: a light TorchFunctionMode runs "
        "while the cell runs (about 1 µs per op on the CPU; on a GPU values are read once at the end of "
        "the cell).  %tensorinfo --nan on|off sets it.",
    ).tag(config=True)
    explain_errors = Bool(
        True,
        help="When a cell fails inside a torch op, show which operands (by name, with shapes) "
        "and which dims clash, plus hints for common mistakes, under the traceback. "
        "Reads the failing frames only: nothing is re-run.  Set False to turn it off.",
    ).tag(config=True)

    # -- %%autograd / %autograd ------------------------------------------------
    autograd_max_nodes = Int(
        5000,
        help="%%autograd reads at most this many nodes of a backward graph; the rest is "
        "counted and reported instead of drawn.",
    ).tag(config=True)
    autograd_collapse = Bool(
        True,
        help="Fold long runs of identical blocks (e.g. 300 Linear+Tanh layers) into one box "
        "in graphs larger than autograd_collapse_above nodes.",
    ).tag(config=True)
    autograd_collapse_above = Int(
        120, help="Graphs with more nodes than this get their repeated blocks collapsed."
    ).tag(config=True)
    autograd_group_modules = Bool(
        False,
        help="Fold each nn.Module's parameters (weight, bias and their transposes) into the op "
        "that uses them, so a model's graph shows one box per layer (same as --modules).",
    ).tag(config=True)
    autograd_fold = Bool(
        True,
        help="In graphs larger than autograd_fold_above nodes, draw each nn.Module call as one box "
        "(its inside opens below the graph, or with --expand NAME); False draws every node.",
    ).tag(config=True)
    autograd_fold_above = Int(
        60, help="Graphs with more backward nodes than this are folded by module."
    ).tag(config=True)
    autograd_fold_boxes = Int(
        40,
        help="A folded graph opens whole levels of nested modules (the model, then each layer) "
        "while it shows at most this many boxes.",
    ).tag(config=True)
    autograd_min_repeats = Int(
        4, help="A block must repeat at least this many times in a row to be collapsed."
    ).tag(config=True)
    autograd_value_elements = Int(
        16,
        help="Gradients with at most this many elements are shown value by value; larger ones "
        "as shape and norm.",
    ).tag(config=True)
    autograd_max_calls = Int(
        3,
        help="backward() calls of one cell recorded in detail (graph, every leaf's .grad before, added, "
        "after); later calls are still counted and checked for gradient accumulation, and a training "
        "loop is then followed through hooks on its parameters (loss, gradient flow).",
    ).tag(config=True)
    jacobian_max_elements = Int(
        256,
        help="--jacobian is computed when (output elements) x (leaf elements) is at most this.",
    ).tag(config=True)

    # -- %%device / %device ----------------------------------------------------
    device_top_ops = Int(
        10, help="%%device lists this many of the slowest (op, input shapes) groups."
    ).tag(config=True)
    device_top_tensors = Int(
        5, help="%%device lists this many of the largest tensors the cell created."
    ).tag(config=True)
    device_op_events = Int(
        512,
        help="CUDA/MPS: pairs of timing events created before the recorded run for per-op, "
        "per-module and per-backward-step device times; calls beyond this many are counted but not timed.",
    ).tag(config=True)
    device_max_rows = Int(
        50, help="%%device / %device model show at most this many transfer, sync-point or module rows."
    ).tag(config=True)
    device_repeats = Int(
        3, help="%%device -n N without -r repeats the timing this many times (like %timeit -r)."
    ).tag(config=True)

    # -- %%distributed / %distributed ---------------------------------------------
    distributed_ranks = Int(
        2, help="%distributed start / %%distributed without -n start this many ranks."
    ).tag(config=True)
    distributed_backend = Unicode(
        "auto",
        help="Process-group backend: auto (nccl when every rank has its own GPU, else gloo), "
        "gloo, nccl or mpi.",
    ).tag(config=True)
    distributed_timeout = Float(
        5.0,
        help="Seconds a rank may wait in one collective before it gives up; the cell is then stopped "
        "and the report says which rank waited in what, at which line.  --timeout sets it for one cell.",
    ).tag(config=True)
    distributed_start_timeout = Float(
        120.0, help="Seconds to wait for the rank processes to start and join before giving up."
    ).tag(config=True)
    distributed_max_collectives = Int(
        256,
        help="Collectives each rank keeps per cell (the size of PyTorch's flight recorder buffer); "
        "older ones are counted, not listed.  Read when the pool starts.",
    ).tag(config=True)
    distributed_max_rows = Int(
        50, help="%%distributed lists at most this many collective rows (and trace rows per rank)."
    ).tag(config=True)
    distributed_value_chars = Int(
        2000, help="The value of each rank's last line is cut after this many characters."
    ).tag(config=True)


_DEFAULTS: Options | None = None


def options_for(cls: type[T], source: Any = None, **given: Any) -> T:
    """The options dataclass ``cls`` filled from ``source``'s traits (or the defaults).

    Fields named like a trait take the trait's value; the rest (per-call
    flags such as ``--deep``) take ``given`` or their dataclass default.
    ``given`` also overrides a trait for one call (``--max-rows 50``).
    """
    global _DEFAULTS
    if source is None:
        if _DEFAULTS is None:
            _DEFAULTS = Options()
        source = _DEFAULTS
    traits = Options.class_trait_names(config=True)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in given:
            values[f.name] = given.pop(f.name)
        elif f.name in traits:
            values[f.name] = getattr(source, f.name)
    if given:
        raise TypeError(f"{cls.__name__} has no option {', '.join(sorted(given))}")
    return cls(**values)

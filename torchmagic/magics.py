"""The IPython magics: argument parsing and wiring, nothing else.

Each magic parses its line, asks a collector for a report (running the cell
through :class:`torchmagic.core.cell.Cell` where there is one) and shows the
report.  Every option users can set lives here as a documented trait, so
``%config TorchMagics`` lists them all and ``c.TorchMagics.<name> = ...`` in
``ipython_config.py`` sets them for every session.
"""

from __future__ import annotations

from typing import Any, Callable

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import Bool, Int

from torchmagic.core.args import parse_line
from torchmagic.core.report import Report, show

__all__ = ["TorchMagics"]


@magics_class
class TorchMagics(Magics):
    """torchmagic's magics and their options (``%config TorchMagics``)."""

    shell: Any  # always set: the extension loader passes the shell

    # -- %tensorinfo ---------------------------------------------------------
    stats_max_elements = Int(
        1_000_000,
        help="Tensors with more elements than this get statistics from a strided "
        "sample of about this many elements (labelled as a sample) instead of "
        "every value, so huge tensors answer quickly.",
    ).tag(config=True)
    preview_items = Int(
        6, help="How many values per dimension the value preview shows (first and last half)."
    ).tag(config=True)
    precision = Int(4, help="Significant digits for floats in reports.").tag(config=True)
    histogram_bins = Int(24, help="Number of bins in the value histogram.").tag(config=True)
    image_max_frames = Int(
        16, help="With --image, at most this many images/frames are drawn per tensor."
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
    explain_errors = Bool(
        True,
        help="When a cell fails inside a torch op, show which operands (by name, with shapes) "
        "and which dims clash, plus hints for common mistakes, under the traceback. "
        "Reads the failing frames only: nothing is re-run.  Set False to turn it off.",
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self._hooks: list[tuple[str, Callable[..., Any]]] = []

    # -- lifecycle -------------------------------------------------------------
    def install_hooks(self) -> None:
        """Register event callbacks (called once by the extension loader)."""
        self._register("post_run_cell", self._explain_error)

    def _explain_error(self, result: Any) -> None:
        """post_run_cell: explain a failing cell's torch error (see ``explain_errors``)."""
        exc = getattr(result, "error_in_exec", None)
        if exc is None or not self.explain_errors:
            return
        from torchmagic.trace.failing import show_explanation

        show_explanation(exc, self.shell)

    def remove_hooks(self) -> None:
        """Undo :meth:`install_hooks`; called on ``%unload_ext``."""
        for event, fn in self._hooks:
            try:
                self.shell.events.unregister(event, fn)
            except ValueError:
                pass
        self._hooks.clear()

    def _register(self, event: str, fn: Callable[..., Any]) -> None:
        self.shell.events.register(event, fn)
        self._hooks.append((event, fn))

    # -- helpers ---------------------------------------------------------------
    def _emit(self, report: Report, out: str | None) -> None:
        """Show the report, and store it as ``out`` in the user namespace if asked."""
        if out:
            if not out.isidentifier():
                raise UsageError(f"-o needs a Python name, not {out!r}")
            self.shell.user_ns[out] = report
        show(report, self.shell)

    def _info_options(self, **extra: Any) -> Any:
        from torchmagic.tensorinfo.inspect import InfoOptions

        return InfoOptions(
            stats_max_elements=self.stats_max_elements,
            preview_items=self.preview_items,
            precision=self.precision,
            histogram_bins=self.histogram_bins,
            image_max_frames=self.image_max_frames,
            **extra,
        )

    def _trace_cell(self, line: str, cell: str, args: Any, exprs: list[str]) -> Any:
        __tracebackhide__ = True
        from torchmagic.trace.run import TraceOptions, trace_cell

        if exprs:
            raise UsageError(f"%%tensorinfo takes options only, not {' '.join(exprs)!r}")
        if args.max_rows is not None and args.max_rows < 1:
            raise UsageError("--max-rows needs a positive number")
        if args.out and not args.out.isidentifier():
            raise UsageError(f"-o needs a Python name, not {args.out!r}")
        options = TraceOptions(
            deep=args.deep,
            view="source" if args.source else "table",
            max_rows=args.max_rows or self.trace_max_rows,
            max_shapes=self.trace_max_shapes,
            max_children=self.trace_max_aten,
        )
        return trace_cell(
            self.shell, cell, f"%%tensorinfo {line}".rstrip(), options, lambda r: self._emit(r, args.out)
        )

    # -- magics ------------------------------------------------------------------
    @magic_arguments()
    @argument("-o", "--out", metavar="NAME", help="Store the report object in the variable NAME.")
    @argument(
        "--image",
        action="store_true",
        help="Also draw tensors that are pictures: (H, W), (C, H, W), (N, C, H, W), (N, T, C, H, W).",
    )
    @argument("--deep", action="store_true", help="Cell form: also list the aten ops under each op.")
    @argument(
        "--source",
        action="store_true",
        help="Cell form: show the cell's source annotated with the shapes each line produced.",
    )
    @argument(
        "--max-rows",
        type=int,
        metavar="N",
        default=None,
        help="Cell form: show at most N rows (default: TorchMagics.trace_max_rows).",
    )
    @argument("expressions", nargs="*", help="Names or Python expressions to inspect.")
    @no_var_expand
    @line_cell_magic
    def tensorinfo(self, line: str = "", cell: str | None = None) -> Any:
        """Everything about tensors (line form), or a trace of a cell's torch ops (cell form).

        Line form::

            %tensorinfo x                  # one tensor: rank, shape, dtype, device,
                                           # grad state, strides, memory sharing,
                                           # statistics, preview, histogram
            %tensorinfo x y model.weight o[:, 1]   # several names or expressions
            %tensorinfo --image imgs       # draw (N, C, H, W) images as a grid
            %tensorinfo model              # an nn.Module: parameter/buffer table
            %tensorinfo                    # every tensor and module in the namespace
            %tensorinfo -o r x             # also store the report as `r`

        Cell form: run the cell as usual (same results, variables, output and
        errors) and list every torch operation its lines ran, in order: line,
        sub-expression, op, input and output shapes/dtypes/devices with
        variable names, views vs new tensors, in-place ops (with a warning when
        autograd saved the tensor), ``-1`` resolved, dtype promotion and a
        broadcasting diagram whenever operand shapes differ.  Ops repeated in
        a loop fold into one row with a count.  If the cell fails in a torch
        op, the failing line and each operand's shape are explained above the
        usual traceback::

            %%tensorinfo
            x = torch.randn(4, 3)
            w = torch.randn(5, 3)
            y = x @ w.T + torch.ones(5)     # matmul, then add (broadcast (4, 5) + (5,))
            y.view(2, -1)                   # view: -1 → 10

            %%tensorinfo --source           # the cell annotated: `y = ...  # (4, 5)`
            %%tensorinfo --deep             # plus the aten ops under each op
            %%tensorinfo --max-rows 50 -o t # cap the rows; keep the report as `t`

        Errors in any cell get the same explanation once the extension is
        loaded (``%config TorchMagics.explain_errors = False`` turns it off).
        Row caps: ``TorchMagics.trace_max_rows`` / ``trace_max_shapes``.
        Ops made by reprs, printing, ``len``/iteration and property reads are
        not listed; code inside ``torch.compile`` runs compiled, untraced.

        Expressions are separated by spaces; spaces inside brackets and around
        operators are fine (``o[:, 1]``, ``a + b``).  NumPy arrays, Python
        numbers and nested lists are explained too (what ``torch.from_numpy``
        or ``torch.tensor`` would make of them).  Options are set with
        ``%config TorchMagics.<option> = value`` (see ``%config TorchMagics``).
        """
        __tracebackhide__ = True
        args, exprs = parse_line(self.tensorinfo, line)
        if cell is not None:
            return self._trace_cell(line, cell, args, exprs)
        from torchmagic.tensorinfo.inspect import evaluate, inspect_many
        from torchmagic.tensorinfo.namespace import scan_namespace

        ns = self.shell.user_ns
        if not exprs:
            self._emit(scan_namespace(ns), args.out)
            return None
        items = [(expr, evaluate(expr, self.shell)) for expr in exprs]
        report = inspect_many(items, namespace=ns, options=self._info_options(image=args.image))
        self._emit(report, args.out)
        return None

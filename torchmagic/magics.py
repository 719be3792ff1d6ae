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
from traitlets import Int

from torchmagic.core.args import parse_line
from torchmagic.core.report import Report, show

__all__ = ["TorchMagics"]


@magics_class
class TorchMagics(Magics):
    """torchmagic's magics and their options (``%config TorchMagics``)."""

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

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self._hooks: list[tuple[str, Callable[..., Any]]] = []

    @property
    def ip(self) -> Any:
        """The shell we are registered with (typed loosely: IPython 8 and 9 differ)."""
        return self.shell

    # -- lifecycle -------------------------------------------------------------
    def install_hooks(self) -> None:
        """Register event callbacks (called once by the extension loader)."""

    def remove_hooks(self) -> None:
        """Undo :meth:`install_hooks`; called on ``%unload_ext``."""
        for event, fn in self._hooks:
            try:
                self.ip.events.unregister(event, fn)
            except ValueError:
                pass
        self._hooks.clear()

    def _register(self, event: str, fn: Callable[..., Any]) -> None:
        self.ip.events.register(event, fn)
        self._hooks.append((event, fn))

    # -- helpers ---------------------------------------------------------------
    def _emit(self, report: Report, out: str | None) -> None:
        """Show the report, and store it as ``out`` in the user namespace if asked."""
        if out:
            if not out.isidentifier():
                raise UsageError(f"-o needs a Python name, not {out!r}")
            self.ip.user_ns[out] = report
        show(report, self.ip)

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

    # -- magics ------------------------------------------------------------------
    @magic_arguments()
    @argument("-o", "--out", metavar="NAME", help="Store the report object in the variable NAME.")
    @argument(
        "--image",
        action="store_true",
        help="Also draw tensors that are pictures: (H, W), (C, H, W), (N, C, H, W), (N, T, C, H, W).",
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

        Expressions are separated by spaces; spaces inside brackets and around
        operators are fine (``o[:, 1]``, ``a + b``).  NumPy arrays, Python
        numbers and nested lists are explained too (what ``torch.from_numpy``
        or ``torch.tensor`` would make of them).  Options are set with
        ``%config TorchMagics.<option> = value`` (see ``%config TorchMagics``).
        """
        __tracebackhide__ = True
        args, exprs = parse_line(self.tensorinfo, line)
        if cell is not None:
            raise UsageError("%%tensorinfo (the cell trace) is not available yet")
        from torchmagic.tensorinfo.inspect import evaluate, inspect_many
        from torchmagic.tensorinfo.namespace import scan_namespace

        ns = self.ip.user_ns
        if not exprs:
            self._emit(scan_namespace(ns), args.out)
            return None
        items = [(expr, evaluate(expr, self.ip)) for expr in exprs]
        report = inspect_many(items, namespace=ns, options=self._info_options(image=args.image))
        self._emit(report, args.out)
        return None

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
    autograd_min_repeats = Int(
        4, help="A block must repeat at least this many times in a row to be collapsed."
    ).tag(config=True)
    autograd_value_elements = Int(
        16,
        help="Gradients with at most this many elements are shown value by value; larger ones "
        "as shape and norm.",
    ).tag(config=True)
    autograd_max_calls = Int(
        10,
        help="backward() calls of one cell recorded in detail (graph, .grad before/after); later "
        "calls are still checked for gradient accumulation.",
    ).tag(config=True)
    jacobian_max_elements = Int(
        256,
        help="--jacobian is computed when (output elements) x (leaf elements) is at most this.",
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self._hooks: list[tuple[str, Callable[..., Any]]] = []
        self._grad_ledger: Any = None  # torchmagic.autograd.ledger.GradLedger, made on first use

    # -- lifecycle -------------------------------------------------------------
    def install_hooks(self) -> None:
        """Register event callbacks (called once by the extension loader)."""

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

        ns = self.shell.user_ns
        if not exprs:
            self._emit(scan_namespace(ns), args.out)
            return None
        items = [(expr, evaluate(expr, self.shell)) for expr in exprs]
        report = inspect_many(items, namespace=ns, options=self._info_options(image=args.image))
        self._emit(report, args.out)
        return None

    # -- %%autograd ---------------------------------------------------------------
    def _autograd_options(self, jacobian: bool = False) -> tuple[Any, Any]:
        from torchmagic.autograd.session import GraphOptions
        from torchmagic.autograd.watcher import WatchOptions

        watch = WatchOptions(
            value_elements=self.autograd_value_elements,
            max_nodes=self.autograd_max_nodes,
            max_calls=self.autograd_max_calls,
            jacobian=jacobian,
            jacobian_max_elements=self.jacobian_max_elements,
            digits=self.precision,
        )
        graph = GraphOptions(
            collapse=self.autograd_collapse,
            collapse_above=self.autograd_collapse_above,
            min_repeats=self.autograd_min_repeats,
            modules=self.autograd_group_modules,
        )
        return watch, graph

    @magic_arguments()
    @argument("-o", "--out", metavar="NAME", help="Store the report object in the variable NAME.")
    @argument(
        "--jacobian",
        action="store_true",
        help="Also show the Jacobian of the output w.r.t. the leaves and the v·J that "
        "backward() computed (small functions only, see jacobian_max_elements).",
    )
    @argument("--no-collapse", action="store_true", help="Draw every node, even repeated blocks.")
    @argument(
        "--modules",
        action="store_true",
        help="One box per layer: fold each module's parameters into the op that uses them.",
    )
    @argument("expressions", nargs="*", help="Line form: the tensor whose graph to show.")
    @no_var_expand
    @line_cell_magic
    def autograd(self, line: str = "", cell: str | None = None) -> Any:
        """Make autograd visible: the graph a cell built and what each backward() did.

        Cell form: run the cell and show

        * the backward graph it built (from tensors with a grad_fn the cell
          assigned, and every tensor backward() was called on, back to the
          leaves), drawn as SVG in notebooks and as a tree in terminals; hover
          a box for shapes, saved tensors and gradients;
        * every backward() / torch.autograd.grad call with each leaf's .grad
          before -> after, and a warning when a gradient accumulated onto an
          earlier one that was never zeroed (also across cells);
        * what autograd did not track: torch.no_grad(), inference_mode(),
          .detach() cuts, and in-place changes through .data after saving;
        * autograd errors (second backward, in-place modification) in plain
          words; the cell still fails with the original error.

        Examples::

            %%autograd
            w = torch.tensor([1., 2.], requires_grad=True)
            loss = (w * w).sum()
            loss.backward()              # run the cell twice: accumulation warning

            %%autograd --jacobian
            x = torch.tensor([1., 2.], requires_grad=True)
            y = x ** 2
            y.backward(gradient=torch.tensor([1., 0.5]))   # shows J, v and v·J

            %autograd loss                # line form: the graph leading to `loss`
            %autograd -o r loss           # keep the report: r.svg, r.to_dot(), r.to_dict()
            %autograd --modules loss      # one box per layer: parameters folded in

        --jacobian runs extra backward passes through the graph (never
        touching .grad); hooks you registered on tensors fire for them too.
        Top-level ``await`` is not supported inside the cell.  Options:
        ``%config TorchMagics`` (autograd_max_nodes, autograd_collapse,
        autograd_collapse_above, autograd_min_repeats, autograd_group_modules,
        autograd_value_elements, autograd_max_calls, jacobian_max_elements).
        Large graphs: long runs of identical blocks are drawn as one box
        (``--no-collapse`` draws everything) and at most autograd_max_nodes
        nodes are read.
        """
        __tracebackhide__ = True
        args, exprs = parse_line(self.autograd, line)
        if args.out and not args.out.isidentifier():
            raise UsageError(f"-o needs a Python name, not {args.out!r}")  # before the cell runs
        watch, graph_opts = self._autograd_options(jacobian=args.jacobian)
        if args.no_collapse:
            graph_opts.collapse = False
        if args.modules:
            graph_opts.modules = True
        shell: Any = self.shell
        if cell is None:
            from torchmagic.autograd.session import tensor_report

            if len(exprs) != 1:
                raise UsageError("%autograd needs one tensor, e.g. %autograd loss (or use %%autograd on a cell)")
            value = eval(exprs[0], shell.user_global_ns, shell.user_ns)
            self._emit(tensor_report(exprs[0], value, shell.user_ns, watch, graph_opts), args.out)
            return None
        if exprs:
            raise UsageError(f"%%autograd takes no expressions on its line (got {' '.join(exprs)!r})")
        from torchmagic.autograd.session import AutogradSession
        from torchmagic.autograd.ledger import GradLedger
        from torchmagic.core.cell import Cell

        if self._grad_ledger is None:
            self._grad_ledger = GradLedger()
        compiled = Cell.compile(shell, cell, f"%%autograd {line}".rstrip())
        session = AutogradSession(
            shell.user_ns, compiled.filename, compiled.lines, self._grad_ledger, watch,
            graph_opts, source=cell,
        )
        try:
            result = compiled.run([session.watch()])
        except Exception as exc:
            self._emit_autograd(session, exc, args.out)
            raise
        self._emit_autograd(session, None, args.out)
        return result

    def _emit_autograd(self, session: Any, error: BaseException | None, out: str | None) -> None:
        """Show the report; a bug in torchmagic must not hide the cell's own result or error."""
        try:
            report = session.report(error=error)
        except Exception as exc:  # noqa: BLE001
            import sys

            print(f"torchmagic: could not build the %%autograd report ({type(exc).__name__}: {exc})",
                  file=sys.stderr)
            return
        self._emit(report, out)

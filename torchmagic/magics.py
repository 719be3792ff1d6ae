"""The IPython magics: argument parsing and wiring, nothing else.

A line magic parses its line, asks its area for a report and shows it.  A
cell magic parses its line and hands the cell to the one runner
(:func:`torchmagic.core.runner.run_cell`) with the collectors of its area.
Every option is a trait of :class:`torchmagic.options.Options`, inherited
here, so ``%config TorchMagics`` lists them all and
``c.TorchMagics.<name> = ...`` in ``ipython_config.py`` sets them for every
session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import observe

from torchmagic.core.args import evaluate, parse_line, parse_options
from torchmagic.core.guard import guarded
from torchmagic.core.report import Report, show
from torchmagic.i18n import set_language, tr
from torchmagic.options import Options, options_for

__all__ = ["TorchMagics"]


@magics_class
class TorchMagics(Magics, Options):
    """torchmagic's magics; their options are the traits of :class:`~torchmagic.options.Options`."""

    shell: Any  # always set: the extension loader passes the shell

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self._hooks: list[tuple[str, Callable[..., Any]]] = []
        self._grad_ledger: Any = None  # torchmagic.autograd.ledger.GradLedger, made on first use
        self._nan: Any = None  # torchmagic.trace.watch.CellNanWatch while nan_watch is on
        if not hasattr(self, "_tensor_display"):  # the config may have switched it on already
            self._tensor_display: Any = None  # torchmagic.tensors.display.TensorDisplay, made when switched on
        self._distributed: Any = None  # torchmagic.distributed.front.Front: the rank pool, made on first use
        set_language(self.language)

    @observe("language")
    def _language_changed(self, change: Any) -> None:
        """``%config TorchMagics.language = "zh_CN"``: the next report is in that language."""
        set_language(change["new"])

    @property
    def ip(self) -> Any:
        """The shell we are registered with (typed loosely: IPython 8 and 9 differ)."""
        return self.shell

    # -- lifecycle -------------------------------------------------------------
    def install_hooks(self) -> None:
        """Register event callbacks (called once by the extension loader)."""
        self._register("post_run_cell", self._explain_error)
        self._register("pre_run_cell", self._nan_before)
        self._register("post_run_cell", self._nan_after)
        self._show_tensors(self.tensor_display)

    @observe("tensor_display")
    def _tensor_display_changed(self, change: Any) -> None:
        self._show_tensors(change["new"])

    def _show_tensors(self, mode: str) -> None:
        """``tensor_display``: the one-line summary above displayed tensors (see torchmagic.tensors.display)."""
        current = getattr(self, "_tensor_display", None)  # the config may set the trait during __init__
        if current is None and mode == "repr":
            return
        from torchmagic.tensors.display import TensorDisplay

        if current is None:
            current = self._tensor_display = TensorDisplay(self.shell, self)
        current.use(mode)

    def _own_cell_magic(self, info: Any) -> bool:
        """Is the cell one of torchmagic's cell magics (they explain errors and find NaN themselves)?"""
        raw = (getattr(info, "raw_cell", "") or "").lstrip()
        words = raw[2:].split(None, 1) if raw.startswith("%%") else []
        return bool(words) and words[0] in self.magics["cell"]

    def _explain_error(self, result: Any) -> None:
        """post_run_cell: explain a failing cell's torch error (see ``explain_errors``)."""
        exc = getattr(result, "error_in_exec", None)
        if exc is None or not self.explain_errors:
            return
        if self._own_cell_magic(getattr(result, "info", None)):
            return  # torchmagic's own cell magics explain their errors in their report
        from torchmagic.errors.frames import show_explanation

        with guarded(tr("explaining the error")):  # a callback traceback would bury the user's error
            show_explanation(exc, self.shell)

    def _nan_before(self, info: Any = None) -> None:
        """pre_run_cell: start the NaN watch for this cell (see ``nan_watch``)."""
        if not self.nan_watch or self._own_cell_magic(info):
            return
        from torchmagic.trace.watch import CellNanWatch

        with guarded(tr("starting the NaN watch")):
            if self._nan is None:
                self._nan = CellNanWatch()
            self._nan.start()

    def _nan_after(self, result: Any = None) -> None:
        """post_run_cell: stop the NaN watch and say where the cell's first NaN/±Inf came from."""
        watch = self._nan
        if watch is None or not watch.active:
            return
        with guarded(tr("the NaN watch")):
            report = watch.stop()
            if report is not None:
                show(report, self.ip)
        watch.fence.warn(tr("the NaN watch"))

    def remove_hooks(self) -> None:
        """Undo :meth:`install_hooks`; called on ``%unload_ext``."""
        if self._nan is not None and self._nan.active:
            with guarded(tr("stopping the NaN watch")):
                self._nan.stop()
        self._show_tensors("repr")
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
        """Show the report, and store it as ``out`` in the user namespace if asked.

        A rendering failure is one ``torchmagic:`` line (core.guard), never a
        traceback that would fail or hide the cell's own result.
        """
        if out:  # a valid name: core.args.parse_options checked it
            self.ip.user_ns[out] = report
        with guarded(tr("showing the {magic} report", magic=_magic_name(report))):
            show(report, self.ip)

    def _run(self, cell: str, header: str, start: Callable[[Any], list[Any]], out: str | None) -> Any:
        """Run a cell magic's body under its collectors (see :mod:`torchmagic.core.runner`)."""
        __tracebackhide__ = True
        from torchmagic.core.runner import run_cell

        return run_cell(self.shell, cell, header.rstrip(), start, lambda r: self._emit(r, out))

    def _trace_cell(self, line: str, cell: str, args: Any, exprs: list[str]) -> Any:
        __tracebackhide__ = True
        from torchmagic.trace.collector import TraceCollector
        from torchmagic.trace.options import TraceOptions

        if exprs:
            raise UsageError(tr("{magic} takes options only, not {given}", magic="%%tensorinfo",
                                given=repr(" ".join(exprs))))
        if args.max_rows is not None and args.max_rows < 1:
            raise UsageError(tr("{flag} needs a positive number", flag="--max-rows"))
        options = options_for(
            TraceOptions, self, deep=args.deep, view="source" if args.source else "table",
            trace_max_rows=args.max_rows or self.trace_max_rows,
        )
        return self._run(
            cell, f"%%tensorinfo {line}", lambda c: [TraceCollector(c, options, self.shell)], args.out
        )

    # -- magics ------------------------------------------------------------------
    @magic_arguments()
    @argument("-o", "--out", metavar="NAME", help="Store the report object in the variable NAME.")
    @argument(
        "--image",
        action="store_true",
        help="Also draw tensors that are pictures: (H, W), (C, H, W), (N, C, H, W), (N, T, C, H, W).",
    )
    @argument(
        "--short",
        action="store_true",
        help="One line per expression: kind, shape, dtype, device, grad, range, mean/std, NaN/Inf.",
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
    @argument(
        "--nan",
        choices=("on", "off"),
        default=None,
        help="Line form: turn the NaN watch on or off (TorchMagics.nan_watch): after every cell, "
        "say where its first NaN/±Inf came from.",
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
            %tensorinfo --short x y z      # one line each: shape, dtype, device, grad,
                                           # range, mean/std, NaN/Inf counts
            %tensorinfo                    # every tensor, array and module in the
                                           # namespace, one line each, largest first
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

        ``--deep`` reads the aten ops from PyTorch's profiler, which only
        observes (a TorchDispatchMode would make PyTorch take other internal
        paths for a few ops).  Each op lists the aten ops it ran, down to the
        first one with a kernel of its own (``matmul`` → ``aten.matmul``,
        ``aten.mm``); ``backward()`` lists the ops of the backward formulas.
        Only one profiler can run at a time: when the cell uses
        ``torch.profiler`` itself, or one is already running, ``--deep``
        records no aten ops and says so, and the user's profiler works as
        usual.  Both forms are checked bit for bit against every operator in
        PyTorch's OpInfo database.

        Expressions are separated by spaces; spaces inside brackets and around
        operators are fine (``o[:, 1]``, ``a + b``).  NumPy arrays, Python
        numbers and nested lists are explained too (what ``torch.from_numpy``
        or ``torch.tensor`` would make of them).  Options are set with
        ``%config TorchMagics.<option> = value`` (see ``%config TorchMagics``).
        """
        __tracebackhide__ = True
        args, exprs = parse_line(self.tensorinfo, line)
        if cell is not None:
            if args.nan is not None:
                raise UsageError(tr("{flag} is for the line form: {example}", flag="--nan",
                                    example="%tensorinfo --nan on"))
            return self._trace_cell(line, cell, args, exprs)
        if args.nan is not None:
            if exprs:
                raise UsageError(tr("{magic} takes no expressions", magic="%tensorinfo --nan on|off"))
            from torchmagic.trace.report import NanWatchState

            self.nan_watch = args.nan == "on"
            self._emit(NanWatchState(self.nan_watch), args.out)
            return None
        from torchmagic.tensors.inspect import InfoOptions, inspect_many
        from torchmagic.tensors.namespace import scan_namespace, summarize
        from torchmagic.tensors.summary import SummaryOptions

        ns = self.ip.user_ns
        if not exprs:
            with guarded(tr("building the %tensorinfo report")):
                self._emit(scan_namespace(ns, options_for(SummaryOptions, self)), args.out)
            return None
        items = [(expr, evaluate(expr, self.ip, "%tensorinfo")) for expr in exprs]
        with guarded(tr("building the %tensorinfo report")):
            if args.short:
                report: Report = summarize(items, options_for(SummaryOptions, self))
            else:
                report = inspect_many(items, namespace=ns, options=options_for(InfoOptions, self, image=args.image))
            self._emit(report, args.out)
        return None

    @magic_arguments()
    @argument(
        "-n",
        dest="loops",
        type=int,
        default=None,
        metavar="N",
        help="Timed loops per repeat (clean runs after a warm-up run).",
    )
    @argument(
        "-r",
        dest="repeats",
        type=int,
        default=None,
        metavar="R",
        help="Timed repeats (default: TorchMagics.device_repeats when -n is given).",
    )
    @argument(
        "--compare",
        nargs="+",
        metavar="DEVICE",
        help="Run the cell on each device in turn and show times side by side.",
    )
    @argument(
        "--fallback",
        metavar="DEVICE",
        help="Run here instead when the requested device is not available (with a notice).",
    )
    @argument("-o", "--out", metavar="NAME", help="Store the report object in the variable NAME.")
    @argument("target", nargs="?", help="Cell form: the device. Line form: a model/tensor expression.")
    @no_var_expand
    @line_cell_magic
    def device(self, line: str = "", cell: str | None = None) -> Any:
        """Run a cell on a device and see what it cost; or show device facts.

        Cell form::

            %%device cuda                 # factories and modules built in the cell land on
            x = torch.randn(4096, 4096)   # cuda (torch.device context; restored afterwards)
            y = x @ x

        shows, after the cell's output: wall time, device time from CUDA events
        with one synchronisation at the end (not launch time), the slowest ops
        (count, total, mean, shapes), peak and net memory and the largest tensors
        created, every copy between host and device (line, direction, bytes) and
        the lines that make Python wait for the GPU (``.item()``, ``.cpu()``,
        ``.tolist()``, printing, ``if tensor:``, ``nonzero``, boolean-mask
        indexing, ``torch.where(cond)``, ``unique``, ``bincount``, ``equal``,
        ``allclose``).  Devices: ``cpu``, ``cuda``, ``cuda:1``, ``mps``, ``meta``.

        What the recorded run sees: every torch call the cell makes, directly or
        through nn.Module code (``torch.matmul``, ``F.linear``, the
        ``Tensor.to`` of each parameter in ``model.to("cuda")``), with a
        TorchFunctionMode that changes no result.  It does not see inside a
        call: ``loss.backward()`` is one ``Tensor.backward`` row, a composite
        op is one row, and a sync or copy hidden inside a kernel or a backward
        formula is not listed.  Memory on CUDA comes from the allocator
        (exact); elsewhere it adds up the tensors those calls return, a lower
        bound that misses temporaries inside one op and the gradients backward
        makes.

        ::

            %%device cuda -n 10 -r 5      # warm-up run (recorded), then 5 x 10 clean
                                          # timed runs, like %timeit
            %%device --compare cpu cuda   # run on each device; times side by side, speedup
            %%device cuda --fallback cpu  # no GPU here? run on the CPU, with a notice
            %%device cuda -o rep          # also keep the report as `rep` (rep.to_dict())

        Line form::

            %device                       # devices present, memory, CUDA/cuDNN versions,
                                          # cudnn.benchmark/deterministic, TF32 settings
            %device model                 # where every parameter and buffer of `model`
                                          # lives: per device and per module (count, bytes)

        With ``-n``/``-r`` or ``--compare`` the cell runs several times (the report
        says how often): side effects happen each time.  The first run is recorded
        (ops, transfers, memory), so its time includes torchmagic's recording; the
        repeats run with nothing but the clock around them.  Options:
        ``%config TorchMagics`` (``device_*``).
        """
        __tracebackhide__ = True
        if cell is None:
            return self._device_line(line)
        args = parse_options(self.device, line)
        if args.compare and args.target:
            raise UsageError(tr("give one device or --compare DEVICE DEVICE..., not both"))
        devices = list(args.compare) if args.compare else [args.target] if args.target else []
        if not devices:
            raise UsageError(
                tr("%%device needs a device: %%device cuda (or cpu, cuda:1, mps, meta), or --compare cpu cuda")
            )
        for flag, value in (("-n", args.loops), ("-r", args.repeats)):
            if value is not None and value < 1:
                raise UsageError(tr("{flag} must be at least 1, not {value}", flag=flag, value=value))
        from torchmagic.device.session import DeviceOptions, DeviceSession, resolve_targets

        options = options_for(DeviceOptions, self, loops=args.loops, repeats=args.repeats)
        targets = resolve_targets(devices, args.fallback)  # a UsageError before anything runs
        return self._run(
            cell, f"%%device {line}",
            lambda c: [DeviceSession(c, targets, options, compare=bool(args.compare))], args.out,
        )

    def _device_line(self, line: str) -> None:
        __tracebackhide__ = True
        from torchmagic.device.info import device_info, model_map

        args, exprs = parse_line(self.device, line)
        if args.loops is not None or args.repeats is not None or args.compare or args.fallback:
            raise UsageError(tr("-n, -r, --compare and --fallback belong to the cell form: %%device cuda -n 10"))
        if not exprs:
            with guarded(tr("building the %device report")):
                self._emit(device_info(), args.out)
            return
        if len(exprs) > 1:
            raise UsageError(tr("%device takes one model or tensor expression, e.g. %device model"))
        expr = exprs[0]
        shell: Any = self.ip
        try:
            obj = evaluate(expr, shell, "%device")
        except UsageError as exc:
            if expr.split(":")[0] not in ("cpu", "cuda", "mps", "meta", "xpu"):
                raise
            raise UsageError(
                tr("{error} (to run a cell on a device use the cell form: %%device {expr})", error=exc, expr=expr)
            ) from None
        with guarded(tr("building the %device {expr} report", expr=expr)):
            report = model_map(obj, expr, max_rows=self.device_max_rows)
            if report is None:
                raise UsageError(
                    tr("%device {expr}: expected an nn.Module, a tensor or a dict/list of tensors, got {type}",
                       expr=expr, type=type(obj).__name__)
                )
            self._emit(report, args.out)
        return

    # -- %%autograd ---------------------------------------------------------------
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
    @argument(
        "--expand",
        metavar="NAME",
        action="append",
        default=[],
        help="Draw the module call NAME (e.g. enc.layers.0) open in a graph folded by module; "
        "repeat for several.",
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
          Large graphs are folded by module: one box per nn.Module call,
          whole levels opened while the picture stays small; each box opens
          below the graph (--expand NAME draws one open in it);
        * every backward() / torch.autograd.grad call with each leaf's .grad
          before, what the call added, and after, and a warning when a
          gradient accumulated onto an earlier one that was never zeroed (also
          across cells) or holds NaN/inf (naming the op where it appeared);
        * a training loop (4 or more backward calls) as one summary: loss per
          step, optimizer steps, each layer's gradient norm and update/weight
          ratio, with vanishing and exploding layers flagged;
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

            %%autograd --expand enc.layers.0    # a folded model with one layer drawn open
            loss = enc(src).pow(2).mean()
            loss.backward()

            %autograd loss                # line form: the graph leading to `loss`
            %autograd -o r loss           # keep the report: r.svg, r.to_dot(), r.to_dict()
            %autograd --modules loss      # one box per layer: parameters folded in

        --jacobian runs extra backward passes through the graph (never
        touching .grad); hooks you registered on tensors fire for them too.
        Top-level ``await`` is not supported inside the cell.  Options:
        ``%config TorchMagics`` (autograd_max_nodes, autograd_fold,
        autograd_fold_above, autograd_fold_boxes, autograd_collapse,
        autograd_collapse_above, autograd_min_repeats, autograd_group_modules,
        autograd_value_elements, autograd_max_calls, jacobian_max_elements).
        After the first autograd_max_calls backward calls of a loop, the loop
        is followed through hooks on its parameters (no per-op recording).
        Large graphs: long runs of identical blocks are drawn as one box
        (``--no-collapse`` draws everything) and at most autograd_max_nodes
        nodes are read.
        """
        __tracebackhide__ = True
        args, exprs = parse_line(self.autograd, line)
        from torchmagic.autograd.options import GraphOptions, WatchOptions
        from torchmagic.i18n import tr

        watch = options_for(WatchOptions, self, jacobian=args.jacobian)
        graph = options_for(GraphOptions, self, expand=tuple(args.expand))
        if args.no_collapse:
            graph.autograd_collapse = graph.autograd_fold = False
        if args.modules:
            graph.autograd_group_modules = True
        shell: Any = self.ip
        if cell is None:
            from torchmagic.autograd.session import tensor_report

            if len(exprs) != 1:
                raise UsageError(tr("%autograd needs one tensor, e.g. %autograd loss (or use %%autograd on a cell)"))
            value = evaluate(exprs[0], shell, "%autograd")
            with guarded(tr("building the %autograd report")):
                self._emit(tensor_report(exprs[0], value, shell.user_ns, watch, graph), args.out)
            return None
        if exprs:
            raise UsageError(tr("%%autograd takes no expressions on its line (got {got})", got=repr(" ".join(exprs))))
        from torchmagic.autograd.ledger import GradLedger
        from torchmagic.autograd.session import AutogradSession

        if self._grad_ledger is None:
            self._grad_ledger = GradLedger()
        ledger = self._grad_ledger
        return self._run(
            cell, f"%%autograd {line}", lambda c: [AutogradSession(c, ledger, watch, graph)], args.out
        )

    # -- %%distributed ---------------------------------------------------------------
    def _front(self) -> Any:
        if self._distributed is None:
            from torchmagic.distributed.front import Front

            self._distributed = Front(self)
        return self._distributed

    def stop_distributed(self) -> None:
        """Stop the rank pool, if any (``%unload_ext`` calls this: no rank process outlives it)."""
        if self._distributed is not None:
            self._distributed.stop()

    @magic_arguments()
    @argument(
        "-n", type=int, default=None, metavar="N", help="Number of ranks (default: TorchMagics.distributed_ranks)."
    )
    @argument("--backend", metavar="NAME", help="gloo, nccl, mpi or auto (default: TorchMagics.distributed_backend).")
    @argument("--no-init", action="store_true", help="Do not call init_process_group: the cell's code does.")
    @argument("--launcher", metavar="NAME", help="How engines start: local (default), mpi, slurm, ssh, external.")
    @argument("--master-addr", metavar="HOST", help="Address of rank 0's store (default: found out from rank 0).")
    @argument(
        "--timeout", type=float, default=None, metavar="S", help="Cell form: seconds a rank may wait in a collective."
    )
    @argument("--trace", action="store_true", help="Cell form: the full %%tensorinfo trace of every rank.")
    @argument("--no-start", action="store_true", help="Cell form: fail instead of starting a pool.")
    @argument("-o", "--out", metavar="NAME", help="Store the report object in the variable NAME.")
    @argument("command", nargs="?", help="Line form: start, stop, restart or status.")
    @no_var_expand
    @line_cell_magic
    def distributed(self, line: str = "", cell: str | None = None) -> Any:
        """Run a cell on N ranks of torch.distributed and see what every rank did.

        Line form: the rank pool (processes that persist across cells, each
        with RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT set and a
        process group initialised, as torchrun would give them)::

            %distributed start -n 4          # gloo on CPU; nccl when each rank has a GPU
            %distributed start -n 2 --no-init   # the cells call init_process_group
            %distributed status              # ranks, hosts, PIDs, alive or dead
            %distributed restart             # a fresh pool (after a rank died)
            %distributed stop                # no rank process is left

        Cell form: run the cell on every rank (a pool starts on first use)::

            %%distributed -n 2
            t = torch.ones(4) * (dist.get_rank() + 1)
            dist.all_reduce(t)
            print(t)
            t.sum()

        shows one report: each rank's output and last value (identical ones
        folded, "ranks 0–3"), every collective any rank issued — including
        those DDP, FSDP, DTensor and pipelining issue inside — with the cell
        line, op, shapes, dtype, bytes, group and which rank arrived late;
        ops whose shapes differ between ranks; for DDP models each rank's
        loss and gradients before and after the all-reduce, with the
        buckets; for DTensors the mesh, placements, global and local shapes
        and a drawing of which rank holds which block; for pipeline stages
        their layers and a timeline of micro-batches with the idle bubbles.

        If a rank fails, the cell fails with one error naming the rank(s);
        the report shows each failing rank's traceback.  Ranks left waiting
        in a collective are released; ranks that wait longer than --timeout
        (mismatched collectives, a rank that never arrives) are stopped and
        the report says which rank waited in what at which line.  The
        process group is rebuilt when a collective broke it; variables on
        every rank survive.  A rank that dies is reported: %distributed
        restart.  Interrupting the kernel interrupts every rank.

        ::

            %%distributed --trace            # plus every rank's %%tensorinfo trace
            %%distributed --timeout 10       # allow slow collectives
            %%distributed --no-start         # fail if no pool is running
            %%distributed -o rep             # keep the report: rep.to_dict()

        Past one machine: ``%distributed start -n 8 --launcher mpi`` (or
        slurm, ssh), or ``--launcher external`` to wait for engines you start
        with ``ipengine --file=...`` on other hosts (see the docs).  Options:
        ``%config TorchMagics`` (distributed_*).
        """
        __tracebackhide__ = True
        args = parse_options(self.distributed, line)
        front = self._front()
        emit = lambda report: self._emit(report, args.out)  # noqa: E731
        if cell is None:
            if args.trace or args.timeout is not None or args.no_start:
                raise UsageError(
                    tr(
                        "{trace}, {timeout} and {no_start} are for the cell form ({magic})",
                        trace="--trace", timeout="--timeout", no_start="--no-start", magic="%%distributed",
                    )
                )
            return front.line(args.command or "status", args, emit)
        if args.command:
            words = repr(args.command)
            raise UsageError(tr("{magic} takes options only, not {words}", magic="%%distributed", words=words))
        return front.cell(cell, f"%%distributed {line}".rstrip(), args, emit)


def _magic_name(report: Report) -> str:
    """The magic a report belongs to, for one-line failure messages."""
    return str(getattr(report, "title", "") or type(report).__name__)

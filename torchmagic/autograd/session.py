"""The collector behind ``%%autograd`` and ``%autograd t``: run, watch, summarise.

:class:`AutogradSession` snapshots the namespace, and while the cell runs
keeps three recorders on: the watcher mode (backward calls, what escapes
autograd), the module hooks (which module call made each backward node) and
the optimizer hooks (a training loop's updates).  Afterwards it turns what
they saw into an :class:`AutogradReport`: the graph from the cell's outputs
(tensors with a ``grad_fn`` the cell bound to a name, and every tensor
``backward()`` was called on), folded by module when it is large, the
backward calls (one loop summary when there are many), what escaped
autograd, warnings and, if the cell failed, the error in plain words.
:func:`tensor_report` is the line form.  Both return plain data only.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import weakref
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import torch

from torchmagic.autograd.collapse import collapse_repeats, group_modules
from torchmagic.autograd.explain import explain, parse_inplace
from torchmagic.autograd.flow import grad_flow
from torchmagic.autograd.fold import Drill, auto_expand, drill_downs, find_calls, fold
from torchmagic.autograd.graph import Graph
from torchmagic.autograd.ledger import GradLedger
from torchmagic.autograd.log import WatchLog
from torchmagic.autograd.modules import ModuleRecorder, annotate
from torchmagic.autograd.notes import accumulation_notes, nonfinite_notes
from torchmagic.autograd.options import GraphOptions, WatchOptions
from torchmagic.autograd.report import AutogradReport, Explanation, Jacobian, LoopSummary, Untracked
from torchmagic.autograd.site import CellSite
from torchmagic.autograd.steps import StepLog
from torchmagic.autograd.values import summarize
from torchmagic.autograd.walk import find_leaves, node_key, saved_freed, walk
from torchmagic.autograd.watcher import AutogradWatcher
from torchmagic.core.cell import Cell
from torchmagic.core.names import iter_named_tensors, user_names
from torchmagic.core.runner import Collector
from torchmagic.i18n import N_, tr, trn

__all__ = ["AutogradSession", "tensor_report", "finish_graph", "LOOP_CALLS"]

_RUNS = itertools.count(1)
LOOP_CALLS = 4  # a cell with at least this many backward() calls gets the loop summary
_next_seq = torch._C._autograd._get_sequence_nr


def finish_graph(graph: Graph | None, options: GraphOptions) -> tuple[Graph | None, list[Drill]]:
    """The graph as drawn (folded by module when large, repeats collapsed) and its drill-downs."""
    if graph is None or not graph.nodes:
        return graph, []
    drills: list[Drill] = []
    given = [index for path in options.expand for index in find_calls(graph, path)]
    if graph.calls and options.autograd_fold and (len(graph.nodes) > options.autograd_fold_above or given):
        view = fold(graph, auto_expand(graph, options.autograd_fold_boxes, given=given))
        drills = drill_downs(graph, view, options.autograd_fold_boxes)
        graph = view
    missing = [path for path in options.expand if not find_calls(graph, path) and not any(
        d.path == path for d in drills)]
    if missing:
        message = tr("--expand: no module call named {names} made nodes of this graph", names=", ".join(missing))
        graph = replace(graph, collapsed=[*graph.collapsed, message])
    limit = options.autograd_fold_boxes if drills else options.autograd_collapse_above
    if options.autograd_collapse and len(graph.nodes) > limit:
        graph = collapse_repeats(graph, min_repeats=options.autograd_min_repeats)
    if options.autograd_group_modules:
        graph = group_modules(graph)
    return graph, drills


def _suspects(ns: Mapping[str, Any], message: str) -> list[str]:
    """Names of tensors that match the shape and version in an in-place error."""
    info = parse_inplace(message)
    if info is None:
        return []
    try:
        shape = tuple(int(s) for s in info["shape"].split(",") if s.strip())
        now = int(info["now"])
    except ValueError:
        return []
    found = []
    for name, t in iter_named_tensors(ns):
        if tuple(t.shape) == shape and t._version == now and name not in found:
            found.append(name)
    return found[:4]


class AutogradSession(Collector):
    """The ``%%autograd`` collector: the recorders while the cell runs, the report after."""

    what = N_("the %%autograd recording")  # tr() where the runner says it

    def __init__(
        self,
        cell: Cell,
        ledger: GradLedger,
        options: WatchOptions,
        graph_options: GraphOptions,
    ) -> None:
        super().__init__()
        self.ns = cell.locals
        self.options = options
        self.graph_options = graph_options
        self.before = {  # name -> tensor before the cell (also `outs[0]`, `d['h']`)
            k: weakref.ref(v) for k, v in iter_named_tensors(self.ns)
        }
        body = "\n".join(cell.lines[cell.first_line - 1:])
        key = hashlib.blake2b(body.encode(), digest_size=6).hexdigest()
        self.site = CellSite(cell.filename, cell.lines, self.ns)
        self.modules = ModuleRecorder(self.fence)
        self.steps = StepLog(self.fence)
        self.watcher = AutogradWatcher(
            self.site, ledger, options, run=next(_RUNS), cell_key=key, modules=self.modules, steps=self.steps
        )
        self.watcher.fence = self.fence
        self.modules.user_hook = self.steps.user_hook = self.watcher.step_aside
        self._stack = contextlib.ExitStack()
        self._seq = 0

    def __enter__(self) -> AutogradSession:
        with contextlib.ExitStack() as stack:
            stack.enter_context(self.modules)
            stack.enter_context(self.steps)
            stack.enter_context(self.watcher)
            self._stack = stack.pop_all()
        self._seq = _next_seq()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._stack.__exit__(*exc_info)

    def _outputs(self) -> list[tuple[str, torch.Tensor]]:
        """Tensors with a grad_fn the cell bound to a name, then live backward roots."""
        out: list[tuple[str, torch.Tensor]] = []
        seen: set[int] = set()
        for name, value in iter_named_tensors(self.ns):
            if id(value) in seen:
                continue
            old = self.before.get(name)
            if (old is not None and old() is value) or value.grad_fn is None:
                continue
            out.append((name, value))
            seen.add(id(value))
        for ref in self.watcher.log.roots:
            t = ref()
            if t is not None and id(t) not in seen and t.requires_grad:
                out.append(("", t))
                seen.add(id(t))
        return out

    def _graph(self, outputs: list[tuple[str, torch.Tensor]]) -> Graph | None:
        """The graph of the cell's outputs, or of its last detailed backward call if that was larger.

        When the last detailed backward went through every output, its graph
        (read before the backward, with the gradients that reached each node)
        is the one: only the leaves' ``.grad`` is read again.
        """
        log = self.watcher.log
        graph: Graph | None = None
        last = log.graphs[-1] if log.graphs else None
        if last is not None and (self.watcher.followed or (outputs and _covers(last, outputs))):
            return _with_grads(last, self.ns, self.options)  # a followed loop: its steps repeat this graph
        if outputs:
            small, digits = self.options.autograd_value_elements, self.options.precision
            graph = walk(
                outputs,
                namespace=self.ns,
                max_nodes=self.options.autograd_max_nodes,
                grad_text=lambda t: summarize(t.grad, small, digits).text,
                cuts=log.live_cuts(),
                saved_cache=log.saved_cache,
                op_grads=log.op_grads,
                op_flags=log.op_flags,
            )
            annotate(graph, self.modules, self.ns)
        if log.graphs and (graph is None or len(log.graphs[-1].nodes) > len(graph.nodes)):
            graph = log.graphs[-1]  # the backward ran through more than the names still reach
        return graph if graph is not None and graph.nodes else None

    def report(self, error: BaseException | None = None) -> AutogradReport:
        if error is not None and not isinstance(error, Exception):
            error = None  # interrupted: what ran so far, no error to explain
        log = self.watcher.log
        names = user_names(self.ns)
        outputs = self._outputs()
        graph, drills = finish_graph(self._graph(outputs), self.graph_options)
        untracked = list(log.untracked)
        for idx, ref in log.outputs.items():
            t = ref()
            if t is not None and idx < len(untracked) and id(t) in names:
                untracked[idx] = replace(untracked[idx], output=names[id(t)])
        jacobians = list(log.jacobians)
        if self.options.jacobian and not log.calls and outputs and error is None:
            jacobians.extend(_jacobian_at_end(outputs, names, self.options))
        leaf_names = {key: names.get(key, "") for key in self.steps.leaves}
        loop = _loop(log, self.steps, self.site, names, leaf_names) if log.calls_total >= LOOP_CALLS else None
        notes = [n for n in log.notes if n.kind != "info"]
        notes[:0] = accumulation_notes(log, leaf_names, loop, self.site, self.ns)
        notes.extend(nonfinite_notes(log))
        notes.extend(n for n in log.notes if n.kind == "info")
        report = AutogradReport(
            title="%%autograd",
            graph=graph,
            calls=list(log.calls),
            calls_total=log.calls_total,
            untracked=untracked,
            notes=notes,
            explanation=self._explanation(error),
            jacobians=jacobians,
            failed=error is not None,
            loop=loop,
            drills=drills,
        )
        if graph is None and not log.calls_total and error is None:
            report.nothing = _nothing_message(self.ns, self.before, untracked, built=_next_seq() > self._seq)
        return report

    def _explanation(self, error: BaseException | None) -> Explanation | None:
        if error is None:
            return None
        root, freed = "", ""
        for exc, failed_graph, label in self.watcher.log.errors:
            if exc is error:
                root = label
                if failed_graph is not None:
                    ops = [n.label for n in failed_graph.nodes if saved_freed(n)]
                    freed = ", ".join(dict.fromkeys(ops))
        return explain(str(error), root, _suspects(self.ns, str(error)), saved_by=freed)


def _covers(graph: Graph, outputs: list[tuple[str, torch.Tensor]]) -> bool:
    """Whether every output's backward node is in ``graph`` (a leaf output: one of its leaves)."""
    seqs = {n.seq for n in graph.nodes if n.seq >= 0}
    leaves = {n.label for n in graph.nodes if n.kind == "leaf"}
    for name, t in outputs:
        fn = t.grad_fn
        if (fn is not None and node_key(fn)[0] not in seqs) or (fn is None and name not in leaves):
            return False
    return True


def _with_grads(graph: Graph, ns: Mapping[str, Any], options: WatchOptions) -> Graph:
    """``graph`` with each named leaf's ``.grad`` as it is now."""
    tensors = dict(iter_named_tensors(ns))
    small, digits = options.autograd_value_elements, options.precision
    nodes = [n.but(grad=summarize(tensors[n.label].grad, small, digits).text)
             if n.kind == "leaf" and n.label in tensors else n for n in graph.nodes]
    return replace(graph, nodes=nodes)


def _loop(log: WatchLog, steps: StepLog, site: CellSite, names: Mapping[int, str],
          leaf_names: Mapping[int, str]) -> LoopSummary:
    """The training-loop summary of a cell with many backward() calls."""
    line = log.lines[-1] if log.lines else 0
    loop_line = site.loop_line(line)
    losses = steps.loss_values()
    optimizers = tuple(dict.fromkeys(
        names.get(key, "") or _name_of(site.namespace, ref()) or tr("an optimizer")
        for key, ref in steps.optimizers.items()
    ))
    flow = grad_flow([(s.step, s.norms) for s in steps.flow], [(u.step, u.updates) for u in steps.updates],
                     leaf_names)
    accumulated = tuple(a.name or leaf_names.get(key, "") or tr("a leaf") for key, a in log.accumulated.items())
    return LoopSummary(
        steps=log.calls_total, line=line, loop_line=loop_line, loop_source=site.source(loop_line),
        root=log.calls[-1].root if log.calls else "", losses=tuple(v for _, v in losses),
        loss_steps=tuple(s for s, _ in losses), optimizers=optimizers, optimizer_steps=steps.optimizer_steps,
        accumulated=accumulated, accumulated_steps=max((a.steps for a in log.accumulated.values()), default=0),
        detailed=len(log.calls), flow=flow,
    )


def _name_of(ns: Mapping[str, Any], obj: object) -> str:
    if obj is None:
        return ""
    return next((k for k, v in list(ns.items()) if v is obj and not k.startswith("_")), "")


def _nothing_message(
    ns: Mapping[str, Any], before: dict[str, weakref.ref[torch.Tensor]], untracked: list[Untracked],
    built: bool,
) -> str:
    if built:
        return tr(
            "Nothing to draw: the cell built an autograd graph but bound no result to a new name "
            "(only named results are drawn). Assign it, e.g. `z = x ** 2`, or call backward() on it."
        )
    if untracked:
        return tr(
            "Nothing to draw: the cell built no autograd graph (its tensor work ran under "
            "torch.no_grad() / inference_mode() or on detached tensors; see below)."
        )
    new = [
        k for k, v in ns.items()
        if isinstance(v, torch.Tensor) and not k.startswith("_")
        and (k not in before or before[k]() is not v)
    ]
    hint = tr(
        " Set requires_grad=True on the tensors you want gradients for, e.g. "
        "`w = torch.randn(3, requires_grad=True)`, or use an nn.Module's parameters."
    )
    wanting = [k for k in new if ns[k].requires_grad]
    if wanting:
        return trn(
            "Nothing to draw yet: {names} requires grad, but the cell computed nothing from "
            "it; the graph starts with the first operation.",
            "Nothing to draw yet: {names} require grad, but the cell computed nothing from "
            "them; the graph starts with the first operation.", len(wanting), names=", ".join(sorted(wanting)[:5])
        )
    if new:
        return trn(
            "Nothing to show: no tensor in this cell requires grad ({names} does not), so autograd "
            "recorded nothing.",
            "Nothing to show: no tensor in this cell requires grad ({names} do not), so autograd "
            "recorded nothing.", len(new), names=", ".join(sorted(new)[:5])
        ) + hint
    return tr("Nothing to show: the cell made no tensors that autograd tracks.") + hint


def _jacobian_at_end(outputs: list[tuple[str, torch.Tensor]], names: dict[int, str],
                     options: WatchOptions) -> list[Jacobian]:
    from torchmagic.autograd.jacobian import finish, jacobian_before

    name, out = outputs[0]
    leaves = find_leaves([out])
    pending = jacobian_before(
        "torch.autograd.grad", [out], None, leaves, names, name, options.jacobian_max_elements
    )
    if pending is None:
        return []
    pending.note = (pending.note + "; " if pending.note else "") + tr(
        "no backward() in the cell: v = ones, i.e. what {code} would add to .grad",
        code=f"{name}{'.sum()' if out.numel() > 1 else ''}.backward()",
    )
    return [finish(pending, [], [])]


def tensor_report(
    expr: str,
    value: Any,
    namespace: Mapping[str, Any],
    options: WatchOptions,
    graph_options: GraphOptions,
) -> AutogradReport:
    """``%autograd t``: the graph leading to ``t`` and the ``.grad`` of its leaves."""
    title = f"%autograd {expr}"
    if not isinstance(value, torch.Tensor):
        return AutogradReport(title=title, nothing=tr("{expr} is a {type}, not a tensor.", expr=expr,
                                                      type=type(value).__name__))
    if not value.requires_grad:
        return AutogradReport(
            title=title,
            nothing=tr(
                "Nothing to show: {expr} does not require grad, so no graph leads to it "
                "(it was made from tensors without requires_grad=True, under torch.no_grad(), "
                "or by .detach()).", expr=expr
            ),
        )
    small, digits = options.autograd_value_elements, options.precision
    names = user_names(namespace)
    graph = walk(
        [(expr if value.grad_fn is not None and id(value) not in names else names.get(id(value), expr), value)],
        namespace=namespace,
        max_nodes=options.autograd_max_nodes,
        grad_text=lambda t: summarize(t.grad, small, digits).text,
    )
    leaves = [(n.label, n.grad) for n in graph.nodes if n.kind == "leaf"]
    drawn, drills = finish_graph(graph, graph_options)
    return AutogradReport(title=title, graph=drawn, leaves=leaves, drills=drills)



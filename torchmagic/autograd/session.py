"""The collector behind ``%%autograd`` and ``%autograd t``: run, watch, summarise.

:class:`AutogradSession` snapshots the namespace, provides the watcher mode
for :meth:`torchmagic.core.cell.Cell.run`, and afterwards turns what it saw
into an :class:`AutogradReport`: the graph from the cell's outputs (tensors
with a ``grad_fn`` the cell bound to a name, and every tensor ``backward()``
was called on), the backward calls, what escaped autograd, warnings and, if
the cell failed, the error in plain words.  :func:`tensor_report` is the line
form.  Both return plain data only.
"""

from __future__ import annotations

import hashlib
import itertools
import weakref
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import torch

from torchmagic.autograd.collapse import collapse_repeats, group_modules
from torchmagic.autograd.explain import explain, parse_inplace
from torchmagic.autograd.graph import Graph
from torchmagic.autograd.ledger import GradLedger
from torchmagic.autograd.options import GraphOptions, WatchOptions
from torchmagic.autograd.report import AutogradReport, Explanation, Note
from torchmagic.autograd.site import CellSite
from torchmagic.autograd.values import summarize
from torchmagic.autograd.walk import find_leaves, walk
from torchmagic.autograd.watcher import AutogradWatcher
from torchmagic.core.cell import Cell
from torchmagic.core.names import iter_named_tensors, user_names
from torchmagic.core.runner import Collector

__all__ = ["AutogradSession", "tensor_report"]

_RUNS = itertools.count(1)


def _finish_graph(graph: Graph | None, options: GraphOptions) -> Graph | None:
    if graph is None or not graph.nodes:
        return graph
    if options.autograd_collapse and len(graph.nodes) > options.autograd_collapse_above:
        graph = collapse_repeats(graph, min_repeats=options.autograd_min_repeats)
    if options.autograd_group_modules:
        graph = group_modules(graph)
    return graph


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
    """The ``%%autograd`` collector: the watcher mode while the cell runs, the report after."""

    what = "the %%autograd recording"

    def __init__(
        self,
        cell: Cell,
        ledger: GradLedger,
        options: WatchOptions,
        graph_options: GraphOptions,
    ) -> None:
        super().__init__()
        namespace = cell.locals
        self.ns = namespace
        self.options = options
        self.graph_options = graph_options
        self.before = {  # name -> tensor before the cell (also `outs[0]`, `d['h']`)
            k: weakref.ref(v) for k, v in iter_named_tensors(namespace)
        }
        body = "\n".join(cell.lines[cell.first_line - 1:])
        key = hashlib.blake2b(body.encode(), digest_size=6).hexdigest()
        self.watcher = AutogradWatcher(
            CellSite(cell.filename, cell.lines, namespace), ledger, options, run=next(_RUNS), cell_key=key
        )
        self.fence = self.watcher.fence

    def __enter__(self) -> AutogradSession:
        self.watcher.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.watcher.__exit__(*exc_info)

    def _outputs(self) -> list[tuple[str, Any]]:
        """Tensors with a grad_fn the cell bound to a name, then live backward roots."""
        out: list[tuple[str, Any]] = []
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

    def report(self, error: BaseException | None = None) -> AutogradReport:
        if error is not None and not isinstance(error, Exception):
            error = None  # interrupted: what ran so far, no error to explain
        log = self.watcher.log
        names = user_names(self.ns)
        small, digits = self.options.autograd_value_elements, self.options.precision
        outputs = self._outputs()
        graph: Graph | None = None
        if outputs:
            graph = walk(
                outputs,
                namespace=self.ns,
                max_nodes=self.options.autograd_max_nodes,
                grad_text=lambda t: summarize(t.grad, small, digits).text,
                cuts=log.live_cuts(),
                saved_cache=log.saved_cache,
                op_grads=log.op_grads,
            )
            if not graph.nodes:
                graph = None
        if graph is None and log.graphs:
            graph = log.graphs[-1]
        graph = _finish_graph(graph, self.graph_options)
        untracked = list(log.untracked)
        for idx, ref in log.outputs.items():
            t = ref()
            if t is not None and idx < len(untracked) and id(t) in names:
                untracked[idx] = replace(untracked[idx], output=names[id(t)])
        jacobians = list(log.jacobians)
        if self.options.jacobian and not log.calls and outputs and error is None:
            jacobians.extend(_jacobian_at_end(outputs, names, self.options))
        explanation: Explanation | None = None
        if error is not None:
            root, freed = "", ""
            for exc, failed_graph, label in log.errors:
                if exc is error:
                    root = label
                    if failed_graph is not None:
                        ops = [n.label for n in failed_graph.nodes if "freed" in n.note]
                        freed = ", ".join(dict.fromkeys(ops))
            explanation = explain(str(error), root, _suspects(self.ns, str(error)), saved_by=freed)
        report = AutogradReport(
            title="%%autograd",
            graph=graph,
            calls=list(log.calls),
            calls_total=log.calls_total,
            untracked=untracked,
            notes=list(log.notes),
            explanation=explanation,
            jacobians=jacobians,
            failed=error is not None,
        )
        if graph is None and not log.calls_total and error is None:
            report.nothing = _nothing_message(self.ns, self.before, untracked)
        if log.calls_total > len(log.calls):
            report.notes.append(Note(
                kind="info",
                message=(
                    f"{log.calls_total} backward calls; the first {len(log.calls)} are shown in "
                    "detail (accumulation is checked for all of them)."
                ),
                fix="%config TorchMagics.autograd_max_calls = N shows more.",
            ))
        return report


def _nothing_message(
    ns: Mapping[str, Any], before: dict[str, weakref.ref[Any]], untracked: list[Any]
) -> str:
    if untracked:
        return (
            "Nothing to draw: the cell built no autograd graph (its tensor work ran under "
            "torch.no_grad() / inference_mode() or on detached tensors; see below)."
        )
    new = [
        k for k, v in ns.items()
        if isinstance(v, torch.Tensor) and not k.startswith("_")
        and (k not in before or before[k]() is not v)
    ]
    hint = (
        " Set requires_grad=True on the tensors you want gradients for, e.g. "
        "`w = torch.randn(3, requires_grad=True)`, or use an nn.Module's parameters."
    )
    wanting = [k for k in new if ns[k].requires_grad]
    if wanting:
        return (
            f"Nothing to draw yet: {', '.join(sorted(wanting)[:5])} "
            f"require{'s' if len(wanting) == 1 else ''} grad, but the cell computed nothing from "
            f"{'it' if len(wanting) == 1 else 'them'}; the graph starts with the first operation."
        )
    if new:
        return (
            f"Nothing to show: no tensor in this cell requires grad "
            f"({', '.join(sorted(new)[:5])} {'do' if len(new) > 1 else 'does'} not), so autograd "
            "recorded nothing." + hint
        )
    return "Nothing to show: the cell made no tensors that autograd tracks." + hint


def _jacobian_at_end(outputs: list[tuple[str, Any]], names: dict[int, str], options: WatchOptions) -> list[Any]:
    from torchmagic.autograd.jacobian import finish, jacobian_before

    name, out = outputs[0]
    leaves = find_leaves([out])
    pending = jacobian_before(
        "torch.autograd.grad", [out], None, leaves, names, name, options.jacobian_max_elements
    )
    if pending is None:
        return []
    pending.note = (pending.note + "; " if pending.note else "") + (
        "no backward() in the cell: v = ones, i.e. what "
        f"{name}{'.sum()' if out.numel() > 1 else ''}.backward() would add to .grad"
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
        return AutogradReport(title=title, nothing=f"{expr} is a {type(value).__name__}, not a tensor.")
    if not value.requires_grad:
        return AutogradReport(
            title=title,
            nothing=(
                f"Nothing to show: {expr} does not require grad, so no graph leads to it "
                "(it was made from tensors without requires_grad=True, under torch.no_grad(), "
                "or by .detach())."
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
    return AutogradReport(title=title, graph=_finish_graph(graph, graph_options), leaves=leaves)

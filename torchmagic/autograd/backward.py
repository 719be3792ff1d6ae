"""Record each ``backward()`` / ``torch.autograd.grad`` call, fenced off from the user's run.

The watcher hands every backward call it sees to :meth:`BackwardRecorder.record`.
Before the call we note each leaf's ``.grad`` (which object, which version:
the accumulation check, see :mod:`torchmagic.autograd.ledger`).  The first
``autograd_max_calls`` calls are recorded in detail: the graph is read while
its saved tensors are still there, and hooks go on every leaf (the gradient
this call sends into it: what it adds to ``.grad``) and on every backward node
(the gradient that reached it, so a NaN or inf can be traced to the node
where it appeared).  After the call we read ``.grad`` again and remove every
hook; later calls only feed the loop summary (:mod:`torchmagic.autograd.steps`).
If any of our bookkeeping fails, the user's call still runs exactly as it
would without torchmagic.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from torchmagic.autograd.follow import Handoff
from torchmagic.autograd.graph import GNode, Graph, topo_order
from torchmagic.autograd.ledger import GradLedger, Where
from torchmagic.autograd.log import Accumulation, NonFinite, WatchLog
from torchmagic.autograd.modules import ModuleRecorder, annotate
from torchmagic.autograd.options import WatchOptions
from torchmagic.autograd.report import BackwardCall, LeafGrad, Note
from torchmagic.autograd.site import CellSite, names_of
from torchmagic.autograd.steps import StepLog
from torchmagic.autograd.values import NONE, Values, nonfinite_text, norm_text, summarize
from torchmagic.autograd.walk import NodeKey, find_leaves, node_key, walk
from torchmagic.core.meta import dtype_name
from torchmagic.i18n import tr, trn

if TYPE_CHECKING:
    from torch.utils.hooks import RemovableHandle

    from torchmagic.autograd.jacobian import Pending

__all__ = ["BackwardRecorder", "NODE_HOOKS", "EVERY_NODE"]

NODE_HOOKS = 2000  # graphs with more backward nodes get no per-node gradient hooks
EVERY_NODE = 100  # graphs up to this size: a hook on every node; larger ones: module outputs only
_MAX_LINES = 1000


@dataclass
class _Call:
    """State of one backward call between before and after (holds leaves only meanwhile)."""

    index: int
    kind: str
    detailed: bool
    roots: list[torch.Tensor]
    gradient: Any  # a tensor, a sequence of them, or None
    retain: bool
    inputs: list[torch.Tensor]
    line: int
    source: str
    names: dict[int, str]
    label: str
    here: Where
    named: list[tuple[str, torch.Tensor]] = field(default_factory=list)  # (name, tensor) in scope
    graph: Graph = field(default_factory=Graph)
    leaves: list[torch.Tensor] = field(default_factory=list)
    state: list[tuple[int, int]] = field(default_factory=list)  # per leaf: (id(.grad) or 0, its version)
    before: dict[int, Values] = field(default_factory=dict)
    received: dict[int, Values] = field(default_factory=dict)  # what reached each leaf (its hook)
    origin: dict[int, str] = field(default_factory=dict)  # leaf -> the backward that left its .grad
    handles: list[RemovableHandle] = field(default_factory=list)
    reached: list[tuple[int, NodeKey, torch.Tensor, torch.Tensor | None]] = field(default_factory=list)
    leaf_nodes: dict[int, int] = field(default_factory=dict)  # graph node id -> id(leaf)
    jacobian: Pending | None = None

    def release(self) -> None:
        """Drop every tensor reference (a failing call's traceback keeps this object)."""
        self.leaves.clear()
        self.reached.clear()
        self.named.clear()
        self.roots = []
        self.inputs = []
        self.gradient = None
        self.jacobian = None

    def unhook(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()


@dataclass
class BackwardRecorder:
    """Everything about backward calls, for the watcher mode to call: :meth:`record` runs one.

    ``run`` and ``cell_key`` say which ``%%autograd`` run this is (the ledger
    tells "this cell", "the previous run of this cell" and "an earlier cell"
    apart by them).  ``modules`` and ``steps`` are the session's module-call
    and training-loop recorders, when it has them.
    """

    site: CellSite
    log: WatchLog
    ledger: GradLedger
    options: WatchOptions
    run: int = 0
    cell_key: str = ""
    modules: ModuleRecorder | None = None
    steps: StepLog = field(default_factory=StepLog)
    handoff: Handoff | None = None  # set after the last detailed call of a loop: the follower takes over

    def record(self, kind: str, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run the user's backward call between our reading of the graph and of ``.grad``.

        Our own bookkeeping is fenced off: if it fails, the call still runs
        exactly as without torchmagic and the report says what was not recorded.
        """
        __tracebackhide__ = True
        self.log.calls_total += 1
        call: _Call | None = None
        try:
            call = self._before(kind, args, kwargs)
        except Exception as exc:  # noqa: BLE001 - never let bookkeeping change the user's run
            self._internal(exc)
        if call is None:  # outside the except block: a failing backward must not chain to ours
            return func(*args, **kwargs)
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            call.unhook()
            try:
                self._failed(call, exc)
            except Exception as ours:  # noqa: BLE001 - the user's error is what propagates
                self._internal(ours)
            finally:
                call.release()
            raise
        call.unhook()
        try:
            self._after(call, result)
        except Exception as exc:  # noqa: BLE001 - never let bookkeeping change the user's run
            self._internal(exc)
        finally:
            call.release()
        return result

    def _internal(self, exc: BaseException) -> None:
        self.log.notes.append(Note(
            kind="info",
            message=tr("torchmagic could not record backward call #{index}: {error}", index=self.log.calls_total,
                       error=f"{type(exc).__name__}: {exc}"),
        ))

    # -- before ---------------------------------------------------------------------
    def _before(self, kind: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Call:
        log = self.log
        index = log.calls_total
        detailed = index <= self.options.autograd_max_calls
        roots, gradient, retain, inputs = _backward_args(kind, args, kwargs)
        line = self.site.line()
        if len(log.lines) < _MAX_LINES:
            log.lines.append(line)
        named = self.site.tensors() if detailed else []  # naming walks the namespace: detailed calls only
        names = names_of(named)
        for t in roots:
            log.roots.append(weakref.ref(t))
        source = self.site.source(line)
        call = _Call(
            index=index, kind=kind, detailed=detailed, roots=roots, gradient=gradient,
            retain=retain, inputs=inputs, line=line, source=source, names=names,
            label=_root_label(roots, names, source), here=Where(self.run, self.cell_key, line), named=named,
        )
        if kind != "torch.autograd.grad":  # autograd.grad never touches .grad
            leaves = find_leaves(roots)
            if inputs:
                wanted = {id(t) for t in inputs}
                leaves = [leaf for leaf in leaves if id(leaf) in wanted]
            call.leaves = leaves
        for leaf in call.leaves:
            grad = leaf.grad
            call.state.append((id(grad), grad._version) if grad is not None else (0, -1))
            where = self.ledger.untouched_since(leaf)
            if where:
                call.origin[id(leaf)] = where.describe(call.here)
        if detailed:
            self._prepare_detail(call)
        return call

    def _prepare_detail(self, call: _Call) -> None:
        """Read the graph and hook the leaves and nodes of a call recorded in detail."""
        small, digits = self.options.autograd_value_elements, self.options.precision
        fns: list[tuple[int, Any]] = []
        call.graph = walk(
            [(call.names.get(id(t), call.label if len(call.roots) == 1 else ""), t) for t in call.roots],
            named=call.named,
            names=call.names,
            max_nodes=self.options.autograd_max_nodes,
            cuts=self.log.live_cuts(),  # the leaves' .grad goes in after the call (_leaf_grads)
            saved_cache=self.log.saved_cache,
            fns_out=fns,
            leaves_out=call.leaf_nodes,
        )
        if self.modules is not None:
            annotate(call.graph, self.modules, self.site.namespace, call.named)
        for leaf in call.leaves:
            call.before[id(leaf)] = summarize(leaf.grad, small, digits)
        received = call.received
        reached = call.reached

        def leaf_hook(key: int) -> Callable[[torch.Tensor], None]:
            def hook(grad: torch.Tensor) -> None:
                received[key] = summarize(grad, small, digits)

            return hook

        def node_hook(nid: int, key: NodeKey) -> Callable[[Any, Any], None]:
            def hook(grad_inputs: Any, grad_outputs: Any) -> None:
                raw = [g.detach() for g in grad_outputs if g is not None]
                if raw and all(g.layout == torch.strided for g in raw):
                    grads = [g.abs() if g.is_complex() else g for g in raw]
                    norm = torch.linalg.vector_norm(
                        torch.stack([torch.linalg.vector_norm(g, dtype=torch.float64) for g in grads])
                    ) if len(grads) > 1 else torch.linalg.vector_norm(grads[0], dtype=torch.float64)
                    reached.append((nid, key, norm, raw[0].clone() if raw[0].numel() <= small else None))

            return hook

        try:
            if len(call.graph.nodes) <= NODE_HOOKS:
                traced = _traced(call.graph)
                for nid, fn in fns:
                    if nid in traced:
                        call.handles.append(fn.register_hook(node_hook(nid, node_key(fn))))
            fns.clear()
            for leaf in call.leaves:
                if leaf.requires_grad:
                    call.handles.append(leaf.register_hook(leaf_hook(id(leaf))))
            if self.options.jacobian and call.roots:
                from torchmagic.autograd.jacobian import jacobian_before

                call.jacobian = jacobian_before(
                    call.kind, call.roots, call.gradient, call.inputs or call.leaves, call.names, call.label,
                    self.options.jacobian_max_elements,
                )
        except BaseException:
            call.unhook()
            raise

    # -- after ----------------------------------------------------------------------
    def _after(self, call: _Call, result: Any) -> None:
        self._accumulation(call)
        loss = self.steps.loss(call.index, call.roots[0]) if len(call.roots) == 1 else None
        if not call.detailed:
            self.steps.gradients(call.index, call.leaves)
            return
        log = self.log
        small, digits = self.options.autograd_value_elements, self.options.precision
        leaf_grads = self._leaf_grads(call)
        self.steps.gradients(call.index, call.leaves, [g.after.norm for g in leaf_grads])  # already read
        results: tuple[tuple[str, str], ...] = ()
        if call.kind == "torch.autograd.grad" and isinstance(result, tuple):
            results = tuple(
                (call.names.get(id(t), f"inputs[{i}]"), summarize(g, small, digits).text)
                for i, (t, g) in enumerate(zip(call.inputs, result))
            )
        self._reached(call)
        self._nonfinite(call, leaf_grads, results)
        log.graphs.append(call.graph)
        log.calls.append(BackwardCall(
            call.index, call.kind, call.label, call.line, call.source, _shape(call.roots),
            _dtype(call.roots), _grad_text(call.gradient, small, digits), call.retain,
            tuple(leaf_grads), results, len(call.graph.nodes), loss=loss,
        ))
        if call.index == self.options.autograd_max_calls and self.site.loop_line(call.line) and call.leaves:
            loss_name = call.names.get(id(call.roots[0]), "") if len(call.roots) == 1 else ""
            self.handoff = Handoff(call.leaves, call.names, loss_name, call.here)
        if call.jacobian is not None:
            from torchmagic.autograd.jacobian import finish

            if call.kind == "torch.autograd.grad":
                log.jacobians.append(finish(call.jacobian, list(result), call.inputs))
            else:
                log.jacobians.append(finish(call.jacobian, [leaf.grad for leaf in call.leaves], call.leaves))

    def _accumulation(self, call: _Call) -> None:
        """Which leaves this call added to without anyone zeroing their ``.grad`` first."""
        for leaf, (grad_id, version) in zip(call.leaves, call.state):
            grad = leaf.grad
            changed = grad is not None and (id(grad) != grad_id or grad._version != version)
            if grad_id and changed:
                previous = call.origin.get(id(leaf), "")
                before = call.before.get(id(leaf), NONE)
                if previous or before.nonzero:
                    self._accumulated(call, leaf, previous)
            self.ledger.remember(leaf, call.here)

    def _accumulated(self, call: _Call, leaf: torch.Tensor, previous: str) -> None:
        key = id(leaf)
        entry = self.log.accumulated.get(key)
        if entry is not None:
            entry.steps += 1
            return
        values = None
        if call.detailed:
            values = (call.before.get(key, NONE), call.received.get(key, NONE),
                      summarize(leaf.grad, self.options.autograd_value_elements, self.options.precision))
        self.log.accumulated[key] = Accumulation(call.names.get(key, ""), call.line, call.index,
                                                 previous=previous, values=values)
        self.steps.leaves.setdefault(key, weakref.ref(leaf))

    def _leaf_grads(self, call: _Call) -> list[LeafGrad]:
        """Each leaf's .grad before, added and after; the graph's leaf boxes get the after."""
        small, digits = self.options.autograd_value_elements, self.options.precision
        out: list[LeafGrad] = []
        after: dict[int, str] = {}
        for leaf in call.leaves:
            key = id(leaf)
            name = call.names.get(key, "") or tr("a leaf")
            accumulation = self.log.accumulated.get(key)
            accumulated = accumulation is not None and accumulation.first == call.index
            grad = summarize(leaf.grad, small, digits)
            after[key] = grad.text
            out.append(LeafGrad(
                name, tuple(int(s) for s in leaf.shape), dtype_name(leaf.dtype), call.before.get(key, NONE),
                grad, call.received.get(key, NONE), accumulated,
                accumulation.previous if accumulated and accumulation is not None else "",
                group=name.rsplit(".", 1)[0] if "." in name else "",
            ))
        nodes = call.graph.nodes
        for nid, key in call.leaf_nodes.items():
            if key in after and nid < len(nodes):
                nodes[nid] = nodes[nid].but(grad=after[key])
        return out

    def _reached(self, call: _Call) -> None:
        """Put the gradient that reached each node into the graph (one read of all the norms)."""
        if not call.reached:
            return
        small, digits = self.options.autograd_value_elements, self.options.precision
        norms = torch.stack([n for _, _, n, _ in call.reached]).cpu().tolist()
        nodes = call.graph.nodes
        for (nid, key, _, values), norm in zip(call.reached, norms):
            if values is not None:
                text = summarize(values, small, digits).text
            else:
                shape = nodes[nid].shape if nid < len(nodes) else None
                text = norm_text(shape, norm, digits)
            self.log.op_grads[key] = text
            flag = "" if math.isfinite(norm) else "nonfinite"
            if flag:
                self.log.op_flags[key] = flag
            if nid < len(nodes):
                nodes[nid] = nodes[nid].but(grad=text, flag=flag)

    def _nonfinite(self, call: _Call, leaves: list[LeafGrad], results: tuple[tuple[str, str], ...]) -> None:
        """Say which leaves got NaN/inf gradients, and in which backward node (or module) they appeared.

        The origin is the first node, from the output towards the leaves, whose
        incoming gradient was finite while something below it (through nodes
        without a hook, in a large graph) was not.
        """
        bad = [f"{g.name}: {nonfinite_text(g.added.nan or g.after.nan, g.added.inf or g.after.inf)}"
               for g in leaves if g.status == "non-finite"]
        not_finite = tr("not finite")
        bad.extend(f"{name}: {not_finite}" for name, text in results if "nan" in text or "inf" in text)
        if not bad:
            return
        graph = call.graph
        nodes = graph.nodes
        ins = graph.inputs()
        known: dict[int, bool] = {nid: not nodes[nid].flag for nid, _, _, _ in call.reached}  # True: finite
        known.update({nid: call.received.get(key, NONE).finite for nid, key in call.leaf_nodes.items()})
        origin, root, inside = "", "", ""
        names: tuple[str, ...] = ()
        for nid in reversed(topo_order(graph)):  # from the outputs towards the leaves: backward's order
            if nodes[nid].kind != "op" or not known.get(nid, False):
                continue
            region = _bad_below(nid, ins, known, nodes)
            if region is None:
                continue
            node = nodes[nid]
            nodes[nid] = node.but(flag="origin", note=(node.note + "; " if node.note else "")
                                  + tr("a NaN/inf gradient appeared here: what reached it was finite"))
            origin, names = node.label, node.names
            inside = next((c.title for c in graph.calls if c.index == region), "") if region >= 0 else ""
            key = next((k for i, k, _, _ in call.reached if i == nid), None)
            if key is not None:
                self.log.op_flags[key] = "origin"
            break
        if not origin and any(nodes[r].flag for r in graph.roots):
            root = call.label
        self.log.nonfinite.append(NonFinite(call.index, call.line, tuple(bad), origin, names, root, inside))

    # -- a call that raised ----------------------------------------------------------
    def _failed(self, call: _Call, exc: BaseException) -> None:
        self.log.errors.append((exc, call.graph, call.label))
        self._accumulation(call)  # leaves reached before the error were added to, as in any backward
        if not call.detailed:
            return
        small, digits = self.options.autograd_value_elements, self.options.precision
        leaf_grads = self._leaf_grads(call)
        self.log.calls.append(BackwardCall(
            call.index, call.kind, call.label, call.line, call.source, _shape(call.roots),
            _dtype(call.roots), _grad_text(call.gradient, small, digits), call.retain,
            tuple(g for g in leaf_grads if g.added.text != "None" or g.before.text != g.after.text),
            (), len(call.graph.nodes), error=type(exc).__name__,
        ))
        changed = [g for g in leaf_grads if g.added.text != "None"]
        if changed:
            what = "; ".join(f"{g.name}.grad {g.before.short} → {g.after.short} (+{g.added.short})"
                             for g in changed[:4])
            if len(changed) > 4:
                what = tr("{names} and {n} more", names=what, n=len(changed) - 4)
            self.log.notes.append(Note(
                kind="partial", line=call.line, subject=changed[0].name,
                message=trn("The backward() at line {line} raised after it had already added to "
                            "{n} gradient: {what}. PyTorch adds each gradient as soon as it is computed, so an "
                            "error midway leaves .grad partly updated.",
                            "The backward() at line {line} raised after it had already added to "
                            "{n} gradients: {what}. PyTorch adds each gradient as soon as it is computed, so an "
                            "error midway leaves .grad partly updated.", len(changed), line=call.line, what=what),
                fix=tr("Zero the gradients (optimizer.zero_grad()) before running backward() again."),
            ))


def _bad_below(nid: int, ins: dict[int, list[int]], known: dict[int, bool], nodes: list[GNode]) -> int | None:
    """Whether a non-finite gradient is below ``nid``, down to the nearest traced nodes: None if not; else
    the module call of the untraced ops on a path to it (preferred: a traced node can hold a NaN that
    came in along another path), or -1 when it is a direct input."""
    stack = [(i, -1) for i in ins[nid]]
    seen: set[tuple[int, int]] = set()
    found: int | None = None
    while stack:
        i, region = stack.pop()
        if (i, region) in seen:
            continue
        seen.add((i, region))
        state = known.get(i)
        if state is False:
            if region >= 0:
                return region
            found = -1
        elif state is None and nodes[i].kind == "op":  # not traced: look through it
            stack.extend((j, region if region >= 0 else nodes[i].call) for j in ins[i])
    return found


def _traced(graph: Graph) -> set[int]:
    """The ops that get a gradient hook: all of a small graph; in a large one those outside modules and
    each module call's outputs (the gradient that reaches the module)."""
    ops = [n for n in graph.nodes if n.kind == "op"]
    if len(graph.nodes) <= EVERY_NODE:
        return {n.id for n in ops}
    users = graph.users()
    roots = set(graph.roots)
    return {n.id for n in ops if n.call < 0 or n.id in roots
            or any(graph.nodes[u].call != n.call for u in users[n.id])}


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, torch.Tensor):
        return [value]
    return list(value)


def _backward_args(
    kind: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[list[torch.Tensor], Any, bool, list[torch.Tensor]]:
    """(roots, gradient, retain_graph, inputs) from the call's arguments."""
    if kind == "backward":
        names = ["self", "gradient", "retain_graph", "create_graph", "inputs"]
    elif kind == "torch.autograd.backward":
        names = ["tensors", "grad_tensors", "retain_graph", "create_graph", "grad_variables", "inputs"]
    else:
        names = ["outputs", "inputs", "grad_outputs", "retain_graph", "create_graph"]
    bound = dict(zip(names, args))
    bound.update(kwargs)
    roots = _as_list(bound.get("self", bound.get("tensors", bound.get("outputs"))))
    gradient = bound.get("gradient", bound.get("grad_tensors", bound.get("grad_outputs")))
    retain = bound.get("retain_graph")
    create = bool(bound.get("create_graph"))
    inputs = _as_list(bound.get("inputs"))
    return [t for t in roots if isinstance(t, torch.Tensor)], gradient, bool(retain or create), inputs


def _root_label(roots: list[torch.Tensor], names: dict[int, str], source: str) -> str:
    labels = [names.get(id(t), "") for t in roots]
    if all(labels) and labels:
        return ", ".join(labels)
    if ".backward(" in source:
        expr = source.split(".backward(", 1)[0].strip()
        return expr or tr("a tensor")
    return ", ".join(label or tr("a tensor") for label in labels) or tr("a tensor")


def _shape(roots: list[torch.Tensor]) -> tuple[int, ...]:
    return tuple(int(s) for s in roots[0].shape) if roots else ()


def _dtype(roots: list[torch.Tensor]) -> str:
    return dtype_name(roots[0].dtype) if roots else ""


def _grad_text(gradient: Any, small: int, digits: int) -> str:
    if gradient is None:
        return tr("implicit 1 (scalar output)")
    grads = _as_list(gradient)
    return "; ".join(summarize(g, small, digits).text if isinstance(g, torch.Tensor) else repr(g)
                     for g in grads)

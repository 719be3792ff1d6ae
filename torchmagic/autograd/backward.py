"""Record each ``backward()`` / ``torch.autograd.grad`` call, fenced off from the user's run.

The watcher hands every backward call it sees to :meth:`BackwardRecorder.record`.

Before the call we read the graph (saved tensors are still there), each
leaf's ``.grad``, and register a ``post_accumulate_grad`` hook per leaf (the
accumulation detector, see :mod:`torchmagic.autograd.ledger`) and a hook per
backward node (the gradient that reached it).  After the call we read
``.grad`` again and remove every hook.  If any of our bookkeeping fails, the
user's call still runs exactly as it would without torchmagic.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import torch

from torchmagic.autograd.graph import Graph
from torchmagic.autograd.ledger import GradLedger, Where
from torchmagic.autograd.log import WatchLog
from torchmagic.autograd.options import WatchOptions
from torchmagic.autograd.report import BackwardCall, LeafGrad, Note
from torchmagic.autograd.site import CellSite
from torchmagic.autograd.values import Values, difference, summarize
from torchmagic.autograd.walk import find_leaves, walk
from torchmagic.core.meta import dtype_name
from torchmagic.core.text import first_line

if TYPE_CHECKING:
    from collections.abc import Callable

    from torch.utils.hooks import RemovableHandle

    from torchmagic.autograd.jacobian import Pending

__all__ = ["BackwardRecorder"]


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
    graph: Graph = field(default_factory=Graph)
    leaves: list[torch.Tensor] = field(default_factory=list)
    before: dict[int, Values] = field(default_factory=dict)
    fresh: dict[int, str] = field(default_factory=dict)
    hooked: dict[int, str] = field(default_factory=dict)
    handles: list[RemovableHandle] = field(default_factory=list)
    jacobian: Pending | None = None
    fn_keys: list[tuple[int, tuple[int, str]]] = field(default_factory=list)  # (node id, cache key)

    def release(self) -> None:
        """Drop every tensor reference (a failing call's traceback keeps this object)."""
        self.leaves.clear()
        self.roots = []
        self.inputs = []
        self.gradient = None
        self.jacobian = None


@dataclass
class BackwardRecorder:
    """Everything about backward calls, for the watcher mode to call: :meth:`record` runs one.

    ``run`` and ``cell_key`` say which ``%%autograd`` run this is (the ledger
    tells "this cell", "the previous run of this cell" and "an earlier cell"
    apart by them).
    """

    site: CellSite
    log: WatchLog
    ledger: GradLedger
    options: WatchOptions
    run: int = 0
    cell_key: str = ""

    def record(self, kind: str, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run the user's backward call between our reading of the graph and of ``.grad``.

        Our own bookkeeping is fenced off: if it fails, the call still runs
        exactly as without torchmagic and the report says what was not recorded.
        """
        __tracebackhide__ = True
        self.log.calls_total += 1
        call: _Call | None = None
        try:
            call = self._before_backward(kind, args, kwargs)
        except Exception as exc:  # noqa: BLE001 - never let bookkeeping change the user's run
            self._internal(exc)
        if call is None:  # outside the except block: a failing backward must not chain to ours
            return func(*args, **kwargs)
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            for h in call.handles:
                h.remove()
            self._record_failure(call, exc)
            raise
        for h in call.handles:
            h.remove()
        try:
            self._after_backward(call, result)
        except Exception as exc:  # noqa: BLE001 - never let bookkeeping change the user's run
            self._internal(exc)
        finally:
            call.release()
        return result

    def _internal(self, exc: BaseException) -> None:
        self.log.notes.append(Note(
            kind="info",
            message=f"torchmagic could not record backward call #{self.log.calls_total}: "
            f"{type(exc).__name__}: {exc}",
        ))

    def _before_backward(self, kind: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Call:
        log = self.log
        index = log.calls_total
        detailed = index <= self.options.autograd_max_calls
        roots, gradient, retain, inputs = _backward_args(kind, args, kwargs)
        line = self.site.line()
        # Naming walks the namespace; calls past max_calls only need it if they accumulate.
        names = self.site.names() if detailed else {}
        for t in roots:
            log.roots.append(weakref.ref(t))
        source = self.site.source(line)
        call = _Call(
            index=index, kind=kind, detailed=detailed, roots=roots, gradient=gradient,
            retain=retain, inputs=inputs, line=line, source=source, names=names,
            label=_root_label(roots, names, source), here=Where(self.run, self.cell_key, line),
        )
        small, digits = self.options.autograd_value_elements, self.options.precision
        fns: list[tuple[int, Any]] = []
        if detailed:
            call.graph = walk(
                [(names.get(id(t), call.label if len(roots) == 1 else ""), t) for t in roots],
                names=names,
                max_nodes=self.options.autograd_max_nodes,
                grad_text=lambda t: summarize(t.grad, small, digits).text,
                cuts=log.live_cuts(),
                saved_cache=log.saved_cache,
                fns_out=fns,
            )
        if kind != "torch.autograd.grad":  # autograd.grad never touches .grad
            leaves = find_leaves(roots)
            if inputs:
                wanted = {id(t) for t in inputs}
                leaves = [leaf for leaf in leaves if id(leaf) in wanted]
            call.leaves = leaves
        for leaf in call.leaves:
            if detailed:
                call.before[id(leaf)] = summarize(leaf.grad, small, digits)
            where = self.ledger.untouched_since(leaf)
            if where:
                call.fresh[id(leaf)] = where.describe(call.here)
        hooked = call.hooked
        ledger = self.ledger
        here = call.here

        def hook(leaf: torch.Tensor) -> None:
            where = ledger.accumulated_onto(leaf)
            if where:
                hooked[id(leaf)] = where.describe(here)

        op_grads = log.op_grads

        def op_hook(key: tuple[int, str]) -> Any:
            def record(grad_inputs: Any, grad_outputs: Any) -> None:
                g = grad_outputs[0] if grad_outputs else None
                if g is not None:
                    op_grads[key] = summarize(g, small, digits).text

            return record

        try:
            for nid, fn in fns:
                key = (id(fn), fn.name())
                call.fn_keys.append((nid, key))
                call.handles.append(fn.register_hook(op_hook(key)))
            fns.clear()
            for leaf in call.leaves:
                call.handles.append(leaf.register_post_accumulate_grad_hook(hook))
            if self.options.jacobian and detailed and roots:
                from torchmagic.autograd.jacobian import jacobian_before

                call.jacobian = jacobian_before(
                    kind, roots, gradient, inputs or call.leaves, names, call.label,
                    self.options.jacobian_max_elements,
                )
        except BaseException:
            for h in call.handles:
                h.remove()
            raise
        return call

    def _record_failure(self, call: _Call, exc: BaseException) -> None:
        self.log.errors.append((exc, call.graph, call.label))
        if call.detailed:
            small, digits = self.options.autograd_value_elements, self.options.precision
            self.log.calls.append(BackwardCall(
                call.index, call.kind, call.label, call.line, call.source, _shape(call.roots),
                _dtype(call.roots), _grad_text(call.gradient, small, digits), call.retain, (), (),
                len(call.graph.nodes),
                error=first_line(str(exc)) or type(exc).__name__,
            ))
        call.release()

    def _after_backward(self, call: _Call, result: Any) -> None:
        log = self.log
        small, digits = self.options.autograd_value_elements, self.options.precision
        names = call.names
        if not call.detailed and call.hooked:
            names = self.site.names()
        leaf_grads: list[LeafGrad] = []
        for leaf in call.leaves:
            prev = call.hooked.get(id(leaf)) or ""
            name = names.get(id(leaf), "") or "a leaf"
            if call.detailed:
                after = summarize(leaf.grad, small, digits)
                b = call.before.get(id(leaf), Values(""))
                if not prev and b.nonzero and leaf.grad is not None:
                    prev = call.fresh.get(id(leaf), "")
                accumulated = bool(prev) or (b.nonzero and after.text != b.text)
                leaf_grads.append(LeafGrad(
                    name, tuple(int(s) for s in leaf.shape), dtype_name(leaf.dtype), b, after,
                    difference(after, b, digits) if b.text != "None" else after.text,
                    accumulated, prev,
                ))
                if accumulated:
                    self._note_accumulation(name, b, after, prev, call.line, digits)
            elif prev:
                self._note_accumulation(name, None, None, prev, call.line, digits)
            self.ledger.remember(leaf, call.here)
        if not call.detailed:
            return
        results: tuple[tuple[str, str], ...] = ()
        if call.kind == "torch.autograd.grad" and isinstance(result, tuple):
            results = tuple(
                (names.get(id(t), f"inputs[{i}]"), summarize(g, small, digits).text)
                for i, (t, g) in enumerate(zip(call.inputs, result))
            )
        for nid, key in call.fn_keys:
            if key in log.op_grads and nid < len(call.graph.nodes):
                call.graph.nodes[nid] = replace(call.graph.nodes[nid], grad=log.op_grads[key])
        log.graphs.append(call.graph)
        log.calls.append(BackwardCall(
            call.index, call.kind, call.label, call.line, call.source, _shape(call.roots),
            _dtype(call.roots), _grad_text(call.gradient, small, digits), call.retain,
            tuple(leaf_grads), results, len(call.graph.nodes),
        ))
        if call.jacobian is not None:
            from torchmagic.autograd.jacobian import finish

            if call.kind == "torch.autograd.grad":
                log.jacobians.append(finish(call.jacobian, list(result), call.inputs))
            else:
                log.jacobians.append(
                    finish(call.jacobian, [leaf.grad for leaf in call.leaves], call.leaves)
                )

    def _note_accumulation(
        self, name: str, before: Values | None, after: Values | None, prev: str, line: int, digits: int
    ) -> None:
        """One warning per leaf; later accumulations of the same leaf only count up."""
        for i, note in enumerate(self.log.notes):
            if note.kind == "accumulated" and note.subject == name:
                self.log.notes[i] = replace(note, count=note.count + 1)
                return
        self.log.notes.append(_accumulation_note(name, before, after, prev, line, digits))


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
        return expr or "a tensor"
    return ", ".join(label or "a tensor" for label in labels) or "a tensor"


def _shape(roots: list[torch.Tensor]) -> tuple[int, ...]:
    return tuple(int(s) for s in roots[0].shape) if roots else ()


def _dtype(roots: list[torch.Tensor]) -> str:
    return dtype_name(roots[0].dtype) if roots else ""


def _grad_text(gradient: Any, small: int, digits: int) -> str:
    if gradient is None:
        return "implicit 1 (scalar output)"
    grads = _as_list(gradient)
    return "; ".join(summarize(g, small, digits).text if isinstance(g, torch.Tensor) else repr(g)
                     for g in grads)


def _accumulation_note(
    name: str, before: Values | None, after: Values | None, prev: str, line: int, digits: int
) -> Note:
    source = f"from {prev}" if prev else "already (from an earlier backward or set by hand)"
    if before is None or after is None:
        message = (
            f"{name}.grad accumulated: this backward() added onto the gradient {source}, "
            "which was not zeroed (values are recorded for the first calls only)."
        )
    else:
        added = difference(after, before, digits)
        message = (
            f"{name}.grad accumulated: it held {before.text} {source} and was not zeroed, "
            f"so this backward() added {added} to it and {name}.grad is now {after.text}."
        )
    return Note(
        kind="accumulated",
        line=line,
        subject=name,
        message=message,
        fix=(
            "Zero gradients before each backward(): optimizer.zero_grad() or model.zero_grad(), "
            f"or {name}.grad = None. Skip this if accumulating on purpose."
        ),
    )

"""Watch a running cell for ``backward()`` calls and for what escapes autograd.

A :class:`torch.overrides.TorchFunctionMode` sees every ``Tensor.backward``,
``torch.autograd.backward`` and ``torch.autograd.grad`` call, every
``.detach()`` and ``.data`` access and every op run with grad disabled.  Around
each backward call we read the graph (before it is freed), register a
``post_accumulate_grad`` hook on every leaf, read ``.grad`` before and after,
and remove the hooks again.  Nothing here keeps a tensor, a ``grad_fn`` or a
saved tensor: leaves are held only for the duration of one call, everything
else is weak references or plain data.

The accumulation detector (see notes/torch-internals.md): after a backward we
remember ``(weakref(leaf.grad), leaf.grad._version)``.  If the next backward's
hook finds the *same* grad object at exactly that version + 1, autograd added
onto the previous gradient without anyone zeroing it.  ``zero_grad()``
(set_to_none: a new object; ``set_to_none=False``: ``zero_()`` bumps the
version), ``model.zero_grad()``, ``p.grad = None`` and ``p.grad.zero_()`` all
break the match.  The :class:`GradLedger` lives on the magics instance, so the
detector works across cells.
"""

from __future__ import annotations

import os
import sys
import weakref
from dataclasses import dataclass, field, replace
from types import FrameType
from typing import Any, Mapping

import torch
from torch.overrides import TorchFunctionMode

from torchmagic.autograd.graph import Graph, find_leaves, walk
from torchmagic.autograd.report import BackwardCall, LeafGrad, Note, Untracked
from torchmagic.autograd.values import Values, difference, summarize
from torchmagic.core.meta import dtype_name
from torchmagic.core.names import user_names

__all__ = ["GradLedger", "Where", "WatchOptions", "WatchLog", "AutogradWatcher"]

_TORCH_DIR = os.path.dirname(torch.__file__)
_HERE = os.path.dirname(os.path.dirname(__file__))
_DATA_GET = getattr(torch._C.TensorBase.__dict__["data"], "__get__")  # what TF sees for `.data`
_BACKWARDS = {
    torch.Tensor.backward: "backward",
    torch.autograd.backward: "torch.autograd.backward",
    torch.autograd.grad: "torch.autograd.grad",
}
_INPLACE_DUNDER = {"__iadd__", "__isub__", "__imul__", "__itruediv__", "__ifloordiv__",
                   "__imod__", "__ipow__", "__iand__", "__ior__", "__ixor__", "__setitem__"}
_MAX_EVENTS = 50
_SKIP_DIRS = tuple(
    os.path.join(_TORCH_DIR, *parts) for parts in (("optim",), ("nn", "init.py"), ("nn", "utils"))
)


def _func_name(func: Any) -> str:
    name = getattr(func, "__name__", None) or str(func)
    return name


def _is_inplace(name: str) -> bool:
    return name in _INPLACE_DUNDER or (name.endswith("_") and not name.endswith("__"))


@dataclass
class _LedgerEntry:
    leaf: weakref.ref[Any]
    grad: weakref.ref[Any] | None
    version: int
    where: "Where"


@dataclass(frozen=True)
class Where:
    """Which watched backward() left a gradient: run number, cell source hash, line."""

    run: int
    cell: str
    line: int

    def describe(self, current: "Where") -> str:
        if self.run == current.run:
            return f"the backward() at line {self.line} of this cell"
        if self.cell == current.cell:
            return f"the backward() at line {self.line} of the previous run of this cell"
        return f"the backward() at line {self.line} of an earlier %%autograd cell"


class GradLedger:
    """What each leaf's ``.grad`` was right after its last watched backward (weakrefs only)."""

    def __init__(self) -> None:
        self._entries: dict[int, _LedgerEntry] = {}

    def __len__(self) -> int:
        self._prune()
        return len(self._entries)

    def _prune(self) -> None:
        dead = [k for k, e in self._entries.items() if e.leaf() is None]
        for k in dead:
            del self._entries[k]

    def remember(self, leaf: Any, where: Where) -> None:
        grad = leaf.grad
        if grad is None:
            self._entries.pop(id(leaf), None)
            return
        self._entries[id(leaf)] = _LedgerEntry(
            weakref.ref(leaf), weakref.ref(grad), int(grad._version), where
        )

    def accumulated_onto(self, leaf: Any) -> Where | None:
        """Where the previous, un-zeroed gradient came from, if ``leaf.grad`` just grew from it."""
        entry = self._entries.get(id(leaf))
        if entry is None or entry.leaf() is not leaf or entry.grad is None:
            return None
        grad: Any = getattr(leaf, "grad", None)
        if grad is None or id(entry.grad()) != id(grad):
            return None
        if int(grad._version) == entry.version + 1:
            return entry.where
        return None

    def untouched_since(self, leaf: Any) -> Where | None:
        """Before a backward: the gradient is still exactly what the last backward left."""
        entry = self._entries.get(id(leaf))
        if entry is None or entry.leaf() is not leaf or entry.grad is None:
            return None
        grad: Any = getattr(leaf, "grad", None)
        if grad is None or id(entry.grad()) != id(grad):
            return None
        if int(grad._version) == entry.version:
            return entry.where
        return None


@dataclass
class WatchOptions:
    value_elements: int = 16  # show every value of tensors up to this size
    max_nodes: int = 5000
    max_calls: int = 10  # backward calls recorded in detail
    jacobian: bool = False
    jacobian_max_elements: int = 256
    digits: int = 4


@dataclass
class _DataRef:
    source: weakref.ref[Any]
    name: str
    line: int


@dataclass
class WatchLog:
    """What the watcher saw, as plain data (plus weakrefs for naming at the end)."""

    calls: list[BackwardCall] = field(default_factory=list)
    calls_total: int = 0
    graphs: list[Graph] = field(default_factory=list)  # graph read before each detailed call
    untracked: list[Untracked] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    jacobians: list[Any] = field(default_factory=list)
    errors: list[tuple[BaseException, Graph | None, str]] = field(default_factory=list)
    roots: list[weakref.ref[Any]] = field(default_factory=list)
    cuts: dict[int, tuple[weakref.ref[Any], str]] = field(default_factory=dict)
    outputs: dict[int, weakref.ref[Any]] = field(default_factory=dict)  # untracked outputs
    saved_cache: dict[tuple[int, str], Any] = field(default_factory=dict)
    op_grads: dict[tuple[int, str], str] = field(default_factory=dict)  # gradient reaching each op


@dataclass
class _Call:
    """State of one backward call between before and after (holds leaves only meanwhile)."""

    index: int
    kind: str
    detailed: bool
    roots: list[Any]
    gradient: Any
    retain: bool
    inputs: list[Any]
    line: int
    source: str
    names: dict[int, str]
    label: str
    here: Where
    graph: Graph = field(default_factory=Graph)
    leaves: list[Any] = field(default_factory=list)
    before: dict[int, Values] = field(default_factory=dict)
    fresh: dict[int, str] = field(default_factory=dict)
    hooked: dict[int, str] = field(default_factory=dict)
    handles: list[Any] = field(default_factory=list)
    jacobian: Any = None
    fn_keys: list[tuple[int, tuple[int, str]]] = field(default_factory=list)  # (node id, cache key)


class AutogradWatcher(TorchFunctionMode):
    """The torch function mode active while an ``%%autograd`` cell runs."""

    def __init__(
        self,
        filename: str,
        lines: list[str],
        namespace: Mapping[str, Any],
        ledger: GradLedger,
        options: WatchOptions,
        run: int = 0,
        cell_key: str = "",
    ) -> None:
        super().__init__()
        self.filename = filename
        self.lines = lines
        self.ns = namespace
        self.ledger = ledger
        self.options = options
        self.run = run
        self.cell_key = cell_key
        self.log = WatchLog()
        self._data: dict[int, tuple[weakref.ref[Any], _DataRef]] = {}
        self._untracked_keys: dict[tuple[str, int, str], int] = {}

    # -- where in the cell ------------------------------------------------------
    def _cell_frame(self) -> FrameType | None:
        """The cell's frame if the op was called from the cell (through torch.nn), else None.

        Ops run by optimizers, ``nn.init`` and ``nn.utils`` are their own business
        (they work under ``no_grad`` on purpose), so they do not count.
        """
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            fname = frame.f_code.co_filename
            if fname == self.filename:
                return frame
            if fname.startswith(_HERE):
                frame = frame.f_back
                continue
            if fname.startswith(_TORCH_DIR):
                if fname.startswith(_SKIP_DIRS):
                    return None
                frame = frame.f_back
                continue
            return None
        return None

    def _line_of_call(self) -> int:
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_filename == self.filename:
                return frame.f_lineno
            frame = frame.f_back
        return 0

    def _source(self, line: int) -> str:
        return self.lines[line - 1].strip() if 1 <= line <= len(self.lines) else ""

    def _names(self) -> dict[int, str]:
        """``id(tensor) -> name`` from the namespace and the cell's local frames."""
        names = user_names(self.ns)
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_filename == self.filename and frame.f_locals is not self.ns:
                for k, v in list(frame.f_locals.items()):
                    if isinstance(v, torch.Tensor) and not k.startswith("_"):
                        names.setdefault(id(v), k)
            frame = frame.f_back
        return names

    # -- the mode ---------------------------------------------------------------
    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        __tracebackhide__ = True
        kwargs = dict(kwargs or {})
        if torch.compiler.is_compiling():
            return func(*args, **kwargs)
        kind = _BACKWARDS.get(func)
        if kind is not None:
            return self._on_backward(kind, func, args, kwargs)
        if func is _DATA_GET or func == _DATA_GET:
            out = func(*args, **kwargs)
            self._on_data(args[0], out)
            return out
        if self._data and args and isinstance(args[0], torch.Tensor):
            self._check_data_inplace(func, args[0])
        grad_off = not torch.is_grad_enabled()
        if not grad_off and _func_name(func) != "detach":
            return func(*args, **kwargs)
        out = func(*args, **kwargs)
        try:
            self._on_untracked(func, args, kwargs, out, grad_off)
        except Exception:  # noqa: BLE001 - recording must never break the user's op
            pass
        return out

    # -- not tracked ------------------------------------------------------------
    def _on_untracked(self, func: Any, args: Any, kwargs: Any, out: Any, grad_off: bool) -> None:
        name = _func_name(func)
        if name in {"_set_grad_enabled", "__get__", "__set__", "__repr__", "__format__"}:
            return
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
        if not any(t.requires_grad for t in tensors):
            return
        frame = self._cell_frame()
        if frame is None:
            return
        line = frame.f_lineno
        if grad_off:
            kind = "inference_mode" if torch.is_inference_mode_enabled() else "no_grad"
        else:
            kind = "detach"
        key = (kind, line, name)
        if key in self._untracked_keys:
            idx = self._untracked_keys[key]
            old = self.log.untracked[idx]
            self.log.untracked[idx] = Untracked(
                old.kind, old.line, old.source, old.op, old.inputs, old.output, old.count + 1
            )
            return
        if len(self.log.untracked) >= _MAX_EVENTS:
            return
        names = self._names()
        inputs = tuple(names.get(id(t), "") or "a tensor" for t in tensors if t.requires_grad)
        self._untracked_keys[key] = len(self.log.untracked)
        self.log.untracked.append(Untracked(kind, line, self._source(line), name, inputs))
        if isinstance(out, torch.Tensor):
            self.log.outputs[len(self.log.untracked) - 1] = weakref.ref(out)
            if kind == "detach":
                self.log.cuts[id(out)] = (weakref.ref(out), f"{inputs[0]}.detach() (line {line})")

    def _on_data(self, source: Any, out: Any) -> None:
        if not isinstance(source, torch.Tensor) or not source.requires_grad:
            return
        frame = self._cell_frame()
        if frame is None:
            return
        line = frame.f_lineno
        name = self._names().get(id(source), "a tensor")
        self._data[id(out)] = (weakref.ref(out), _DataRef(weakref.ref(source), name, line))
        key = ("data", line, "data")
        if key not in self._untracked_keys and len(self.log.untracked) < _MAX_EVENTS:
            self._untracked_keys[key] = len(self.log.untracked)
            self.log.untracked.append(
                Untracked("data", line, self._source(line), ".data", (name,))
            )

    def _check_data_inplace(self, func: Any, target: Any) -> None:
        entry = self._data.get(id(target))
        if entry is None or entry[0]() is not target:
            return
        name = _func_name(func)
        if not _is_inplace(name):
            return
        ref = entry[1]
        source = ref.source()
        if source is None:
            return
        saved_by = self._saved_by(source)
        if not saved_by:
            return
        line = self._line_of_call()
        self.log.notes.append(Note(
            kind="data-inplace",
            line=line,
            message=(
                f"{ref.name}.data was modified in place ({name}, line {line}) after autograd "
                f"saved {ref.name} for {saved_by}. .data hides the change from autograd, so the "
                f"next backward() through that graph silently uses the new values: the "
                f"gradient will be wrong and nothing raises."
            ),
            fix=(
                f"Modify {ref.name} before the forward pass or after backward(), inside "
                f"`with torch.no_grad():` and without .data; {ref.name}.detach() instead of "
                f".data would at least raise an error here."
            ),
        ))

    def _saved_by(self, source: Any) -> str:
        """Which backward node of a live graph saved (a view of) ``source``."""
        try:
            storage = source.untyped_storage().data_ptr()
        except Exception:  # noqa: BLE001
            return ""
        starts: list[Any] = [t.grad_fn for t in _tensors_in(self.ns) if t.grad_fn is not None]
        for ref in self.log.roots:
            t = ref()
            if t is not None and t.grad_fn is not None:
                starts.append(t.grad_fn)
        seen: set[int] = set()
        stack = starts
        budget = self.options.max_nodes
        while stack and budget > 0:
            fn = stack.pop()
            if id(fn) in seen:
                continue
            seen.add(id(fn))
            budget -= 1
            for attr in dir(fn):
                if not attr.startswith("_saved_"):
                    continue
                try:
                    value = getattr(fn, attr)
                except Exception:  # noqa: BLE001 - freed or stale
                    continue
                if isinstance(value, torch.Tensor) and value.layout == torch.strided:
                    try:
                        if value.untyped_storage().data_ptr() == storage:
                            return fn.name()
                    except Exception:  # noqa: BLE001
                        continue
            stack.extend(c for c, _ in fn.next_functions if c is not None)
        return ""

    # -- backward -----------------------------------------------------------------
    def _on_backward(self, kind: str, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run the user's backward call between our reading of the graph and of ``.grad``.

        Our own bookkeeping is fenced off: if it fails, the call still runs
        exactly as without torchmagic and the report says what was not recorded.
        """
        __tracebackhide__ = True
        self.log.calls_total += 1
        try:
            call = self._before_backward(kind, args, kwargs)
        except Exception as exc:  # noqa: BLE001 - never let bookkeeping change the user's run
            self._internal(exc)
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
        except Exception as exc:  # noqa: BLE001
            self._internal(exc)
        finally:
            call.leaves.clear()
        return result

    def _internal(self, exc: BaseException) -> None:
        self.log.notes.append(Note(
            kind="info",
            message=f"torchmagic could not record backward call #{self.log.calls_total}: "
            f"{type(exc).__name__}: {exc}",
        ))

    def _before_backward(self, kind: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> "_Call":
        log = self.log
        index = log.calls_total
        detailed = index <= self.options.max_calls
        roots, gradient, retain, inputs = _backward_args(kind, args, kwargs)
        line = self._line_of_call()
        names = self._names()
        for t in roots:
            log.roots.append(weakref.ref(t))
        source = self._source(line)
        call = _Call(
            index=index, kind=kind, detailed=detailed, roots=roots, gradient=gradient,
            retain=retain, inputs=inputs, line=line, source=source, names=names,
            label=_root_label(roots, names, source), here=Where(self.run, self.cell_key, line),
        )
        small, digits = self.options.value_elements, self.options.digits
        fns: list[tuple[int, Any]] = []
        if detailed:
            call.graph = walk(
                [(names.get(id(t), call.label if len(roots) == 1 else ""), t) for t in roots],
                names=names,
                max_nodes=self.options.max_nodes,
                grad_text=lambda t: summarize(t.grad, small, digits).text,
                cuts={k: v[1] for k, v in log.cuts.items() if v[0]() is not None},
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

        def hook(leaf: Any) -> None:
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

    def _record_failure(self, call: "_Call", exc: BaseException) -> None:
        self.log.errors.append((exc, call.graph, call.label))
        if call.detailed:
            small, digits = self.options.value_elements, self.options.digits
            self.log.calls.append(BackwardCall(
                call.index, call.kind, call.label, call.line, call.source, _shape(call.roots),
                _dtype(call.roots), _grad_text(call.gradient, small, digits), call.retain, (), (),
                len(call.graph.nodes),
                error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            ))
        call.leaves.clear()

    def _after_backward(self, call: "_Call", result: Any) -> None:
        log = self.log
        small, digits = self.options.value_elements, self.options.digits
        names = call.names
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


def _tensors_in(ns: Mapping[str, Any]) -> list[Any]:
    return [v for k, v in list(ns.items()) if isinstance(v, torch.Tensor) and not k.startswith("_")]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, torch.Tensor):
        return [value]
    return list(value)


def _backward_args(
    kind: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[list[Any], Any, bool, list[Any]]:
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


def _root_label(roots: list[Any], names: dict[int, str], source: str) -> str:
    labels = [names.get(id(t), "") for t in roots]
    if all(labels) and labels:
        return ", ".join(labels)
    if ".backward(" in source:
        expr = source.split(".backward(", 1)[0].strip()
        return expr or "a tensor"
    return ", ".join(label or "a tensor" for label in labels) or "a tensor"


def _shape(roots: list[Any]) -> tuple[int, ...]:
    return tuple(int(s) for s in roots[0].shape) if roots else ()


def _dtype(roots: list[Any]) -> str:
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

"""Which ``nn.Module`` call made each backward node: module calls recorded while the cell runs.

A torch function mode sees ``F.linear``, not the ``nn.Linear`` that called
it, so module boundaries come from PyTorch's global module hooks
(``register_module_forward_pre_hook`` / ``register_module_forward_hook``),
registered only while the cell runs.  Each call is remembered as an interval
of autograd *sequence numbers*: every backward node gets the next number of
a per-thread counter when it is created (``torch._C._autograd._get_sequence_nr``
reads it), so the nodes a module call created are exactly those numbered
between the counter before and after the call, and nested calls give nested
intervals.  A node is then placed in the innermost call whose interval holds
its number (:func:`assign_calls`), without keeping any node or tensor.

Per call we keep plain numbers: the interval, the parent call, input and
output shapes, and the storage address and shape of inputs that need no
gradient (so an unsaved input inside the module can be named ``src`` later).
Modules themselves are held by weak reference only, for their names and
parameter counts at the end of the cell.

The hooks are plain ones, not ``always_call``: those double the cost of
every module call.  A forward that raises therefore never reaches our
post-hook; its call is closed when its parent returns, so a forward that
catches a submodule's error and goes on has its later calls counted inside
the failed one (a rare pattern; nothing else is affected).
"""

from __future__ import annotations

import bisect
import math
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch.nn.modules import module as _module

from torchmagic.autograd.graph import CallInfo, Graph
from torchmagic.autograd.hooks import GlobalHooks
from torchmagic.autograd.walk import UNKNOWN_INPUT, storage_names
from torchmagic.core.guard import Fence
from torchmagic.core.meta import fmt_shape
from torchmagic.core.names import iter_named_tensors
from torchmagic.i18n import tr

if TYPE_CHECKING:
    from torch import nn
    from torch.utils.hooks import RemovableHandle

_QUIET = torch._C.DisableTorchFunction
__all__ = ["ModuleRecorder", "CallRecord", "annotate", "assign_calls", "module_paths", "name_inputs"]

_next_seq = torch._C._autograd._get_sequence_nr
MAX_CALLS = 20_000  # calls kept; older ones are dropped (a long loop only needs its last steps)


class CallRecord:
    """One module call: the sequence numbers its nodes got, and what went in and out."""

    __slots__ = ("index", "module", "parent", "lo", "hi", "ins", "outs", "consts")

    def __init__(self, index: int, module: int, parent: int, lo: int) -> None:
        self.index = index
        self.module = module  # id() of the module (its weakref is in ModuleRecorder.modules)
        self.parent = parent  # index of the enclosing call, -1 at the top
        self.lo = lo  # the first sequence number a node made by this call can have
        self.hi = lo  # ... and the first one after the call (set when it returns)
        self.ins: tuple[tuple[int, ...], ...] = ()
        self.outs: tuple[tuple[int, ...], ...] = ()
        self.consts: tuple[tuple[int, tuple[int, ...]], ...] = ()  # (storage address, shape), no grad


def _tensors(value: Any) -> list[torch.Tensor]:
    """Tensors in a module's arguments or output (one level into tuples, lists and dicts)."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [v for v in value if isinstance(v, torch.Tensor)]
    if isinstance(value, Mapping):
        return [v for v in value.values() if isinstance(v, torch.Tensor)]
    return []


def _shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape)  # torch.Size is a tuple of ints


def _storage(t: torch.Tensor) -> int:
    try:
        return int(t.untyped_storage().data_ptr())
    except (RuntimeError, NotImplementedError):  # sparse, meta, nested: no storage to match
        return 0


class ModuleRecorder(GlobalHooks):
    """Global module hooks for the duration of a cell; :attr:`calls` is what they saw."""

    def __init__(self, fence: Fence | None = None) -> None:
        self.fence = fence or Fence()
        self.calls: list[CallRecord] = []
        self.modules: dict[int, tuple[weakref.ref[nn.Module], str]] = {}
        self._offset = 0  # index of calls[0]
        self._paths: dict[int, str] = {}  # id(module) -> its name, read from the namespace once
        self._params: dict[int, tuple[int, int]] = {}  # id(module) -> (elements, tensors)
        self.user_hook: Callable[[], None] | None = None  # called before each module call, in the user's code
        self._stack: list[CallRecord] = []

    def register(self) -> list[RemovableHandle]:
        return [
            _module.register_module_forward_pre_hook(self._pre),
            _module.register_module_forward_hook(self._post),
        ]

    def reset(self) -> None:
        self._stack.clear()

    def _pre(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        if self.user_hook is not None:
            self.user_hook()  # the user's code is running: the watcher may step aside here
            if not self._handles:  # ... and it did, taking us off too
                return
        with _QUIET():  # our own ops here must not go through the recording mode
            try:
                key = id(module)
                if key not in self.modules:
                    self.modules[key] = (weakref.ref(module), type(module).__name__)
                parent = self._stack[-1].index if self._stack else -1
                call = CallRecord(self._offset + len(self.calls), key, parent, _next_seq())
                tensors = _tensors(args)
                call.ins = tuple(_shape(t) for t in tensors)
                call.consts = tuple((_storage(t), _shape(t)) for t in tensors if not t.requires_grad)
                self.calls.append(call)
                self._stack.append(call)
                if len(self.calls) > MAX_CALLS:
                    drop = len(self.calls) // 2
                    self._offset += drop
                    del self.calls[:drop]
            except Exception as exc:  # noqa: BLE001 - recording must never break the user's model
                self.fence.fail(exc)

    def _post(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        with _QUIET():  # our own ops here must not go through the recording mode
            try:
                while self._stack:  # a child whose forward raised (and was caught) never got here: close it too
                    call = self._stack.pop()
                    call.hi = _next_seq()
                    if call.module == id(module):
                        call.outs = tuple(_shape(t) for t in _tensors(output))
                        break
            except Exception as exc:  # noqa: BLE001 - recording must never break the user's model
                self.fence.fail(exc)

    def record(self, index: int) -> CallRecord | None:
        """The call with this index, if it is still kept."""
        k = index - self._offset
        return self.calls[k] if 0 <= k < len(self.calls) else None

    def paths(self, namespace: Mapping[str, Any]) -> dict[int, str]:
        """Module names from ``namespace``, read again only when a module called in the cell has none yet."""
        if not self._paths or any(c.module not in self._paths for c in self.calls[-64:]):
            self._paths = module_paths(namespace)
        return self._paths

    def _size(self, key: int, module: nn.Module | None) -> tuple[int, int]:
        if key not in self._params:
            self._params[key] = _size_of(module) if module is not None else (0, 0)
        return self._params[key]

    def infos(self, graph: Graph, namespace: Mapping[str, Any]) -> list[CallInfo]:
        """Plain :class:`CallInfo` for the calls that hold nodes of ``graph`` (and their ancestors)."""
        paths = self.paths(namespace)
        counts: dict[int, int] = {}
        for node in graph.nodes:
            index = node.call
            while index >= 0:
                counts[index] = counts.get(index, 0) + 1
                rec = self.record(index)
                index = rec.parent if rec is not None else -1
        used = set(counts)
        seen_paths: dict[str, int] = {}
        out: list[CallInfo] = []
        for index in sorted(used):
            rec = self.record(index)
            if rec is None:
                continue
            ref, type_name = self.modules.get(rec.module, (None, "Module"))
            module = ref() if ref is not None else None
            path = paths.get(rec.module, "") or type_name
            seen_paths[path] = seen_paths.get(path, 0) + 1
            params, tensors = self._size(rec.module, module)
            out.append(CallInfo(
                index=index, parent=rec.parent if rec.parent in used else -1, path=path, type=type_name,
                ins=rec.ins, outs=rec.outs, params=params, tensors=tensors, nodes=counts.get(index, 0),
                repeat=seen_paths[path], detail=_detail(module),
            ))
        return out


_SIZES: weakref.WeakKeyDictionary[nn.Module, tuple[int, int]] = weakref.WeakKeyDictionary()


def _size_of(module: nn.Module) -> tuple[int, int]:
    """(parameter elements, parameter tensors) of ``module``, remembered while it lives (re-run cells ask again)."""
    size = _SIZES.get(module)
    if size is None:
        params = list(module.parameters())
        if any(torch.nn.parameter.is_lazy(p) for p in params):  # LazyLinear before its first call
            return 0, len(params)
        size = _SIZES[module] = (sum(p.numel() for p in params), len(params))
    return size


def _detail(module: nn.Module | None) -> str:
    """A short description of what the module is set to (``p=0.1`` for dropout)."""
    if module is None:
        return ""
    p = getattr(module, "p", None)
    if isinstance(p, float) and type(module).__name__.startswith("Dropout"):
        return f"p={p:g}"
    return ""


def module_paths(namespace: Mapping[str, Any]) -> dict[int, str]:
    """``id(module) -> 'enc.layers.0'`` for every module reachable from a name in ``namespace``."""
    paths: dict[int, str] = {}
    for name, value in list(namespace.items()):
        if name.startswith("_") or not isinstance(value, torch.nn.Module):
            continue
        for sub, module in value.named_modules(prefix=name):
            paths.setdefault(id(module), sub)
    return paths


def assign_calls(graph: Graph, calls: Iterable[CallRecord]) -> None:
    """Put each node of ``graph`` in the innermost module call that made it (``node.call``).

    Ops go by their sequence number; a leaf or an input goes into the innermost call
    that holds every op using it (a parameter used by one ``Linear`` call
    belongs to it; one shared by two calls to their common parent).
    """
    ordered = sorted(calls, key=lambda c: c.lo)
    if not ordered:
        return
    los = [c.lo for c in ordered]
    by_index = {c.index: c for c in ordered}
    where = [-1] * len(graph.nodes)
    for node in graph.nodes:
        seq, nid = node.seq, node.id
        if seq < 0:
            continue
        k = bisect.bisect_right(los, seq) - 1
        call = ordered[k] if k >= 0 else None
        while call is not None and not call.lo <= seq < call.hi:
            call = by_index.get(call.parent)
        where[nid] = call.index if call is not None else -1
    users = graph.users()
    for node in graph.nodes:
        if node.seq < 0 and users[node.id]:
            where[node.id] = _common([where[u] for u in users[node.id]], by_index)
    graph.nodes = [n if where[n.id] == n.call else n.but(call=where[n.id]) for n in graph.nodes]


def _common(indices: list[int], by_index: Mapping[int, CallRecord]) -> int:
    """The innermost call enclosing all of ``indices`` (-1: the cell itself)."""
    def chain(index: int) -> list[int]:
        out = []
        while index >= 0:
            out.append(index)
            rec = by_index.get(index)
            index = rec.parent if rec is not None else -1
        return out[::-1]

    chains = [chain(i) for i in indices]
    common = -1
    for level in zip(*chains):
        if all(x == level[0] for x in level):
            common = level[0]
        else:
            break
    return common


def name_inputs(graph: Graph, calls: Sequence[CallRecord], storages: Mapping[int, str]) -> None:
    """Name inputs that need no gradient by the module inputs they came from (``src``).

    An input a backward node did not save has no shape in the graph; inside a
    module call whose only input without gradient is ``src``, of the node's
    output shape, it is ``src``.  A saved one with a matching storage is
    that tensor (possibly viewed with another shape).
    """
    by_index = {c.index: c for c in calls}
    users = graph.users()
    nodes = list(graph.nodes)
    for node in graph.nodes:
        if node.kind != "const" or node.label != tr(UNKNOWN_INPUT):
            continue
        consts: dict[int, tuple[int, ...]] = {}
        index = node.call
        while index >= 0 and not consts:  # the innermost call that received a named no-grad tensor
            rec = by_index.get(index)
            if rec is None:
                break
            consts = {address: shape for address, shape in rec.consts if storages.get(address)}
            index = rec.parent
        shape = node.shape
        if shape is None:  # not saved: the consumer's output shape tells which input it was
            consumer = graph.nodes[users[node.id][0]] if users[node.id] else None
            shape = consumer.shape if consumer is not None else None
        fits = [a for a, s in consts.items() if s == shape] or (
            [a for a, s in consts.items() if shape is not None and math.prod(s) == math.prod(shape)])
        pick = fits if len(fits) == 1 else (list(consts) if len(consts) == 1 else [])
        if not pick:
            continue
        name, true_shape = storages[pick[0]], consts[pick[0]]
        view = ""
        if node.shape is not None and node.shape != true_shape:
            view = tr(" (as {shape})", shape=fmt_shape(node.shape))
        nodes[node.id] = node.but(
            label=name + view, names=(name,), shape=node.shape or true_shape,
            note=tr("{name}: an input of the module call, needs no gradient", name=name),
        )
    graph.nodes = nodes


def annotate(graph: Graph, recorder: ModuleRecorder, namespace: Mapping[str, Any],
             named: Iterable[tuple[str, torch.Tensor]] | None = None) -> None:
    """Everything a walked graph learns from the module calls: ``node.call``, ``graph.calls``, input names.

    ``named``: the namespace's ``(name, tensor)`` pairs, when the caller has them already.
    """
    if not recorder.calls:
        return
    assign_calls(graph, recorder.calls)
    graph.calls = recorder.infos(graph, namespace)
    pairs = named if named is not None else iter_named_tensors(namespace)
    name_inputs(graph, recorder.calls, storage_names(pairs))

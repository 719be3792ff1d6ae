"""Per-module time and memory for ``%%device``: which layer took the time, forward and backward.

While the recorded run is open, :class:`ModuleRecorder` has PyTorch's
*global* module hooks (``register_module_forward_pre_hook`` /
``register_module_forward_hook``) around every ``nn.Module`` call of the
cell's thread: forward time (torchmagic's own recording inside it taken
out), new tensors made (``allocated``) and still alive when forward
returned (``kept``: output and activations saved for backward), read from
the memory tracker.  For backward it puts a pre-hook and a hook on each
autograd node the module's ops made (``grad_fn.register_prehook`` /
``register_hook``), timing the node and adding the bytes of the gradients
it made; both hooks return ``None``, so gradients are untouched.  Every hook
is removed when the run ends: a backward in a later cell runs no torchmagic
code (and is not timed).

No full backward hook is registered (it would wrap the module's outputs in
``BackwardHookFunction`` and change their ``grad_fn``), and nothing keeps a
module or tensor alive: modules are held by weak reference, the report
names them by the path the cell called them by (``model.0``,
``enc.layers.3.linear1``).
"""

from __future__ import annotations

import functools
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch.nn.modules import module as nn_module

from torchmagic.core.guard import Fence
from torchmagic.core.meta import fmt_shape, shape_of
from torchmagic.core.names import module_names
from torchmagic.device.memory import TensorTracker
from torchmagic.device.ops import OpTimer
from torchmagic.device.report import ModuleStat

if TYPE_CHECKING:
    from torch.utils.hooks import RemovableHandle

__all__ = ["ModuleRecorder", "MAX_MODULES", "MAX_NODES"]

MAX_MODULES = 2000  # module instances recorded per cell (further ones are counted)
MAX_NODES = 20_000  # live autograd nodes hooked at once (a bigger graph's extra nodes are not timed)
_PRUNE_FIRST = 256  # hooked nodes before the first look for dead ones
_RETRY_FULL = 4096  # with MAX_NODES alive, look for dead ones again after this many ops
_MAX_WALK = 512  # autograd nodes of one call followed back to its inputs
_FORWARD, _BACKWARD = "forward", "backward"
_ACCUMULATE = "AccumulateGrad"  # a leaf's node: never one of an op's own


@dataclass(slots=True)
class _Called:
    """What one module instance did in the cell so far."""

    ref: weakref.ref[torch.nn.Module]
    type_name: str
    order: int
    parent: int  # key of the module that first called it (0: the cell)
    child_name: str  # its name in that parent ('' if it is not a direct child)
    params: int
    pattern: str  # its path below the first module the cell called, list indices as '#'
    calls: int = 0
    allocated: int = 0
    kept: int = 0
    grad_bytes: int = 0
    nodes: int = 0  # backward steps run
    out_shape: str = ""


@dataclass(slots=True)
class _Open:
    """A forward call in progress: the readings at its start."""

    key: int
    handle: int | None
    allocated: int
    live: int
    spent: float


def _out_shape(output: object) -> str:
    if isinstance(output, torch.Tensor):
        return fmt_shape(shape_of(output))
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return fmt_shape(shape_of(output[0])) + (", …" if len(output) > 1 else "")
    return ""


def _child_name(owner: torch.nn.Module, module: torch.nn.Module) -> str:
    """``module``'s path inside ``owner`` (``layers.0`` when a list holds it), ``''`` if not inside."""
    name = next((n for n, c in owner._modules.items() if c is module), None)
    if name is not None:
        return name
    return next((n for n, c in owner.named_modules() if c is module and n), "")


def _tensors(values: Sequence[object]) -> list[torch.Tensor]:
    """The tensors among a call's arguments, one level into lists and tuples."""
    found: list[torch.Tensor] = []
    for value in values:
        if isinstance(value, torch.Tensor):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            found.extend(v for v in value if isinstance(v, torch.Tensor))
    return found


def _nbytes(tensors: Sequence[object]) -> int:
    return sum(int(t.numel()) * int(t.element_size()) for t in tensors if isinstance(t, torch.Tensor))


class ModuleRecorder:
    """Context manager: module calls of the cell, timed forward and backward, with their memory.

    ``timer`` times calls and backward steps (host clock, or device events
    from the pool it shares with the per-op timer); ``tracker`` is the run's memory tracker (``None``:
    no memory columns); ``spent`` returns the seconds the watcher spent on
    its own bookkeeping so far, taken out of forward times on the host clock.
    """

    def __init__(
        self,
        timer: OpTimer[tuple[int, str]],
        tracker: TensorTracker | None,
        fence: Fence,
        spent: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self.timer = timer
        self.tracker = tracker
        self.fence = fence
        self.spent = spent
        self.overhead_s = 0.0  # our hooks' own time (part of the recorded run's recording time)
        self.skipped = 0  # module instances beyond MAX_MODULES
        self._called: dict[int, _Called] = {}
        self._stack: list[_Open] = []
        self._handles: list[RemovableHandle] = []
        self._nodes: list[RemovableHandle] = []  # every hook put on an autograd node
        self._hooked: dict[int, RemovableHandle] = {}  # node id -> its pre-hook (dead with the node)
        self._running: dict[int, int | None] = {}  # node id -> timer handle of its backward step
        self._prune_at = _PRUNE_FIRST
        self._refused = 0  # ops not hooked because MAX_NODES nodes are alive
        self._thread = 0
        self._stale = 0

    # -- context -------------------------------------------------------------------
    def __enter__(self) -> ModuleRecorder:
        self._thread = threading.get_ident()
        self._handles = [
            nn_module.register_module_forward_pre_hook(self._on_pre),
            nn_module.register_module_forward_hook(self._on_post, always_call=True),
        ]
        return self

    def __exit__(self, *exc_info: object) -> None:
        for handle in (*self._handles, *self._nodes):
            handle.remove()
        self._handles.clear()
        self._nodes.clear()
        self._stack.clear()
        self._hooked.clear()
        self._running.clear()

    # -- where the cell is ---------------------------------------------------------
    def current(self) -> int:
        """Key of the innermost module running now (0 outside every module)."""
        return self._stack[-1].key if self._stack else 0

    def layer(self, key: int) -> str:
        """What repeated layers share: ``enc.layers.3.linear1`` and ``enc.layers.4.linear1`` give the same."""
        called = self._called.get(key)
        return called.pattern if called is not None else ""

    # -- forward -------------------------------------------------------------------
    def _key(self, module: torch.nn.Module) -> int:
        key = id(module)
        called = self._called.get(key)
        if called is not None and called.ref() is module:
            return key
        if called is not None:  # a module that died; its id is reused: keep its row under another key
            self._stale -= 1
            self._called[self._stale] = called
        if len(self._called) >= MAX_MODULES:
            self.skipped += 1
            return 0
        parent = self.current()
        child_name = ""
        parent_called = self._called.get(parent)
        owner = parent_called.ref() if parent_called is not None else None
        if owner is not None:
            child_name = _child_name(owner, module)
        params = sum(int(p.numel()) for p in module.parameters())
        if parent_called is not None and child_name:
            pattern = ".".join([parent_called.pattern, *("#" if p.isdigit() else p for p in child_name.split("."))])
        else:
            pattern = f"<{key}>"
        self._called[key] = _Called(weakref.ref(module), type(module).__name__, len(self._called), parent,
                                    child_name, params, pattern)
        return key

    def _on_pre(self, module: torch.nn.Module, args: object) -> None:
        """The global forward pre-hook: fenced, and only for the cell's own thread."""
        if torch.compiler.is_compiling() or threading.get_ident() != self._thread:
            return
        try:
            self._pre(module)
        except Exception as exc:  # noqa: BLE001 - fenced: our failure must not reach the user
            self.fence.fail(exc)

    def _on_post(self, module: torch.nn.Module, args: object, output: object) -> None:
        """The global forward hook (called also when forward raised): fenced, the cell's thread only."""
        if torch.compiler.is_compiling() or threading.get_ident() != self._thread:
            return
        try:
            self._post(module, output)
        except Exception as exc:  # noqa: BLE001 - fenced: our failure must not reach the user
            self.fence.fail(exc)

    def _pre(self, module: torch.nn.Module) -> None:
        t0 = time.perf_counter()
        with torch._C.DisableTorchFunction():  # our own reads are not the cell's ops
            key = self._key(module)
        if not key:
            self.overhead_s += time.perf_counter() - t0
            return
        tracker = self.tracker
        opened = _Open(key, None, tracker.allocated if tracker else 0, tracker.live if tracker else 0, 0.0)
        self._stack.append(opened)
        self.overhead_s += time.perf_counter() - t0
        opened.spent = self.spent() + self.overhead_s
        opened.handle = self.timer.begin()  # last: nothing of ours inside the timing

    def _post(self, module: torch.nn.Module, output: object) -> None:
        t0 = time.perf_counter()
        key = id(module)
        stack = self._stack
        at = next((i for i in range(len(stack) - 1, -1, -1) if stack[i].key == key), None)
        if at is None:
            return  # not recorded (beyond MAX_MODULES)
        top = stack[at]
        del stack[at:]  # and calls above it that never returned (an interrupt)
        spent = self.spent() + self.overhead_s - top.spent
        self.timer.end((key, _FORWARD), top.handle, int(spent * 1e9))
        called = self._called[key]
        called.calls += 1
        if self.tracker is not None:
            called.allocated += self.tracker.allocated - top.allocated
            called.kept += self.tracker.live - top.live
        if not called.out_shape:
            with torch._C.DisableTorchFunction():  # our own reads are not the cell's ops
                called.out_shape = _out_shape(output)
        self.overhead_s += time.perf_counter() - t0

    # -- backward ------------------------------------------------------------------
    def made(self, outputs: Sequence[torch.Tensor], inputs: Sequence[object]) -> None:
        """The op just run inside a module made ``outputs`` from ``inputs``: time its backward steps.

        A composite call (``F.multi_head_attention_forward``) makes many
        autograd nodes: every node between its outputs and its inputs' nodes
        is the module's.
        """
        key = self.current()
        if not key:
            return
        todo = [t.grad_fn for t in outputs if t.grad_fn is not None]
        if not todo:
            return
        stop = {id(t.grad_fn) for t in _tensors(inputs) if t.grad_fn is not None}
        walked = 0
        while todo and walked < _MAX_WALK:
            node = todo.pop()
            nid = id(node)
            seen = self._hooked.get(nid)
            if nid in stop or (seen is not None and seen.hooks_dict_ref() is not None):
                continue  # an input's node, or hooked already (an op that returned its input)
            if len(self._hooked) >= self._prune_at:
                self._prune()
            if len(self._hooked) >= MAX_NODES:  # a graph this big: its further nodes are not timed
                self._refused += 1
                if self._refused % _RETRY_FULL == 0:
                    self._prune()
                return
            walked += 1
            stop.add(nid)
            self._hooked[nid] = node.register_prehook(functools.partial(self._on_step_begins, nid))
            self._nodes.append(self._hooked[nid])
            self._nodes.append(node.register_hook(functools.partial(self._on_step_ends, nid, key)))
            todo.extend(n for n, _ in node.next_functions if n is not None and type(n).__name__ != _ACCUMULATE)

    def _prune(self) -> None:
        """Forget the hooks of nodes that died (a training loop's earlier steps).

        Called when the count doubled since the last time, so memory follows the live graph.
        """
        self._nodes = [h for h in self._nodes if h.hooks_dict_ref() is not None]
        self._hooked = {nid: h for nid, h in self._hooked.items() if h.hooks_dict_ref() is not None}
        self._running = {nid: h for nid, h in self._running.items() if nid in self._hooked}
        self._prune_at = max(_PRUNE_FIRST, 2 * len(self._hooked))

    def _on_step_begins(self, nid: int, grad_outputs: object) -> None:
        """A node's pre-hook: fenced (an exception here would fail the user's backward)."""
        try:
            self._step_begins(nid)
        except Exception as exc:  # noqa: BLE001 - fenced: our failure must not reach the user
            self.fence.fail(exc)

    def _on_step_ends(self, nid: int, key: int, grad_inputs: Sequence[object], grad_outputs: object) -> None:
        """A node's hook: fenced; returns ``None``, so the gradients are left as they are."""
        try:
            self._step_ends(nid, key, grad_inputs)
        except Exception as exc:  # noqa: BLE001 - fenced: our failure must not reach the user
            self.fence.fail(exc)

    def _step_begins(self, nid: int) -> None:
        self._running[nid] = self.timer.begin()

    def _step_ends(self, nid: int, key: int, grad_inputs: Sequence[object]) -> None:
        self.timer.end((key, _BACKWARD), self._running.pop(nid, None))
        called = self._called.get(key)
        if called is not None:
            called.nodes += 1
            called.grad_bytes += _nbytes(grad_inputs)

    # -- results -------------------------------------------------------------------
    def names(self, namespace: Mapping[str, Any] | None) -> dict[int, str]:
        """key -> the path the cell called each module by (``model.0``), from its caller or the namespace."""
        known = module_names(namespace) if namespace is not None else {}
        paths: dict[int, str] = {}
        for key, called in sorted(self._called.items(), key=lambda kv: kv[1].order):
            parent = paths.get(called.parent, "")
            module = called.ref()
            if parent and called.child_name:
                paths[key] = f"{parent}.{called.child_name}"
            elif module is not None and id(module) in known:
                paths[key] = known[id(module)]
            else:
                paths[key] = f"{parent}.<{called.type_name}>" if parent else f"<{called.type_name}>"
        return paths

    def rows(self, paths: Mapping[int, str], limit: int) -> list[ModuleStat]:
        """Every module called, in call order, with its children's backward added (call after the sync)."""
        totals = self.timer.totals()
        order = sorted(self._called.items(), key=lambda kv: kv[1].order)
        depth: dict[int, int] = {}
        for key, called in order:
            depth[key] = depth.get(called.parent, -1) + 1 if called.parent else 0
        backward: dict[int, float] = {}
        grads: dict[int, int] = {}
        nodes: dict[int, int] = {}
        for key, called in reversed(order):  # children before parents: add each into its parent
            backward[key] = backward.get(key, 0.0) + totals.get((key, _BACKWARD), (0, 0.0, 0))[1]
            grads[key] = grads.get(key, 0) + called.grad_bytes
            nodes[key] = nodes.get(key, 0) + called.nodes
            if called.parent:
                backward[called.parent] = backward.get(called.parent, 0.0) + backward[key]
                grads[called.parent] = grads.get(called.parent, 0) + grads[key]
                nodes[called.parent] = nodes.get(called.parent, 0) + nodes[key]
        return [
            ModuleStat(
                path=paths.get(key, ""),
                type_name=called.type_name,
                depth=depth[key],
                calls=called.calls,
                forward_ms=max(totals.get((key, _FORWARD), (0, 0.0, 0))[1], 0.0),
                backward_ms=backward[key] if nodes[key] else None,
                allocated_bytes=called.allocated,
                kept_bytes=called.kept,
                grad_bytes=grads[key],
                params=called.params,
                out_shape=called.out_shape,
            )
            for key, called in order[:limit]
        ]

    @property
    def count(self) -> int:
        return len(self._called) + self.skipped

"""Which ``nn.Module`` call each op ran in: the module tree of a traced cell.

Two global module hooks (``register_module_forward_pre_hook`` and
``register_module_forward_hook(always_call=True)``) keep a stack of the
module calls in progress.  Each call is a :class:`Node`, identified by its
parent node, the module and the place it was called from, so ``self.pool``
called twice in ``forward`` gives two nodes in the order the data flowed,
while a loop calling ``net(x)`` again reuses one node and counts.  The
recorder reads :attr:`ModuleTracker.current` for every op and files the op's
row under that node.

A call of a module just like the one before it (``layers.1`` after
``layers.0``: same type, called in turn) is a *twin* of it: its ops are
counted in its first twin's rows (``twin`` is that node, for it and for its
children alike), so a 12-layer model costs what one layer costs to record
and the rows show ×12; each twin keeps its own node (path, shapes, time),
which is how the report folds them and still says what each one did.

What a node keeps is plain data (its name in its parent, the type name, the
parameter count, call count, time, the shapes of the first call) plus one
weak reference to the module, for naming it after the cell.  The hooks
return ``None`` (they never replace inputs or outputs), ignore other threads,
and are removed when the recording stops, however the cell ended.

One exception keeps results exact: PyTorch's Transformer modules take a fast
path in eval mode that is off while any ``TorchFunctionMode`` is active, so
the runner lifts torchmagic's modes off the stack for such a call
(:mod:`torchmagic.core.fastpath`); here it is one opaque node, and nothing
inside it is recorded.
"""

from __future__ import annotations

import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

import torch
import torch.nn.modules.module as module_mod
from torch import nn

from torchmagic.core.cell import cell_lineno
from torchmagic.core.fastpath import FAST_PATH_MODULES
from torchmagic.core.guard import Fence
from torchmagic.core.meta import fmt_shape
from torchmagic.trace.rows import Made

__all__ = ["Node", "ModuleTracker", "ModuleNames", "count_params", "shapes_text"]

_MODULE_FILE = module_mod.__file__
_MAX_NODES = 2000
_SHAPE_CALLS = 16  # input shapes are compared over a call site's first calls only


class ModuleNames:
    """The user's name for a module: ``net`` for a module in the namespace, ``net.encoder`` for one inside.

    Only the namespace's own entries are read up front (a dict scan); the
    modules inside them are walked the first time a module is not found
    there (a cell that calls ``model.encoder(x)`` directly).  Holds the
    namespace only while the cell runs.
    """

    def __init__(self, namespace: Mapping[str, Any]) -> None:
        self._namespace: Mapping[str, Any] | None = namespace
        self._top = {id(v): k for k, v in list(namespace.items()) if isinstance(v, nn.Module) and not k.startswith("_")}
        self._nested: dict[int, str] | None = None

    def __call__(self, module: nn.Module) -> str:
        name = self._top.get(id(module))
        if name is not None:
            return name
        if self._nested is None:
            self._nested = {}
            for top, value in list((self._namespace or {}).items()):
                if isinstance(value, nn.Module) and not top.startswith("_"):
                    for sub, m in value.named_modules(prefix=top):
                        self._nested.setdefault(id(m), sub)
        return self._nested.get(id(module), "")

    def forget(self) -> None:
        """Drop the namespace (the names found so far stay)."""
        self._namespace = None


def count_params(module: nn.Module, memo: dict[int, int]) -> int:
    """Parameter elements (not tensors) of ``module`` and its children, each module counted once via ``memo``.

    A parameter shared by two children counts twice; an uninitialised one
    (a lazy module's) counts 0.
    """
    known = memo.get(id(module))
    if known is not None:
        return known
    total = 0
    for p in module._parameters.values():
        if p is not None:
            try:
                total += p.numel()
            except (RuntimeError, ValueError):  # UninitializedParameter has no size yet
                continue
    for child in module._modules.values():
        if child is not None:
            total += count_params(child, memo)
    memo[id(module)] = total
    return total


def _shapes(values: Any) -> tuple[torch.Size, ...]:
    """The shapes of the tensors among a call's args or result (formatted later by :func:`shapes_text`)."""
    if isinstance(values, torch.Tensor):
        return (values.shape,)
    if not isinstance(values, (tuple, list)):
        return ()
    return tuple(v.shape for v in values if isinstance(v, torch.Tensor))


def shapes_text(shapes: tuple[torch.Size, ...]) -> str:
    """``'(8, 3, 32, 32)'``, ``'(10, 2, 64), (2, 10, 10)'`` (at most three)."""
    parts = [fmt_shape(tuple(s)) for s in shapes[:3]]
    return ", ".join(parts) + (", …" if len(shapes) > 3 else "")


_ATTRS: dict[tuple[int, int], tuple[weakref.ref[nn.Module], weakref.ref[nn.Module], str]] = {}


def _attr(owner: nn.Module, module: nn.Module) -> str:
    """``module``'s name inside ``owner``: ``conv1``, or ``layers.0`` inside a ModuleList (cached per pair)."""
    key = (id(owner), id(module))
    hit = _ATTRS.get(key)
    if hit is not None and hit[0]() is owner and hit[1]() is module:
        return hit[2]
    attr = next((n for n, m in owner._modules.items() if m is module), "") or next(
        (n for n, m in owner.named_modules() if m is module), "")
    if len(_ATTRS) > 8192:
        _ATTRS.clear()
    _ATTRS[key] = (weakref.ref(owner), weakref.ref(module), attr)
    return attr


class Node:
    """One module call site of the cell (plain data but for a weak reference to the module)."""

    __slots__ = ("index", "parent", "attr", "ref", "type", "count", "seconds", "inputs", "outputs",
                 "shape_sets", "items", "line", "name", "opaque", "twin", "ops")

    def __init__(self, index: int, parent: int, attr: str, module: nn.Module, line: int) -> None:
        self.index = index
        self.parent = parent
        self.attr = attr  # its attribute name in the parent module ("" when it is not a child of it)
        self.ref = weakref.ref(module)
        self.type = type(module).__name__
        self.count = 0
        self.seconds = 0.0
        self.inputs: tuple[torch.Size, ...] = ()  # tensor shapes of the first call
        self.outputs: tuple[torch.Size, ...] | str = ""  # ... of its result (or the result's type name)
        self.shape_sets: set[tuple[torch.Size, ...]] = set()  # distinct input shapes seen (at most 4 kept)
        self.items: list[tuple[str, int]] = []  # ("op", row index) / ("module", node index), first-seen order
        self.line = line  # the cell line of the outermost call
        self.name = ""  # a call made by the cell itself: the module's name before the cell, if it had one
        self.opaque = False  # run with the recorder lifted by core/fastpath (a fast path must stay available)
        self.twin = index  # the node whose rows its ops are counted in (itself, or the call it repeats)
        self.ops: set[int] = set()  # the rows already in ``items`` (a twin adds its first twin's rows once)


class ModuleTracker:
    """Keeps the stack of module calls in progress while the cell runs (see the module docstring).

    ``filename`` is the cell's; ``names`` gives a module's name before the
    cell (:class:`ModuleNames`); ``made`` receives ``id(output) -> (weakref, node
    index)`` for each node's first output, so an op using it can say what
    made it; ``top`` receives the nodes the cell calls itself.
    """

    def __init__(
        self,
        filename: str,
        names: Callable[[nn.Module], str],
        made: Made,
        top: list[tuple[str, int]],
        fence: Fence | None = None,
    ) -> None:
        self.fence = fence or Fence()
        self.filename = filename
        self.names = names
        self.made = made
        self.nodes: list[Node] = []
        self.top = top  # the cell's own items, shared with the recorder: ("module", node) appended in call order
        self.current = -1  # the innermost node in progress (-1: none); read by the recorder per op
        self.twin = -1  # ... and the node its ops are counted in
        self._keys: dict[tuple[Any, ...], int] = {}
        self._stack: list[tuple[int, int, float]] = []  # (node, id(module), start)
        self._thread = threading.get_ident()
        self._handles: list[Any] = []

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        """Register the two global hooks (both are removed by :meth:`stop`)."""
        self._handles.append(module_mod.register_module_forward_pre_hook(self._pre))
        try:
            self._handles.append(module_mod.register_module_forward_hook(self._post, always_call=True))
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Remove the hooks and forget the stack (idempotent)."""
        handles, self._handles = self._handles, []
        for h in handles:
            h.remove()
        self._stack.clear()
        self.current = -1

    # -- the hooks -----------------------------------------------------------------
    def _pre(self, module: nn.Module, args: Any) -> None:
        """Forward pre-hook: push the call (fenced: a failure of ours never reaches the user's forward)."""
        if threading.get_ident() != self._thread:
            return
        try:
            self._push(module, args, sys._getframe(1))
        except Exception as exc:  # noqa: BLE001 - the fence: the user's module call never sees our failure
            self.fence.fail(exc)
            self._stack.append((-1, id(module), 0.0))  # keep the stack balanced for _post

    def _push(self, module: nn.Module, args: Any, frame: FrameType) -> None:
        while frame.f_code.co_filename == _MODULE_FILE and frame.f_back is not None:
            frame = frame.f_back  # out of Module._call_impl: the line that called the module
        parent = self.current
        if parent >= 0 and self.nodes[parent].opaque:
            index = -1  # inside a module run untraced: its children are not recorded either
        else:
            key = (parent, id(module), frame.f_code, frame.f_lasti)
            found = self._keys.get(key)
            index = self._new_node(key, parent, module, frame) if found is None else found
        if index < 0:  # not the cell's: a marker keeps the stack balanced
            self._stack.append((-1, id(module), 0.0))
            return
        node = self.nodes[index]
        if isinstance(module, FAST_PATH_MODULES) and not module.training:
            node.opaque = True  # core/fastpath runs this call with our modes lifted: nothing inside is seen
        self._stack.append((index, id(module), time.perf_counter()))
        self.current = index
        self.twin = node.twin
        if node.count < _SHAPE_CALLS and len(node.shape_sets) < 4:  # a loop's later calls cost nothing here
            with torch._C.DisableTorchFunction():  # our own .shape reads are not the user's ops
                shapes = _shapes(args)
            if node.count == 0:
                node.inputs = shapes
            node.shape_sets.add(shapes)
        node.count += 1
        return

    def _post(self, module: nn.Module, args: Any, result: Any) -> None:
        """Forward hook (also when forward raised): pop the call (fenced like :meth:`_pre`)."""
        if threading.get_ident() != self._thread:
            return
        try:
            self._pop(module, result)
        except Exception as exc:  # noqa: BLE001 - the fence: the user's module call never sees our failure
            self.fence.fail(exc)

    def _pop(self, module: nn.Module, result: Any) -> None:
        stack = self._stack
        key = id(module)
        while stack:  # normally the top; deeper when a KeyboardInterrupt skipped inner posts
            index, mid, t0 = stack.pop()
            if index >= 0:
                node = self.nodes[index]
                node.seconds += time.perf_counter() - t0
                if mid == key and not node.outputs and result is not None:
                    with torch._C.DisableTorchFunction():  # our own .shape reads are not the user's ops
                        node.outputs = _shapes(result) or type(result).__name__
                    if isinstance(result, torch.Tensor):
                        self.made[id(result)] = (weakref.ref(result), ("module", index))
            if mid == key:
                break
        self.current = next((i for i, *_ in reversed(stack) if i >= 0), -1)
        self.twin = self.nodes[self.current].twin if self.current >= 0 else -1
        return

    def _new_node(self, key: tuple[Any, ...], parent: int, module: nn.Module, frame: FrameType) -> int:
        """A node for a new call site; -1 when the call is not the cell's (or past the cap)."""
        if len(self.nodes) >= _MAX_NODES:
            self._keys[key] = -1
            return -1
        if parent < 0:
            line = cell_lineno(self.filename, frame, max_depth=200)
            if not line:  # a module called outside the cell (display code, another thread's work)
                self._keys[key] = -1
                return -1
        else:
            line = self.nodes[parent].line
        attr = ""
        if parent >= 0:
            owner = self.nodes[parent].ref()
            if owner is not None:  # a child, or deeper inside containers that are never called (ModuleList)
                attr = _attr(owner, module)
        index = len(self.nodes)
        node = Node(index, parent, attr, module, line)
        if parent < 0:
            node.name = self.names(module)
        siblings = self.nodes[parent].items if parent >= 0 else self.top
        node.twin = self._twin_of(node, parent, siblings)
        self.nodes.append(node)
        siblings.append(("module", index))
        self._keys[key] = index
        return index

    def _twin_of(self, node: Node, parent: int, siblings: list[tuple[str, int]]) -> int:
        """The first twin of a new call: the sibling call just before it if of the same type (its twin),
        or, inside a twin, the same child of the call it repeats; else itself."""
        before = next((i for kind, i in reversed(siblings) if kind == "module"), -1)
        if before >= 0:
            prev = self.nodes[before]
            if prev.type == node.type and prev.ref() is not node.ref() and not prev.opaque:
                return prev.twin
        if parent >= 0:
            outer = self.nodes[parent]
            if outer.twin != parent:  # a child of a repeated call: the same child of the first call
                for kind, i in self.nodes[outer.twin].items:
                    if kind == "module" and self.nodes[i].attr == node.attr and self.nodes[i].type == node.type:
                        return self.nodes[i].twin
        return node.index

    def path(self, index: int) -> str:
        """A node's path while the cell runs (names known before the cell; the report has the final ones)."""
        node = self.nodes[index]
        if node.parent < 0:
            return node.name or f"{node.type}()"
        return f"{self.path(node.parent)}.{node.attr or '<' + node.type + '>'}"

    def add_op(self, row: int) -> None:
        """A row counted in the current call's first twin ran in the current call: list it there once."""
        node = self.nodes[self.current]
        if row not in node.ops:
            node.ops.add(row)
            node.items.append(("op", row))


"""Watch a running cell for ``backward()`` calls and for what escapes autograd.

A :class:`torch.overrides.TorchFunctionMode` sees every ``Tensor.backward``,
``torch.autograd.backward`` and ``torch.autograd.grad`` call (handed to the
:class:`~torchmagic.autograd.backward.BackwardRecorder`), every ``.detach()``
and ``.data`` access and every op run with grad disabled.  Nothing here keeps
a tensor, a ``grad_fn`` or a saved tensor: leaves are held only for the
duration of one call, everything else is weak references or plain data.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import FrameType
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from torchmagic.autograd.backward import BackwardRecorder
from torchmagic.autograd.follow import Follower
from torchmagic.autograd.ledger import GradLedger
from torchmagic.autograd.log import WatchLog
from torchmagic.autograd.modules import ModuleRecorder
from torchmagic.autograd.options import WatchOptions
from torchmagic.autograd.report import Note, Untracked
from torchmagic.autograd.site import CellSite
from torchmagic.autograd.steps import StepLog
from torchmagic.core.funcs import INPLACE_DUNDER
from torchmagic.core.guard import Fence
from torchmagic.core.saved import read_saved
from torchmagic.i18n import tr

__all__ = ["AutogradWatcher"]

_DATA_GET = torch._C.TensorBase.__dict__["data"].__get__  # what TF sees for `.data`
_DATA_SET = torch._C.TensorBase.__dict__["data"].__set__  # ... for `t.data = other`
_SPECIAL: dict[Any, str] = {  # what the mode sees -> what it is (backward calls: how the report names them)
    torch.Tensor.backward: "backward",
    torch.autograd.backward: "torch.autograd.backward",
    torch.autograd.grad: "torch.autograd.grad",
    _DATA_GET: "data.get",
    _DATA_SET: "data.set",
    torch.Tensor.detach: "detach",
    torch.detach: "detach",
}
_MAX_EVENTS = 50
_is_compiling = torch.compiler.is_compiling
_grad_enabled = torch.is_grad_enabled


def _func_name(func: Any) -> str:
    return getattr(func, "__name__", None) or str(func)


def _is_inplace(name: str) -> bool:
    return name in INPLACE_DUNDER or (name.endswith("_") and not name.endswith("__"))


@dataclass
class _DataRef:
    source: weakref.ref[torch.Tensor]
    name: str
    line: int


class AutogradWatcher(TorchFunctionMode):
    """The torch function mode active while an ``%%autograd`` cell runs."""

    def __init__(
        self,
        site: CellSite,
        ledger: GradLedger,
        options: WatchOptions,
        run: int = 0,
        cell_key: str = "",
        modules: ModuleRecorder | None = None,
        steps: StepLog | None = None,
    ) -> None:
        super().__init__()
        self.site = site
        self.options = options
        self.log = WatchLog()
        self.fence = Fence()  # our own recording failures, said once after the cell
        self.steps = steps or StepLog(self.fence)
        self.backward = BackwardRecorder(site, self.log, ledger, options, run, cell_key, modules, self.steps)
        self._data: dict[int, tuple[weakref.ref[torch.Tensor], _DataRef]] = {}  # .data results seen
        self._untracked_keys: dict[tuple[str, int, str], int] = {}
        self.modules = modules
        self.follower = Follower(self.log, self.steps, ledger, site.namespace, self.fence)
        self.detached = False  # off the function-mode stack: a loop is followed through its leaves
        self.followed = False  # ... at some point of this cell

    def step_aside(self) -> None:
        """From a hook that runs in the user's code: hand a loop over to the follower, and leave the stack.

        Only when the last detailed backward call asked for it and this mode is
        on top of the stack (a mode the user pushed above it stays undisturbed).
        """
        handoff = self.backward.handoff
        if handoff is None or self.detached:
            return
        try:
            depth = torch._C._len_torch_function_stack()
            if depth == 0 or torch._C._get_function_stack_at(depth - 1) is not self:
                return
            torch._C._pop_torch_function_stack()
            self.detached = self.followed = True
            self.backward.handoff = None
            self.follower.start(handoff)
            if self.modules is not None:
                self.modules.__exit__(None, None, None)
        except Exception as exc:  # noqa: BLE001 - recording must never break the user's step
            self.fence.fail(exc)

    def __exit__(self, *exc_info: Any) -> None:
        self.follower.stop()
        if self.detached:  # back on the stack, so that exiting the mode pops this mode and no other
            torch._C._push_on_torch_function_stack(self)
            self.detached = False
        super().__exit__(*exc_info)

    # -- the mode ---------------------------------------------------------------
    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        __tracebackhide__ = True
        kwargs = dict(kwargs) if kwargs else {}  # a copy: a DeviceContext below us edits it in place
        if _is_compiling():
            return func(*args, **kwargs)
        try:
            special = _SPECIAL.get(func)
        except TypeError:  # an unhashable callable
            special = None
        if special is None:
            if self.steps.stepping:  # inside optimizer.step(): its own business, and many small ops
                return func(*args, **kwargs)
            if self._data and args and isinstance(args[0], torch.Tensor):
                self._fenced(self._check_data_inplace, func, args[0])
            if _grad_enabled():
                return func(*args, **kwargs)  # the common case: nothing to record
            out = func(*args, **kwargs)
            if any(isinstance(a, torch.Tensor) and a.requires_grad for a in args):
                self._fenced(self._on_untracked, func, args, kwargs, out, True)
            return out
        if special == "data.get":
            out = func(*args, **kwargs)
            self._fenced(self._on_data, args[0], out)
            return out
        if special == "data.set":
            if args and isinstance(args[0], torch.Tensor):
                self._fenced(self._on_data_set, args[0])
            return func(*args, **kwargs)
        if special == "detach":
            out = func(*args, **kwargs)
            self._fenced(self._on_untracked, func, args, kwargs, out, not torch.is_grad_enabled())
            return out
        return self.backward.record(special, func, args, kwargs)

    def _fenced(self, step: Callable[..., None], *args: Any) -> None:
        """Run one recording step; a failure is ours, said after the cell, never the user's op's."""
        try:
            step(*args)
        except Exception as exc:  # noqa: BLE001 - recording must never break the user's op
            self.fence.fail(exc)

    # -- not tracked ------------------------------------------------------------
    def _on_untracked(self, func: Any, args: Any, kwargs: Any, out: Any, grad_off: bool) -> None:
        name = _func_name(func)
        if name in {"_set_grad_enabled", "__get__", "__set__", "__repr__", "__format__"}:
            return
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
        if not any(t.requires_grad for t in tensors):
            return
        frame = self.site.frame()
        if frame is None or (grad_off and _in_custom_function(frame)):
            return
        line = frame.f_lineno
        kind = ("inference_mode" if torch.is_inference_mode_enabled() else "no_grad") if grad_off else "detach"
        if self._count_again(kind, line, name):
            return
        names = self.site.names()
        inputs = tuple(names.get(id(t), "") or tr("a tensor") for t in tensors if t.requires_grad)
        self._add(Untracked(kind, line, self.site.source(line), name, inputs))
        if isinstance(out, torch.Tensor):
            self.log.outputs[len(self.log.untracked) - 1] = weakref.ref(out)
            if kind == "detach":
                self.log.cuts[id(out)] = (weakref.ref(out), tr("{code} (line {line})", code=f"{inputs[0]}.detach()",
                                                               line=line))

    def _count_again(self, kind: str, line: int, op: str) -> bool:
        """True (and one more counted) when this kind of event was already listed for this line and op."""
        idx = self._untracked_keys.get((kind, line, op))
        if idx is not None:
            self.log.untracked[idx] = replace(self.log.untracked[idx], count=self.log.untracked[idx].count + 1)
            return True
        return len(self.log.untracked) >= _MAX_EVENTS

    def _add(self, row: Untracked) -> None:
        self._untracked_keys[(row.kind, row.line, row.op)] = len(self.log.untracked)
        self.log.untracked.append(row)

    def _on_data(self, source: Any, out: torch.Tensor) -> None:
        """``w.data``: remember it, so a write through it can be told (reading it is harmless)."""
        if not isinstance(source, torch.Tensor) or not source.requires_grad or self.site.frame() is None:
            return
        if len(self._data) > 1024:
            self._data = {k: v for k, v in self._data.items() if v[0]() is not None}
        name = self.site.names().get(id(source), "") or tr("a tensor")
        self._data[id(out)] = (weakref.ref(out), _DataRef(weakref.ref(source), name, self.site.line()))

    def _check_data_inplace(self, func: Callable[..., Any], target: torch.Tensor) -> None:
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
        self._written(ref.name, source, name)

    def _on_data_set(self, target: torch.Tensor) -> None:
        """``t.data = other`` swaps the values autograd may have saved for ``t``."""
        if not target.requires_grad or self.site.frame() is None:
            return
        name = self.site.names().get(id(target), "") or tr("a tensor")
        self._written(name, target, ".data =")

    def _written(self, name: str, source: torch.Tensor, op: str) -> None:
        """A write through ``.data``: a warning when autograd saved the tensor, else one listed row."""
        line = self.site.line()
        if not self._count_again("data", line, op):
            self._add(Untracked("data", line, self.site.source(line), op, (name,)))
        saved_by = self._saved_by(source)
        if not saved_by:
            return
        if op == ".data =":
            what = tr("{name}.data was replaced (.data = ..., line {line})", name=name, line=line)
        else:
            what = tr("{name}.data was modified in place ({op}, line {line})", name=name, op=op, line=line)
        self.log.notes.append(Note(
            kind="data-inplace",
            line=line,
            subject=name,
            message=tr(
                "{what} after autograd saved {name} for {saved_by}. .data hides the change from autograd, so the "
                "next backward() through that graph silently uses the new values: the gradient will be wrong "
                "and nothing raises.", what=what, name=name, saved_by=saved_by
            ),
            fix=tr(
                "Change {name} before the forward pass or after backward(), inside "
                "`with torch.no_grad():` and without .data; {name}.detach() instead of "
                ".data would at least raise an error here.", name=name
            ),
        ))

    def _saved_by(self, source: torch.Tensor) -> str:
        """Which backward node of a live graph saved (a view of) ``source``."""
        storage = _storage(source)
        if storage is None:
            return ""
        starts: list[Any] = [t.grad_fn for t in _tensors_in(self.site.namespace) if t.grad_fn is not None]
        for ref in self.log.roots:
            t = ref()
            if t is not None and t.grad_fn is not None:
                starts.append(t.grad_fn)
        seen: set[int] = set()
        stack = starts
        budget = self.options.autograd_max_nodes
        while stack and budget > 0:
            fn = stack.pop()
            if id(fn) in seen:
                continue
            seen.add(id(fn))
            budget -= 1
            saved = read_saved(fn)
            if saved.freed:  # a backward ran through here: everything above is freed too
                continue
            for _, value in saved.values:
                if isinstance(value, torch.Tensor) and value.layout == torch.strided and _storage(value) == storage:
                    return str(fn.name())
            stack.extend(c for c, _ in fn.next_functions if c is not None)
        return ""

def _in_custom_function(frame: FrameType) -> bool:
    """True inside an ``autograd.Function``'s forward/backward, which run without grad by design."""
    return frame.f_code.co_name in {"forward", "backward", "setup_context", "jvp", "vjp"} and (
        "ctx" in frame.f_code.co_varnames[: frame.f_code.co_argcount]
    )


def _storage(t: torch.Tensor) -> int | None:
    """The address of ``t``'s storage (``None`` for tensors without one, e.g. sparse or meta)."""
    try:
        return int(t.untyped_storage().data_ptr())
    except (RuntimeError, NotImplementedError):
        return None


def _tensors_in(ns: Mapping[str, Any]) -> list[torch.Tensor]:
    return [v for k, v in list(ns.items()) if isinstance(v, torch.Tensor) and not k.startswith("_")]

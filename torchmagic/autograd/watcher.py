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
from dataclasses import dataclass
from types import FrameType
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from torchmagic.autograd.backward import BackwardRecorder
from torchmagic.autograd.ledger import GradLedger
from torchmagic.autograd.log import WatchLog
from torchmagic.autograd.options import WatchOptions
from torchmagic.autograd.report import Note, Untracked
from torchmagic.autograd.site import CellSite
from torchmagic.core.funcs import INPLACE_DUNDER
from torchmagic.core.guard import Fence
from torchmagic.core.saved import read_saved

__all__ = ["AutogradWatcher"]

_DATA_GET = torch._C.TensorBase.__dict__["data"].__get__  # what TF sees for `.data`
_DATA_SET = torch._C.TensorBase.__dict__["data"].__set__  # ... for `t.data = other`
_BACKWARDS = {  # what the mode sees -> how the report names the call
    torch.Tensor.backward: "backward",
    torch.autograd.backward: "torch.autograd.backward",
    torch.autograd.grad: "torch.autograd.grad",
}
_MAX_EVENTS = 50


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
    ) -> None:
        super().__init__()
        self.site = site
        self.options = options
        self.log = WatchLog()
        self.fence = Fence()  # our own recording failures, said once after the cell
        self.backward = BackwardRecorder(site, self.log, ledger, options, run, cell_key)
        self._data: dict[int, tuple[weakref.ref[torch.Tensor], _DataRef]] = {}
        self._untracked_keys: dict[tuple[str, int, str], int] = {}

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
            return self.backward.record(kind, func, args, kwargs)
        if func is _DATA_GET or func == _DATA_GET:
            out = func(*args, **kwargs)
            try:
                self._on_data(args[0], out)
            except Exception as exc:  # noqa: BLE001 - recording must never break the user's op
                self.fence.fail(exc)
            return out
        if func == _DATA_SET and args and isinstance(args[0], torch.Tensor):
            try:
                self._on_data_set(args[0])
            except Exception as exc:  # noqa: BLE001 - recording must never break the user's op
                self.fence.fail(exc)
        elif self._data and args and isinstance(args[0], torch.Tensor):
            try:
                self._check_data_inplace(func, args[0])
            except Exception as exc:  # noqa: BLE001 - recording must never break the user's op
                self.fence.fail(exc)
        grad_off = not torch.is_grad_enabled()
        if not grad_off and _func_name(func) != "detach":
            return func(*args, **kwargs)
        out = func(*args, **kwargs)
        try:
            self._on_untracked(func, args, kwargs, out, grad_off)
        except Exception as exc:  # noqa: BLE001 - recording must never break the user's op
            self.fence.fail(exc)
        return out

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
        names = self.site.names()
        inputs = tuple(names.get(id(t), "") or "a tensor" for t in tensors if t.requires_grad)
        self._untracked_keys[key] = len(self.log.untracked)
        self.log.untracked.append(Untracked(kind, line, self.site.source(line), name, inputs))
        if isinstance(out, torch.Tensor):
            self.log.outputs[len(self.log.untracked) - 1] = weakref.ref(out)
            if kind == "detach":
                self.log.cuts[id(out)] = (weakref.ref(out), f"{inputs[0]}.detach() (line {line})")

    def _on_data(self, source: Any, out: torch.Tensor) -> None:
        if not isinstance(source, torch.Tensor) or not source.requires_grad:
            return
        frame = self.site.frame()
        if frame is None:
            return
        line = frame.f_lineno
        name = self.site.names().get(id(source), "a tensor")
        self._data[id(out)] = (weakref.ref(out), _DataRef(weakref.ref(source), name, line))
        key = ("data", line, "data")
        if key not in self._untracked_keys and len(self.log.untracked) < _MAX_EVENTS:
            self._untracked_keys[key] = len(self.log.untracked)
            self.log.untracked.append(
                Untracked("data", line, self.site.source(line), ".data", (name,))
            )

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
        self._warn_data(ref.name, source, f"modified in place ({name}")

    def _on_data_set(self, target: torch.Tensor) -> None:
        """``t.data = other`` swaps the values autograd may have saved for ``t``."""
        if not target.requires_grad or self.site.frame() is None:
            return
        name = self.site.names().get(id(target), "a tensor")
        self._warn_data(name, target, "replaced (.data = ...")

    def _warn_data(self, name: str, source: torch.Tensor, what: str) -> None:
        saved_by = self._saved_by(source)
        if not saved_by:
            return
        line = self.site.line()
        self.log.notes.append(Note(
            kind="data-inplace",
            line=line,
            subject=name,
            message=(
                f"{name}.data was {what}, line {line}) after autograd saved {name} for "
                f"{saved_by}. .data hides the change from autograd, so the next backward() "
                "through that graph silently uses the new values: the gradient will be wrong "
                "and nothing raises."
            ),
            fix=(
                f"Change {name} before the forward pass or after backward(), inside "
                f"`with torch.no_grad():` and without .data; {name}.detach() instead of "
                ".data would at least raise an error here."
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

"""Watch a cell's torch calls: copies across devices, sync-forcing ops, op times.

One ``TorchFunctionMode`` sees every user-level call: what the cell wrote
(``x.item()``, ``print(x)``, ``x.to("cuda")``, ``torch.tensor(data,
device=...)``) and what nn.Module code calls for it (``F.linear``, the
``Tensor.to`` of each parameter inside ``model.to(...)``).  For each call it

* notes a *transfer* when a copy-like call (``Tensor.to``/``cuda``/``cpu``/
  ``copy_``/``type``, ``torch.tensor``/``as_tensor``/``asarray``,
  ``Tensor.new_tensor``) returns a tensor on another device than its source;
  creating a tensor on a device (``torch.ones(..., device=...)``,
  ``empty_like(x, device=...)``) is not a copy;
* flags calls that make Python wait for an asynchronous device: reading
  values back (``.item()``, ``.tolist()``, ``bool(x)``, printing, copies to
  the host) and ops whose output size depends on the values (``nonzero``,
  boolean-mask indexing, ``torch.where(cond)``, ``unique``, ``bincount``,
  ``repeat_interleave`` with tensor repeats, ``equal``/``allclose``);
* times the call for the op breakdown and hands its outputs to the memory
  tracker;
* explains device-mismatch errors before re-raising them unchanged.

No ``TorchDispatchMode`` is pushed: while one is active PyTorch treats every
tensor as a subclass and takes other paths in composite ops and backward
formulas, which changes results in the last bits.  The price is what the
function level cannot see: calls made *inside* another torch call (a
composite op's pieces, ``Tensor.__repr__``'s copy of a GPU tensor to the
host, which is reported as a sync point, not as a transfer) and the aten ops
of ``backward()``; a sync hidden inside a C++ kernel or a backward formula
(say a ``nonzero`` inside some op's implementation) is not flagged.

Records are plain tuples of str/int keyed by cell line; no tensor, frame or
grad_fn is kept.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from types import FrameType
from typing import Any

import torch.overrides
from torch.overrides import TorchFunctionMode

from torchmagic.core.cell import cell_lineno
from torchmagic.core.funcs import func_info
from torchmagic.core.guard import Fence
from torchmagic.core.meta import dtype_name, shape_of
from torchmagic.device.devices import ASYNC_DEVICE_TYPES
from torchmagic.device.memory import TensorTracker, storage_key
from torchmagic.device.mismatch import explain, tensor_operands
from torchmagic.device.ops import OpTimer, display_name, op_key
from torchmagic.device.report import Mismatch, SyncOp, Transfer
from torchmagic.device.timing import Clock

__all__ = ["Watcher", "direction", "prime"]

# user-level names that always wait for the device, and why
_SYNC_METHODS = {
    "item": ".item() copies one value to Python",
    "tolist": ".tolist() copies every value to Python",
    "cpu": ".cpu() copies to the host and waits",
    "numpy": ".numpy() needs the values on the host",
    "nonzero": "nonzero: the output size depends on the values",
    "argwhere": "argwhere: the output size depends on the values",
    "masked_select": "masked_select: the output size depends on the values",
    "unique": "unique: the output size depends on the values",
    "unique_consecutive": "unique_consecutive: the output size depends on the values",
    "bincount": "bincount: the output size depends on the largest value",
    "equal": "equal returns a Python bool: the result is read back",
    "allclose": "allclose returns a Python bool: the result is read back",
    "is_nonzero": "is_nonzero returns a Python bool: the value is read back",
    "__bool__": "a tensor in an if/while condition is read back to Python",
    "__int__": "int(tensor) reads the value back",
    "__float__": "float(tensor) reads the value back",
    "__index__": "using a tensor as an index reads the value back",
    "__repr__": "printing a tensor copies its values to the host",
    "__format__": "formatting a tensor copies its values to the host",
    "__str__": "printing a tensor copies its values to the host",
}
_PRINT_NAMES = {"__repr__", "__format__", "__str__"}
# calls whose index argument (position 1) may hold a boolean mask
_MASK_INDEX = {"__getitem__", "__setitem__", "index_put_", "index_put", "_index_put_impl_"}
_MASK_WHY = "indexing with a boolean mask: the output size depends on the values"
_WHERE_WHY = "torch.where(cond) with one argument is nonzero: the output size depends on the values"
_REPEAT_WHY = "repeat_interleave with tensor repeats and no output_size: the output size depends on the values"
_HOST_COPY_WHY = "copying to the host waits for the device"
# copy-like calls: their output is a copy of their source, maybe on another device
_COPY_METHODS = {"to", "cuda", "cpu", "copy_", "type", "mps", "xpu", "ipu", "hpu", "mtia", "new_tensor"}
_TENSOR_CTORS = {"tensor", "as_tensor", "asarray"}
_COPY_NAMES = _COPY_METHODS | _TENSOR_CTORS
# frames whose torch calls are display machinery (a library's Python __repr__), not the cell's work
_DISPLAY_FRAMES = frozenset(
    "__repr__ __str__ __format__ _repr_pretty_ _repr_html_ _repr_markdown_ _repr_latex_ "
    "_repr_mimebundle_ __rich__ __rich_repr__ __rich_console__ _tensor_str".split()
)


_OVERRIDES = torch.overrides.__file__


def direction(src: str, dst: str) -> str:
    """``'cpu', 'cuda:0'`` -> ``'host→device'``."""
    host_src, host_dst = src.startswith("cpu"), dst.startswith("cpu")
    if host_src and not host_dst:
        return "host→device"
    if host_dst and not host_src:
        return "device→host"
    return "device→device"


def _name(func: Any) -> str:
    return str(getattr(func, "__name__", "") or getattr(func, "__qualname__", "") or func)


def _storage_keys(args: tuple[Any, ...]) -> set[int]:
    """Storages of a call's tensor inputs: outputs sharing one are views, not new memory."""
    import torch

    keys: set[int] = set()
    for arg in args:
        items = arg if isinstance(arg, (list, tuple)) else (arg,)
        for item in items:
            if isinstance(item, torch.Tensor):
                key = storage_key(item)
                if key is not None:
                    keys.add(key)
    return keys


def _is_mask(index: Any) -> bool:
    """A boolean/uint8 tensor, alone or inside an index tuple/list (``x[m]``, ``x[:, m]``)."""
    import torch

    items = index if isinstance(index, (list, tuple)) else (index,)
    return any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) for i in items)


def _sync_reason(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """Why this call waits for the device (``None`` if it does not)."""
    import torch

    why = _SYNC_METHODS.get(name)
    if why is not None:
        return why
    if name in _MASK_INDEX:
        index = args[1] if len(args) > 1 else kwargs.get("indices")
        return _MASK_WHY if _is_mask(index) else None
    if name == "where":
        return _WHERE_WHY if len(args) + len(kwargs) == 1 else None
    if name == "repeat_interleave" and "output_size" not in kwargs:
        if len(args) == 1 and not kwargs:  # torch.repeat_interleave(repeats)
            return _REPEAT_WHY
        repeats = args[1] if len(args) > 1 else kwargs.get("repeats")
        return _REPEAT_WHY if isinstance(repeats, torch.Tensor) else None
    return None


def _copy_source(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """The device a copy-like call copies from: a tensor's, or ``'cpu'`` for host data (a list, NumPy)."""
    import torch

    if name == "copy_":
        src = args[1] if len(args) > 1 else kwargs.get("src")
    elif name == "new_tensor":
        src = args[1] if len(args) > 1 else kwargs.get("data")
    elif name in _TENSOR_CTORS:
        src = args[0] if args else kwargs.get("data", kwargs.get("obj"))
    else:
        src = args[0] if args else None
    if isinstance(src, torch.Tensor):
        return str(src.device)
    if name in _TENSOR_CTORS or name == "new_tensor":
        return "cpu"  # Python or NumPy data lives on the host
    return None


def _display_frame(frame: FrameType | None, func: Any, filename: str, max_depth: int = 60) -> bool:
    """Whether the call comes from display machinery (a library's ``__repr__``), not the cell.

    The walk starts at the frame that called the mode; torch's own dispatch
    frames and the frame of ``func`` itself (``Tensor.__repr__`` asking for
    its override) are not callers.
    """
    own = getattr(func, "__code__", None)
    depth = 0
    while frame is not None and depth < max_depth:
        code = frame.f_code
        if code is not own and code.co_filename != _OVERRIDES and code.co_name in _DISPLAY_FRAMES:
            return True  # also a __repr__ defined in the cell itself
        if code.co_filename == filename:
            return False
        frame = frame.f_back
        depth += 1
    return False


_PRIMED = False


def prime() -> None:
    """Use the mode once on a tiny op, outside any timing.

    The first call through a Python mode imports parts of torch; a user's
    first ``%%device`` run must not be charged for that.
    """
    global _PRIMED
    if _PRIMED:
        return
    import torch

    watcher = Watcher("<prime>", [], "cpu", OpTimer(Clock()), TensorTracker(0))
    with watcher:
        (torch.zeros(1) + 1).sum().to("meta")
    _PRIMED = True


class _UserMode(TorchFunctionMode):
    def __init__(self, watcher: Watcher) -> None:
        super().__init__()
        self.w = watcher

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        import torch

        __tracebackhide__ = True
        kwargs = dict(kwargs or {})  # a DeviceContext below us edits it in place
        if torch.compiler.is_compiling():
            return func(*args, **kwargs)
        w = self.w
        t0 = time.perf_counter()
        name = ""
        key: tuple[str, str] | None = None
        handle: Any = None
        label = ""  # set for copy-like calls: the transfer row's op
        try:  # bookkeeping is fenced: a failure here must never change the user's op
            name = _name(func)
            # a library's Python __repr__ (not the cell's work): its syncs and copies are
            # the printing's, and it is neither timed nor tracked
            display = _display_frame(sys._getframe(1), func, w.filename)
            why = _sync_reason(name, args, kwargs)
            if why is not None and args and isinstance(args[0], torch.Tensor):
                dev = args[0].device
                if dev.type in w.sync_types:
                    printing = display or name in _PRINT_NAMES
                    w.note_sync("print" if printing else display_name(func), str(dev), why)
            if not display and w.times(func):
                key = op_key(func, args, kwargs)
            if name in _COPY_NAMES:
                label = "print" if display else key[0] if key is not None else display_name(func)
        except Exception as exc:  # noqa: BLE001
            w.fence.fail(exc)
            key, label = None, ""
        t1 = time.perf_counter()
        if key is not None:
            try:
                handle = w.ops.begin()
            except Exception as exc:  # noqa: BLE001
                w.fence.fail(exc)
                key = None
        t2 = time.perf_counter()
        try:
            out = func(*args, **kwargs)
        except Exception as exc:
            t3 = time.perf_counter()
            try:
                w.note_error(exc, name, args, kwargs)
            except Exception as internal:  # noqa: BLE001 - the user's error stays the user's
                w.fence.fail(internal)
            w.recording_s += (t2 - t0) + (time.perf_counter() - t3)
            raise
        t3 = time.perf_counter()
        if key is not None or label:
            try:
                if key is not None:
                    w.ops.end(key, handle)
                    self._track(key[0], args, kwargs, out)
                if label:
                    self._transfer(label, name, args, kwargs, out)
            except Exception as exc:  # noqa: BLE001
                w.fence.fail(exc)
        w.recording_s += (t1 - t0) + (time.perf_counter() - t3)
        return out

    def _transfer(self, label: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        """A copy-like call whose output is on another device than its source is a transfer."""
        import torch

        w = self.w
        if not isinstance(out, torch.Tensor):
            return  # x.type() without arguments returns a string
        src = _copy_source(name, args, kwargs)
        if src is None or src == str(out.device):
            return
        w.note_transfer(label, src, str(out.device), out)
        non_blocking = bool(kwargs.get("non_blocking")) or (name == "copy_" and len(args) > 2 and args[2] is True)
        host_copy = src.split(":")[0] in w.sync_types and out.device.type == "cpu" and not non_blocking
        if host_copy and name not in _SYNC_METHODS:  # .cpu() was flagged before the call
            w.note_sync(label, src, _HOST_COPY_WHY)

    def _track(self, op: str, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        """Hand the call's new tensors to the memory tracker (views of its inputs are not new)."""
        import torch

        tracker = self.w.tracker
        if tracker is None:
            return
        outs = [out] if isinstance(out, torch.Tensor) else out if isinstance(out, (tuple, list)) else ()
        inputs: set[int] | None = None
        for item in outs:
            if isinstance(item, torch.Tensor):
                if inputs is None:
                    inputs = _storage_keys(args) | _storage_keys(tuple(kwargs.values()))
                tracker.add(item, op, inputs)


class Watcher:
    """Context manager recording what a cell did on its devices.

    ``filename`` is the cell's ``co_filename`` (to find the user's line);
    ``sync_types`` are the device types on which reading back waits (the
    asynchronous ones; tests pass ``{"cpu"}`` to exercise the path).
    """

    def __init__(
        self,
        filename: str,
        lines: list[str],
        target: str,
        ops: OpTimer,
        tracker: TensorTracker | None = None,
        namespace: Mapping[str, Any] | None = None,
        sync_types: frozenset[str] | set[str] = ASYNC_DEVICE_TYPES,
        max_rows: int = 50,
    ) -> None:
        self.filename = filename
        self.lines = lines
        self.target = target
        self.ops = ops
        self.tracker = tracker
        self.namespace = namespace
        self.sync_types = frozenset(sync_types)
        self.max_rows = max_rows
        self.transfers: dict[tuple[int, str, str, str], list[Any]] = {}
        self.transfer_count = 0
        self.transfer_bytes = 0
        self.syncs: dict[tuple[int, str, str], list[Any]] = {}
        self._mismatches: list[tuple[BaseException, Mismatch]] = []
        self.recording_s = 0.0
        self.fence = Fence()  # failures of our own bookkeeping, said once after the cell
        self._mode: _UserMode | None = None
        if tracker is not None:
            tracker.line_of = self.line

    # -- context ---------------------------------------------------------------
    def __enter__(self) -> Watcher:
        mode = _UserMode(self)
        mode.__enter__()
        self._mode = mode
        return self

    def __exit__(self, *exc: Any) -> None:
        mode, self._mode = self._mode, None
        if mode is not None:
            mode.__exit__(*exc)

    # -- where in the cell -----------------------------------------------------
    def line(self) -> tuple[int, str]:
        """(line number, source text) of the innermost frame running the cell."""
        n = cell_lineno(self.filename, sys._getframe(1))
        text = self.lines[n - 1].strip() if 1 <= n <= len(self.lines) else ""
        return n, text

    # -- records -----------------------------------------------------------------
    @staticmethod
    def times(func: Any) -> bool:
        """Whether a call is an op for the breakdown (not ``.shape``, ``len(x)`` or a private helper)."""
        info = func_info(func)
        return not info.skip and not (info.name.startswith("_") and not info.name.startswith("__"))

    def note_transfer(self, op: str, src: str, dst: str, out: Any) -> None:
        nbytes = int(out.numel()) * int(out.element_size())
        self.transfer_count += 1
        self.transfer_bytes += nbytes
        line, _source = self.line()
        key = (line, op, src, dst)
        rec = self.transfers.get(key)
        if rec is None:
            if len(self.transfers) >= self.max_rows:
                return
            self.transfers[key] = [0, 0, shape_of(out), dtype_name(out.dtype)]
            rec = self.transfers[key]
        rec[0] += 1
        rec[1] += nbytes

    def note_sync(self, op: str, device: str, why: str) -> None:
        line, _source = self.line()
        key = (line, op, device)
        rec = self.syncs.get(key)
        if rec is None:
            if len(self.syncs) >= self.max_rows:
                return
            rec = self.syncs[key] = [0, why]
        rec[0] += 1

    def note_error(self, exc: BaseException, op: str, args: tuple[Any, ...], kwargs: Any) -> None:
        """Explain ``exc`` if it is about devices (kept until :meth:`mismatch_for` asks)."""
        if any(seen is exc for seen, _ in self._mismatches) or len(self._mismatches) >= 8:
            return
        line, source = self.line()
        found = explain(exc, tensor_operands(args, kwargs), op, line, source, self.target, self.namespace)
        if found is not None:
            self._mismatches.append((exc, found))

    def mismatch_for(self, error: BaseException) -> Mismatch | None:
        """The explanation for the exception that ended the cell (or the one it chains from).

        Device errors the cell caught itself are not reported.  The exceptions
        are dropped here, so the watcher keeps no frames alive.
        """
        chain: list[BaseException] = []
        cur: BaseException | None = error
        while cur is not None and len(chain) < 8 and all(cur is not c for c in chain):
            chain.append(cur)
            cur = cur.__cause__ or cur.__context__
        found = next((m for exc, m in reversed(self._mismatches) if any(exc is c for c in chain)), None)
        self._mismatches.clear()
        return found

    # -- results -------------------------------------------------------------------
    def transfer_rows(self) -> list[Transfer]:
        rows = [
            Transfer(
                line=line,
                source=self._source(line),
                op=op,
                src=src,
                dst=dst,
                direction=direction(src, dst),
                count=rec[0],
                nbytes=rec[1],
                shape=rec[2],
                dtype=rec[3],
            )
            for (line, op, src, dst), rec in self.transfers.items()
        ]
        return sorted(rows, key=lambda r: (r.line, r.op))

    def sync_rows(self) -> list[SyncOp]:
        rows = [
            SyncOp(line=line, source=self._source(line), op=op, device=dev, count=rec[0], why=rec[1])
            for (line, op, dev), rec in self.syncs.items()
        ]
        return sorted(rows, key=lambda r: (r.line, r.op))

    def _source(self, line: int) -> str:
        return self.lines[line - 1].strip() if 1 <= line <= len(self.lines) else ""


"""Watch a cell's torch calls: copies across devices, sync-forcing ops, op times.

Two modes work together (pushed in this order, see torch-internals notes):

* a ``TorchFunctionMode`` sees the user-level call (``x.item()``,
  ``print(x)``, ``torch.tensor(data, device=...)``, ``F.linear``): it flags
  operations that make Python wait for an asynchronous device, notes which
  user op is running (so an aten copy made while printing is labelled
  ``print``), and explains device-mismatch errors before re-raising them
  unchanged;
* a ``TorchDispatchMode`` sees every aten op, including those inside modules
  and backward: it records copies whose source and destination devices differ
  (``_to_copy``, ``copy_``), times each op for the breakdown and hands new
  tensors to the memory tracker.

Records are plain tuples of str/int keyed by cell line; no tensor, frame or
grad_fn is kept.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Mapping

from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from torchmagic.core.cell import cell_lineno
from torchmagic.core.guard import Fence
from torchmagic.core.meta import dtype_name, shape_of
from torchmagic.device.devices import ASYNC_DEVICE_TYPES
from torchmagic.device.memory import TensorTracker
from torchmagic.device.mismatch import explain, tensor_operands
from torchmagic.device.ops import OpTimer, op_key
from torchmagic.device.report import Mismatch, SyncOp, Transfer
from torchmagic.device.timing import Clock

__all__ = ["Watcher", "direction", "prime"]

# user-level (TorchFunctionMode) names that wait for the device, and why
_SYNC_METHODS = {
    "item": ".item() copies one value to Python",
    "tolist": ".tolist() copies every value to Python",
    "cpu": ".cpu() copies to the host and waits",
    "numpy": ".numpy() needs the values on the host",
    "nonzero": "nonzero: the output size depends on the values",
    "argwhere": "argwhere: the output size depends on the values",
    "masked_select": "masked_select: the output size depends on the values",
    "unique": "unique: the output size depends on the values",
    "__bool__": "a tensor in an if/while condition is read back to Python",
    "__int__": "int(tensor) reads the value back",
    "__float__": "float(tensor) reads the value back",
    "__index__": "using a tensor as an index reads the value back",
    "__repr__": "printing a tensor copies its values to the host",
    "__format__": "formatting a tensor copies its values to the host",
    "__str__": "printing a tensor copies its values to the host",
}
_PRINT_NAMES = {"__repr__", "__format__", "__str__"}
# aten ops that wait for the device, for calls the user-level mode did not flag
_SYNC_ATEN = {
    "_local_scalar_dense": "reads one value back to Python (.item(), bool(), int())",
    "nonzero": "nonzero: the output size depends on the values",
    "masked_select": "masked_select: the output size depends on the values",
    "_unique2": "unique: the output size depends on the values",
}
_MASK_INDEX = {"index", "index_put_", "index_put", "_index_put_impl_"}
_MASK_WHY = "indexing with a boolean mask: the output size depends on the values"
_COPY_ATEN = {"_to_copy", "copy_", "copy", "_copy_from", "_copy_from_and_resize", "to"}
_TENSOR_CTORS = {"tensor", "as_tensor", "asarray"}


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


def _aten_base(func: Any) -> str:
    packet = getattr(func, "overloadpacket", None)
    return str(getattr(packet, "__name__", "") or _name(func).split(".")[0])


def _storage_keys(args: tuple[Any, ...]) -> set[int]:
    """Storages of an op's tensor inputs: outputs sharing one are views, not new memory."""
    import torch

    keys: set[int] = set()
    for arg in args:
        items = arg if isinstance(arg, (list, tuple)) else (arg,)
        for item in items:
            if isinstance(item, torch.Tensor):
                try:
                    keys.add(int(item.untyped_storage()._cdata))
                except (RuntimeError, NotImplementedError, TypeError, AttributeError):
                    pass
    return keys


def _has_bool_index(indices: Any) -> bool:
    import torch

    if not isinstance(indices, (list, tuple)):
        return False
    return any(
        isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) for i in indices
    )


_PRIMED = False


def prime() -> None:
    """Use both modes once on a tiny op, outside any timing.

    The first dispatch through a Python mode imports parts of torch (about a
    second); a user's first ``%%device`` run must not be charged for that.
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
        kwargs = dict(kwargs or {})
        if torch.compiler.is_compiling():
            return func(*args, **kwargs)
        w = self.w
        t0 = time.perf_counter()
        pushed = ctor = False
        name = ""
        try:  # bookkeeping is fenced: a failure here must never change the user's op
            name = _name(func)
            sync_why = _SYNC_METHODS.get(name)
            flagged = False
            if sync_why is not None and args and isinstance(args[0], torch.Tensor):
                dev = args[0].device
                if dev.type in w.sync_types:
                    label = "print" if name in _PRINT_NAMES else name.strip("_")
                    w.note_sync(label, str(dev), sync_why)
                    flagged = True
            # torch.tensor(data, device=...) copies host data without an aten copy op we
            # could see; from a tensor, the aten copy (if any) is seen by the dispatch mode
            ctor = name in _TENSOR_CTORS and not (args and isinstance(args[0], torch.Tensor))
            w.user_ops.append((name, flagged, ctor))
            pushed = True
        except Exception as exc:  # noqa: BLE001
            w.fence.fail(exc)
        w.recording_s += time.perf_counter() - t0
        try:
            out = func(*args, **kwargs)
        except Exception as exc:
            t1 = time.perf_counter()
            try:
                w.note_error(exc, name, args, kwargs)
            except Exception as internal:  # noqa: BLE001 - the user's error stays the user's
                w.fence.fail(internal)
            w.recording_s += time.perf_counter() - t1
            raise
        finally:
            if pushed:
                w.user_ops.pop()
        if ctor and isinstance(out, torch.Tensor) and out.device.type != "cpu":
            t1 = time.perf_counter()
            try:
                w.note_transfer(f"torch.{name}", "cpu", str(out.device), out)
            except Exception as exc:  # noqa: BLE001
                w.fence.fail(exc)
            w.recording_s += time.perf_counter() - t1
        return out


class _AtenMode(TorchDispatchMode):
    def __init__(self, watcher: Watcher) -> None:
        super().__init__()
        self.w = watcher

    @classmethod
    def ignore_compile_internals(cls) -> bool:
        """Let torch.compile'd code run compiled (and be timed as it really runs).

        Without this, dynamo skips compiled functions under a dispatch mode and
        (torch 2.13) keeps skipping them after the cell: the user's compiled
        function would silently run eager from then on, and a later call under
        a function mode could even return different values.
        """
        return True

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        import torch

        __tracebackhide__ = True
        w = self.w
        t0 = time.perf_counter()
        kwargs = kwargs or {}
        key: tuple[str, str] | None = None
        handle: Any = None
        try:  # fenced bookkeeping: see _UserMode
            key = op_key(func, args)
            handle = w.ops.begin()
        except Exception as exc:  # noqa: BLE001
            w.fence.fail(exc)
            key = None
        t1 = time.perf_counter()
        out = func(*args, **kwargs)
        t2 = time.perf_counter()
        if key is not None:
            try:
                self._record(func, args, key, handle, out)
            except Exception as exc:  # noqa: BLE001
                w.fence.fail(exc)
        w.recording_s += (t1 - t0) + (time.perf_counter() - t2)
        return out

    def _record(self, func: Any, args: tuple[Any, ...], key: tuple[str, str], handle: Any, out: Any) -> None:
        import torch

        w = self.w
        w.ops.end(key, handle)
        base = _aten_base(func)
        if base in _COPY_ATEN and isinstance(out, torch.Tensor):
            if base == "_to_copy" or base == "to":
                src_t = args[0] if args else None
            else:  # copy_(dst, src)
                src_t = args[1] if len(args) > 1 else None
            if isinstance(src_t, torch.Tensor) and src_t.device != out.device:
                if not (w.user_ops and w.user_ops[-1][2]):  # torch.tensor(...) noted already
                    w.note_transfer(f"aten.{base}", str(src_t.device), str(out.device), out)
                    if src_t.device.type in w.sync_types and out.device.type == "cpu":
                        w.note_sync_aten(base, str(src_t.device), "copying to the host waits for the device")
        elif base in _SYNC_ATEN and args and isinstance(args[0], torch.Tensor):
            if args[0].device.type in w.sync_types:
                w.note_sync_aten(base, str(args[0].device), _SYNC_ATEN[base])
        elif base in _MASK_INDEX and len(args) > 1 and isinstance(args[0], torch.Tensor):
            if args[0].device.type in w.sync_types and _has_bool_index(args[1]):
                w.note_sync_aten(base, str(args[0].device), _MASK_WHY)
        if w.tracker is not None:
            outs = [out] if isinstance(out, torch.Tensor) else out if isinstance(out, (tuple, list)) else ()
            inputs: set[int] | None = None
            for item in outs:
                if isinstance(item, torch.Tensor):
                    if inputs is None:
                        inputs = _storage_keys(args)
                    w.tracker.add(item, key[0], inputs)


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
        self.user_ops: list[tuple[str, bool, bool]] = []  # (name, sync flagged, tensor ctor)
        self.transfers: dict[tuple[int, str, str, str], list[Any]] = {}
        self.transfer_count = 0
        self.transfer_bytes = 0
        self.syncs: dict[tuple[int, str, str], list[Any]] = {}
        self._mismatches: list[tuple[BaseException, Mismatch]] = []
        self.recording_s = 0.0
        self.fence = Fence()  # failures of our own bookkeeping, said once after the cell
        self._modes: list[Any] = []
        if tracker is not None:
            tracker.line_of = self.line

    # -- context ---------------------------------------------------------------
    def __enter__(self) -> Watcher:
        user, aten = _UserMode(self), _AtenMode(self)
        user.__enter__()
        try:
            aten.__enter__()
        except BaseException:
            user.__exit__(None, None, None)
            raise
        self._modes = [user, aten]
        return self

    def __exit__(self, *exc: Any) -> None:
        user, aten = self._modes
        self._modes = []
        try:
            aten.__exit__(*exc)
        finally:
            user.__exit__(*exc)

    # -- where in the cell -----------------------------------------------------
    def line(self) -> tuple[int, str]:
        """(line number, source text) of the innermost frame running the cell."""
        n = cell_lineno(self.filename, sys._getframe(1))
        text = self.lines[n - 1].strip() if 1 <= n <= len(self.lines) else ""
        return n, text

    # -- records -----------------------------------------------------------------
    def _user_label(self, default: str) -> str:
        for name, _flagged, _ctor in reversed(self.user_ops):
            if name in _PRINT_NAMES:
                return "print"
        return default

    def note_transfer(self, op: str, src: str, dst: str, out: Any) -> None:
        nbytes = int(out.numel()) * int(out.element_size())
        self.transfer_count += 1
        self.transfer_bytes += nbytes
        line, _source = self.line()
        key = (line, self._user_label(op), src, dst)
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

    def note_sync_aten(self, base: str, device: str, why: str) -> None:
        if any(flagged for _n, flagged, _c in self.user_ops):
            return  # the user-level call was flagged already
        self.note_sync(f"aten.{base}", device, why)

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


"""Find where NaN and ±Inf start: the first op whose output has them while its inputs had none.

Checking every output with its own reduction would cost a call into torch
per op (a few µs) and, on an accelerator, a synchronisation per op.  So
outputs are checked in batches:

* after each floating-point op, the op is appended to a short batch (its
  tag, its arguments and its output: held until the batch is checked, at
  most :data:`BATCH` ops later, and never beyond the cell).  A large
  output, or an op about to write in place (``add_``, ``out=``,
  ``inplace=True``), checks the batch at once, so values are always read
  as the op made them;
* on the CPU a batch is checked with one sum over all its outputs (a
  non-finite sum means a non-finite value, or an overflow of the sum: then
  each output is checked on its own).  Only then, for the first output
  found, are its inputs checked (were they finite?), and the counts and the
  reason computed (:func:`why`);
* on an accelerator nothing is read per batch: one ``_foreach_norm`` over
  the batch's inputs and outputs leaves a row of norms on the device, and
  all rows are read once, at the end of the cell (:meth:`NanWatch.finish`).
  Counts and reasons need the values, which are gone by then: the report
  says so.

Reading values never changes them: everything runs under ``no_grad`` with
every torch function mode disabled.  Tags are opaque to this module (a row
index for the trace, a source position for the any-cell watch).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from torchmagic.core.meta import dtype_name
from torchmagic.i18n import N_, tr

__all__ = ["NanWatch", "Found", "why", "counts_text", "BATCH", "DEFERRED_NOTE"]

# shown where values were read once at the end of the cell (an accelerator): translated where it is shown
DEFERRED_NOTE = N_("read once at the end of the cell (no synchronisation per op): no counts")

BATCH = 64  # ops per batch
LARGE = 1 << 16  # outputs with more elements are checked at once, not held
# the dtypes that can hold NaN/Inf and that sum and isfinite read on every device (not complex32: CPU has no sum)
_FLOATS = frozenset({torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.complex64,
                     torch.complex128})
_STRIDED = torch.strided
_Tensor = torch.Tensor
_Op = tuple[Hashable, str, Sequence[Any], dict[str, Any], torch.Tensor]  # tag, op name, args, kwargs, output


@dataclass
class Found:
    """The first op that made non-finite values (plain data but for the tag)."""

    tag: Hashable
    op: str = ""
    nan: int = -1  # counts in its output; -1 where they could not be read (accelerator, read at the end)
    posinf: int = -1
    neginf: int = -1
    why: str = ""  # "log of a negative number and of 0"
    came_in: bool = False  # its inputs had non-finite values already: they came from before the cell
    kind: str = ""  # read at the end (accelerator): "NaN" or "±Inf", all a norm can say

    def made(self) -> str:
        """``'1 NaN and 1 −Inf'``; ``'NaN'`` where only a norm was read."""
        return self.kind if self.nan < 0 and self.kind else counts_text(self.nan, self.posinf, self.neginf)

    def note(self) -> str:
        """Why there are no counts (values read once at the end of the cell), or ``''``."""
        return "" if self.nan >= 0 else tr(DEFERRED_NOTE)


def counts_text(nan: int, posinf: int, neginf: int) -> str:
    """``'1 NaN and 1 −Inf'`` (``'NaN or ±Inf'`` when the counts are unknown)."""
    if nan < 0:
        return tr("NaN or ±Inf")
    parts = [tr("{n} {value}", n=n, value=name) for n, name in ((nan, "NaN"), (posinf, "+Inf"), (neginf, "−Inf"))
             if n]
    return _and(parts)


def _and(parts: Sequence[str]) -> str:
    """``'a'``, ``'a and b'``, ``'a, b and c'`` in the current language."""
    if len(parts) < 2:
        return "".join(parts)
    if len(parts) == 2:
        return tr("{a} and {b}", a=parts[0], b=parts[1])
    return tr("{a}, {b} and {c}", a=parts[0], b=parts[1], c=parts[2])


def _tensors(args: Sequence[Any], kwargs: dict[str, Any]) -> list[torch.Tensor]:
    out = []
    for a in (*args, *kwargs.values()):
        if isinstance(a, _Tensor):
            out.append(a)
        elif isinstance(a, (list, tuple)):
            out.extend(t for t in a if isinstance(t, _Tensor))
    return out


def _readable(t: torch.Tensor) -> bool:
    """A tensor whose values we can read: floating point, dense, with memory, not a subclass (Parameter aside)."""
    return (type(t) is _Tensor or type(t) is torch.nn.Parameter) and t.dtype in _FLOATS and (
        t.layout is _STRIDED and not t.is_meta and not t.is_nested and t.numel() > 0)


def _stackable(batch: list[_Op]) -> bool:
    """Are all outputs on the CPU with the first one's shape?  (A nested tensor has no single shape: no.)

    Asked before stacking, not left to ``torch.stack`` to refuse: its error
    path for a meta tensor imports sympy (and registers a warning filter).
    """
    try:
        shape = batch[0][4].shape
        return all(b[4].is_cpu and b[4].shape == shape for b in batch)
    except RuntimeError:
        return False


def _storage(t: Any) -> int | None:
    """The address of ``t``'s memory (None: not a tensor with memory we can tell)."""
    try:
        ptr = int(t.untyped_storage().data_ptr()) if isinstance(t, _Tensor) else 0
    except (RuntimeError, NotImplementedError):
        return None
    return ptr or None  # 0: no memory (meta, an empty tensor): cannot be told apart


def written(func_inplace: bool, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    """What an op is about to write into: its ``out=`` tensor, or its first argument when in place (else None)."""
    out = kwargs.get("out") if kwargs else None
    if out is not None:
        return out
    if func_inplace or (kwargs and kwargs.get("inplace")):
        return args[0] if args else None
    return None


def _finite(t: torch.Tensor) -> bool:
    return bool(torch.isfinite(t).all())


class NanWatch:
    """Batches float outputs and finds the first non-finite one (see the module docstring).

    ``found`` is the first origin (None until one is found); ``carried``
    counts, per tag, the executions whose output held non-finite values.
    ``defer`` forces the read-at-the-end path (what accelerators use), for
    tests on the CPU; ``read`` turns the device rows into host lists (one
    call per :meth:`finish`).
    """

    def __init__(self, defer: bool = False, read: Callable[[torch.Tensor], list[float]] | None = None) -> None:
        self.found: Found | None = None
        self.carried: dict[Hashable, int] = {}
        self.pending: list[_Op] = []
        self.checked = 0  # outputs checked (CPU) or queued (deferred)
        self.defer = defer
        self._read = read or (lambda t: t.tolist())
        # deferred: per batch and device, a row of norms on the device and, per op, where its norms are
        self._rows: list[tuple[torch.Tensor, list[tuple[Hashable, str, range, int]]]] = []
        self.reads = 0  # host reads of device flags (one per finish on an accelerator)
        self._ptrs: list[int | None] = []  # memory addresses of pending outputs, filled when a write asks

    # -- per op --------------------------------------------------------------------
    def add(self, tag: Hashable, op: str, args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> None:
        """After op ``op``: queue its output (if a floating-point tensor) for the next check."""
        if type(out) is _Tensor:  # the hot path: a plain tensor (its layout is checked with the batch)
            if out.dtype not in _FLOATS:
                return
        elif not (isinstance(out, _Tensor) and _readable(out)):
            return
        pending = self.pending
        pending.append((tag, op, args, kwargs, out))
        if len(pending) >= BATCH or out.numel() > LARGE:
            self.flush()

    def before_write(self, target: Any) -> None:
        """Before an op writes into ``target``: check the batch now if it holds an output in that memory.

        Held outputs must be read as their op made them; a write elsewhere
        (an optimizer updating parameters) leaves them alone, so the batch
        goes on.  A target whose memory cannot be told checks the batch.
        """
        pending = self.pending
        if not pending:
            return
        where = _storage(target)
        if where is None:
            self.flush()
            return
        ptrs = self._ptrs  # the held outputs' memory, each read once (in-place ops come often in loops)
        ptrs.extend(_storage(b[4]) for b in pending[len(ptrs):])
        if where in ptrs:
            self.flush()

    # -- checking --------------------------------------------------------------------
    def flush(self) -> None:
        """Check the batch (CPU: now; deferred: queue a device row) and let go of its tensors."""
        batch, self.pending = self.pending, []
        self._ptrs = []
        if not batch:
            return
        with torch._C.DisableTorchFunction(), torch.no_grad():
            first = batch[0][4]
            if not self.defer and first.layout is _STRIDED and _stackable(batch):
                try:  # the usual case, a loop: same shape, all on the CPU (stack refuses other devices)
                    self._check_now(batch, torch.stack([b[4] for b in batch]))
                    return
                except RuntimeError:
                    pass
            devices: dict[torch.device, list[_Op]] = {}
            for b in batch:
                if _readable(b[4]):
                    devices.setdefault(b[4].device, []).append(b)
            for device, ops in devices.items():
                if device.type == "cpu" and not self.defer:  # shapes differ: one sum each, no copies
                    self._check_now(ops, torch.stack([b[4].sum() for b in ops]))
                else:
                    self._queue(ops)

    def _check_now(self, batch: list[_Op], joined: torch.Tensor) -> None:
        """CPU: one sum over the batch's outputs (``joined``); each output on its own only if it is not finite."""
        self.checked += len(batch)
        if math.isfinite(abs(complex(joined.sum().item()))):
            return
        for tag, op, args, kwargs, out in batch:
            if not _readable(out) or _finite(out):
                continue
            self.carried[tag] = self.carried.get(tag, 0) + 1
            if self.found is None:
                self.found = _origin(tag, op, args, kwargs, out)

    def _queue(self, batch: list[_Op]) -> None:
        """Accelerator: the norms of every input and output stay on the device; nothing is read now."""
        tensors: list[torch.Tensor] = []
        spans: list[tuple[Hashable, str, range, int]] = []
        for tag, op, args, kwargs, out in batch:
            ins = [t for t in _tensors(args, kwargs) if _readable(t) and t.device == out.device]
            start = len(tensors)
            tensors.extend(ins)
            spans.append((tag, op, range(start, start + len(ins)), len(tensors)))
            tensors.append(out)
        self.checked += len(spans)
        self._rows.append((torch.stack(torch._foreach_norm(tensors, math.inf)), spans))

    def finish(self) -> Found | None:
        """At the end of the cell: check what is left, read the device rows (once per device), let go of all."""
        self.flush()
        rows, self._rows = self._rows, []
        by_device: dict[torch.device, list[tuple[torch.Tensor, list[tuple[Hashable, str, range, int]]]]] = {}
        for row, spans in rows:
            by_device.setdefault(row.device, []).append((row, spans))
        for entries in by_device.values():
            with torch._C.DisableTorchFunction(), torch.no_grad():
                values = self._read(torch.cat([r.float() for r, _ in entries]))
            self.reads += 1
            offset = 0
            for row, spans in entries:
                norms = values[offset:offset + len(row)]
                offset += len(row)
                for tag, op, ins, at in spans:
                    if not math.isfinite(norms[at]):
                        self._deferred_hit(tag, op, norms, ins, at)
        return self.found

    def _deferred_hit(self, tag: Hashable, op: str, norms: list[float], ins: range, at: int) -> None:
        self.carried[tag] = self.carried.get(tag, 0) + 1
        if self.found is None:
            came_in = any(not math.isfinite(norms[i]) for i in ins)
            self.found = Found(tag, op, came_in=came_in, kind="NaN" if math.isnan(norms[at]) else "±Inf")


def _origin(tag: Hashable, op: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Found:
    """The first non-finite output, read now: its counts, and why (or that its inputs had them already)."""
    ins = _tensors(args, kwargs)
    came_in = any(_readable(t) and t.device == out.device and not _finite(t) for t in ins)
    real = torch.view_as_real(out) if out.is_complex() else out
    found = Found(
        tag,
        op,
        int(torch.isnan(real).sum()),
        int(torch.isposinf(real).sum()),
        int(torch.isneginf(real).sum()),
        came_in=came_in,
    )
    if not came_in:
        found.why = why(op, args, out)
    return found


def _num(t: Any) -> torch.Tensor | None:
    if isinstance(t, _Tensor):
        return t
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        return torch.tensor(t)
    return None


def _n(mask: torch.Tensor) -> int:
    return int(mask.sum())


def _domain(x: torch.Tensor | None, rules: list[Callable[[torch.Tensor], torch.Tensor]]) -> tuple[bool, ...]:
    """Which of ``rules`` some element of ``x`` meets (all False without ``x``)."""
    if x is None:
        return tuple(False for _ in rules)
    return tuple(bool(_n(rule(x))) for rule in rules)


def _two(hits: tuple[bool, ...], first: str, second: str = "", both: str = "", **fields: Any) -> str:
    """The sentence for one or two domain rules: either one alone, or both (whole sentences: word order may change)."""
    a, b = hits[0], len(hits) > 1 and hits[1]
    message = both if a and b else first if a else second if b else ""
    return tr(message, **fields) if message else ""


_LOGS = {"log", "log2", "log10", "log_"}


def why(op: str, args: Sequence[Any], out: torch.Tensor) -> str:
    """Why ``op`` made NaN/Inf from finite inputs, in words (``''`` when no rule knows).

    Pure arithmetic facts: the log of a negative number is NaN and of 0 is
    −Inf, x/0 is ±Inf and 0/0 NaN, and so on; anything else that turns
    finite numbers into Inf overflowed the dtype's range.
    """
    base = op.strip("_").removeprefix("r") if op.startswith("__") else op.rstrip("_")
    a = _num(args[0]) if args else None
    b = _num(args[1]) if len(args) > 1 else None
    if op.startswith("__r") and op not in ("__rshift__",):
        a, b = b, a
    text = ""
    if base in _LOGS:
        text = _two(_domain(a, [lambda x: x < 0, lambda x: x == 0]), N_("{op} of a negative number"),
                    N_("{op} of 0"), N_("{op} of a negative number and of 0"), op=op.rstrip("_"))
    elif base == "log1p":
        text = _two(_domain(a, [lambda x: x < -1, lambda x: x == -1]), N_("log1p of a number below -1"),
                    N_("log1p of -1"), N_("log1p of a number below -1 and of -1"))
    elif base == "sqrt":
        text = _two(_domain(a, [lambda x: x < 0]), N_("square root of a negative number"))
    elif base == "rsqrt":
        text = _two(_domain(a, [lambda x: x < 0, lambda x: x == 0]), N_("1/sqrt of a negative number"),
                    N_("1/sqrt of 0"), N_("1/sqrt of a negative number and of 0"))
    elif base in ("div", "true_divide", "truediv", "divide", "reciprocal"):
        num, den = (torch.ones(()), a) if base == "reciprocal" else (a, b)
        if den is not None and num is not None:
            zero = den == 0
            text = _two((bool(_n(zero & (num != 0))), bool(_n(zero & (num == 0)))),
                        N_("division of a nonzero number by 0"), N_("0/0"),
                        N_("division of a nonzero number by 0 and 0/0"))
    elif base in ("acos", "asin", "arccos", "arcsin"):
        text = _two(_domain(a, [lambda x: x.abs() > 1]), N_("{op} of a number outside [-1, 1]"),
                    op=base)
    elif base in ("atanh", "arctanh"):
        text = _two(_domain(a, [lambda x: x.abs() > 1, lambda x: x.abs() == 1]),
                    N_("atanh of a number outside [-1, 1]"), N_("atanh of ±1"),
                    N_("atanh of a number outside [-1, 1] and of ±1"))
    elif base in ("acosh", "arccosh"):
        text = _two(_domain(a, [lambda x: x < 1]), N_("acosh of a number below 1"))
    elif base in ("fmod", "remainder", "mod"):
        text = _two(_domain(b, [lambda x: x == 0]), N_("remainder of a division by 0"))
    elif base in ("pow", "float_power") and a is not None and b is not None:
        text = _two((bool(_n(a.lt(0) & b.ne(b.floor()))), bool(_n(a.eq(0) & b.lt(0)))),
                    N_("a negative number to a fractional power"), N_("0 to a negative power"),
                    N_("a negative number to a fractional power and 0 to a negative power"))
    if not text and bool(torch.isinf(out).any()):
        text = tr("overflow: results beyond {dtype}'s largest value ({largest})", dtype=dtype_name(out.dtype),
                  largest=f"{torch.finfo(out.dtype).max:.3g}")
    return text

"""Run PyTorch's OpInfo samples bare and under each torchmagic recorder; compare exactly.

The engine behind ``tests/hardening/test_opinfo.py`` and
``benchmarks/opinfo_report.py``.  For one OpInfo entry and one dtype, each
sample input is copied afresh (storage, offset, size and strides preserved),
the RNG is seeded identically, and a small cell runs the op (and, where the op
supports autograd, ``backward()`` on its outputs with fixed gradients) through
:meth:`torchmagic.core.cell.Cell.run` — bare, then inside each recorder,
driven through the same Python-level collectors the magics use, including
building the report afterwards.  Outputs, the inputs after the call (in-place
ops), the leaves' ``.grad`` and the RNG state afterwards must be identical:
values bitwise (NaNs at the same positions, signed zeros included), dtype,
shape, strides, storage offset, layout, ``requires_grad`` and ``grad_fn``
type.  An exception must be of the same type with the same message, and
building a report must not raise.

A recorder's difference is *excluded*, with the reason recorded here, only
when the op is not reproducible without torchmagic (:func:`unstable`: another
bare run differs, e.g. after scribbling over freed memory) or the difference is
intermittent (:func:`intermittent`: a rerun under the same recorder matches).
Anything else is a torchmagic defect and fails the test.  No recorder pushes a
TorchDispatchMode: under one, PyTorch takes other paths in a few composite ops
and backward formulas, so that would fail here too (the checker's own tests
show it).
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils import _pytree as pytree

from torchmagic.core.cell import Cell
from torchmagic.options import options_for

__all__ = [
    "RECORDERS",
    "OpResult",
    "op_db",
    "op_id",
    "int_dtype",
    "sweep_op",
    "sweep",
]

FILENAME = "<torchmagic-opinfo-cell>"
SEED = 20261127
# Samples per op and dtype: a few pooling ops have over 1000 each and would take
# most of the sweep's time; 64 spread over the list keep every generator branch.
MAX_SAMPLES = 64
INPLACE_SAMPLES = 16  # samples per dtype for the op's in-place variant (``x.add_(y)``), if it has one
RERUNS = 5  # reruns of a recorder whose result differed, to tell intermittent from systematic
# Every report is built; every RENDER_EVERY-th sample's report is also rendered to HTML and text.
RENDER_EVERY = 8
INT_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)

FORWARD = "out = fn(inp, *args, **kwargs)"
BACKWARD = FORWARD + "\nbackward_on(out)"


# -- sample copies ---------------------------------------------------------------
def _copy_tensor(t: torch.Tensor) -> torch.Tensor:
    """A fresh leaf with the same values and the same memory layout (strides, offset, overlap)."""
    if type(t) is not torch.Tensor or t.layout != torch.strided or t.is_quantized or t.is_nested:
        c = t.detach().clone()
    else:
        c = torch.empty(0, dtype=t.dtype, device=t.device)
        c.set_(t.untyped_storage().clone(), t.storage_offset(), t.size(), t.stride())
        if t.is_conj():
            c = c.conj()
        if t.is_neg():
            c = c._neg_view()
    if t.requires_grad:
        c.requires_grad_(True)
    return c


def copy_tree(tree: Any) -> Any:
    """Copy every tensor in a (nested) sample; a tensor used twice stays one tensor."""
    memo: dict[int, torch.Tensor] = {}

    def one(x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            if id(x) not in memo:
                memo[id(x)] = _copy_tensor(x)
            return memo[id(x)]
        return x

    return pytree.tree_map(one, tree)


def leaves_of(tree: Any) -> list[torch.Tensor]:
    return [x for x in pytree.tree_leaves(tree) if isinstance(x, torch.Tensor)]


def backward_on(out: Any) -> None:
    """What the backward cell calls: ``backward()`` on every output that requires grad.

    The gradients are fixed (no RNG) and not all ones, so a wrong gradient
    shows; one output uses ``Tensor.backward``, several ``torch.autograd.backward``.
    """
    roots = [
        t for t in leaves_of(out)
        if t.requires_grad and (t.is_floating_point() or t.is_complex()) and t.layout == torch.strided
    ]
    grads = []
    for r in roots:
        g = torch.arange(r.numel(), dtype=torch.float64).remainder_(7).sub_(3).div_(4)
        g = g.reshape(r.shape).to(r.dtype)
        grads.append(g)
    if len(roots) == 1:
        roots[0].backward(grads[0])
    elif roots:
        torch.autograd.backward(roots, grads)


# -- comparison ------------------------------------------------------------------
def _values_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    a, b = a.detach(), b.detach()
    if a.device.type == "meta":
        return True
    if a.is_quantized:
        return torch.equal(a.int_repr(), b.int_repr()) and a.qscheme() == b.qscheme()
    if a.layout != torch.strided:
        a, b = a.to_dense(), b.to_dense()
    if a.is_complex():
        a, b = torch.view_as_real(a.resolve_conj().resolve_neg()), torch.view_as_real(b.resolve_conj().resolve_neg())
    if a.is_floating_point():
        na, nb = a.isnan(), b.isnan()
        if not torch.equal(na, nb):
            return False
        a, b = a.masked_fill(na, 0), b.masked_fill(nb, 0)
        return torch.equal(a, b) and torch.equal(a.signbit(), b.signbit())
    return torch.equal(a, b)


def _tensor_diff(a: torch.Tensor, b: torch.Tensor, path: str) -> str | None:
    checks: list[tuple[str, Callable[[torch.Tensor], Any]]] = [
        ("type", type),
        ("dtype", lambda t: t.dtype),
        ("shape", lambda t: tuple(t.shape)),
        ("layout", lambda t: t.layout),
        ("device", lambda t: t.device),
        ("requires_grad", lambda t: t.requires_grad),
        ("grad_fn", lambda t: type(t.grad_fn).__name__ if t.grad_fn is not None else None),
        ("conj/neg bits", lambda t: (t.is_conj(), t.is_neg())),
    ]
    if a.layout == torch.strided and b.layout == torch.strided and not a.is_nested:
        checks += [("strides", lambda t: t.stride()), ("storage offset", lambda t: t.storage_offset())]
    for what, get in checks:
        va, vb = get(a), get(b)
        if va != vb:
            return f"{path}: {what} {va} vs {vb}"
    if not _values_equal(a, b):
        return f"{path}: values differ"
    return None


def _scalar_equal(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        if a != a and b != b:
            return True
        return a == b and str(a) == str(b)  # str tells -0.0 from 0.0
    if isinstance(a, complex) and isinstance(b, complex):
        return _scalar_equal(a.real, b.real) and _scalar_equal(a.imag, b.imag)
    try:
        return bool(a == b)
    except Exception:
        return repr(a) == repr(b)


def diff(a: Any, b: Any, path: str = "out") -> str | None:
    """The first difference between two results (``None``: identical)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return f"{path}: {type(a).__name__} vs {type(b).__name__}"
        return _tensor_diff(a, b, path)
    if type(a) is not type(b):
        return f"{path}: type {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            return f"{path}: length {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            found = diff(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    if isinstance(a, dict):
        if list(a) != list(b):
            return f"{path}: keys {list(a)} vs {list(b)}"
        for k in a:
            found = diff(a[k], b[k], f"{path}[{k!r}]")
            if found:
                return found
        return None
    if not _scalar_equal(a, b):
        return f"{path}: {a!r} vs {b!r}"
    return None


_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


@dataclass
class Outcome:
    """What one run left behind: the result or the error, inputs after, grads, RNG state."""

    out: Any = None
    error: tuple[str, str] | None = None
    inputs: Any = None
    grads: list[Any] = field(default_factory=list)
    rng: Any = None
    internal: str | None = None  # torchmagic raised something of its own, or left state behind

    def diff(self, other: Outcome) -> str | None:
        if self.internal or other.internal:
            return self.internal or other.internal
        if self.error != other.error:
            return f"error {self.error} vs {other.error}"
        if self.error is None:
            found = diff(self.out, other.out)
            if found:
                return found
        found = diff(self.inputs, other.inputs, "inputs after the call")
        if found:
            return found
        found = diff(self.grads, other.grads, ".grad")
        if found:
            return found
        if not torch.equal(self.rng, other.rng):
            return "RNG state after the run differs (the recorder consumed or reseeded the RNG)"
        return None


# -- recorders -------------------------------------------------------------------
# A runner runs the cell and returns (value, the op's exception, torchmagic's report).
Runner = Callable[[Cell], tuple[Any, "BaseException | None", Any]]


def _bare(cell: Cell) -> tuple[Any, BaseException | None, Any]:
    try:
        return cell.run([]), None, None
    except Exception as exc:
        return None, exc, None


def _collected(make: Callable[[Cell], Any]) -> Runner:
    """Run the cell as every cell magic does (:func:`torchmagic.core.runner.run_collected`)."""

    def run(cell: Cell) -> tuple[Any, BaseException | None, Any]:
        from torchmagic.core.runner import run_collected

        shown: list[Any] = []
        value: Any = None
        error: BaseException | None = None
        try:
            value = run_collected(cell, [make(cell)], shown.append)
        except Exception as exc:
            error = exc
        return value, error, shown[0] if shown else None

    return run


def _trace(deep: bool) -> Runner:
    """``%%tensorinfo`` (``--deep``): the trace collector."""
    from torchmagic.trace.collector import TraceCollector
    from torchmagic.trace.options import TraceOptions

    return _collected(lambda cell: TraceCollector(cell, options_for(TraceOptions, deep=deep)))


def _autograd() -> Runner:
    """``%%autograd``: the session's watcher around the cell, then its report."""
    from torchmagic.autograd.ledger import GradLedger
    from torchmagic.autograd.options import GraphOptions, WatchOptions
    from torchmagic.autograd.session import AutogradSession

    return _collected(lambda cell: AutogradSession(
        cell, GradLedger(), options_for(WatchOptions), options_for(GraphOptions)
    ))


def _device() -> Runner:
    """``%%device cpu``: one recorded run on the CPU."""
    from torchmagic.device.session import DeviceOptions, DeviceSession, Target

    # sync_types={"cpu"}: also exercise the read-back/sync detection, which on a
    # real accelerator is always on
    options = options_for(DeviceOptions, sync_types=frozenset({"cpu"}))
    return _collected(lambda cell: DeviceSession(cell, [Target("cpu", torch.device("cpu"))], options))


def _nan_watch() -> Runner:
    """``%tensorinfo --nan on``: the any-cell NaN watch's light mode around the cell, then its report."""
    from torchmagic.trace.watch import CellNanWatch

    def run(cell: Cell) -> tuple[Any, BaseException | None, Any]:
        watch = CellNanWatch()
        watch.start()
        value: Any = None
        error: BaseException | None = None
        try:
            value = cell.run([])
        except Exception as exc:
            error = exc
        finally:
            report = watch.stop()
        return value, error, report

    return run


RECORDERS: dict[str, Runner] = {
    "trace": _trace(deep=False),
    "trace --deep": _trace(deep=True),
    "nan watch": _nan_watch(),
    "autograd": _autograd(),
    "device": _device(),
}
DESCRIPTIONS = {
    "trace": "`%%tensorinfo` cell trace (TorchFunctionMode recorder + report)",
    "trace --deep": "`%%tensorinfo --deep` (TorchFunctionMode recorder + PyTorch's profiler for the aten ops + report)",
    "nan watch": "`%tensorinfo --nan on` (the any-cell NaN watch's TorchFunctionMode + report)",
    "autograd": "`%%autograd` watcher (TorchFunctionMode, backward hooks + report)",
    "device": "`%%device cpu` watcher (TorchFunctionMode: transfers, sync points, timing, memory tracker, report)",
}


@dataclass(frozen=True)
class Case:
    """One sample of one op variant: ``fn(inp, *args, **kwargs)``, with backward or not.

    ``inplace``: ``fn`` is the in-place variant; with backward it runs on a clone
    of the input (an in-place op on a leaf that requires grad is an error).
    """

    fn: Callable[..., Any]
    sample: Any
    grad: bool
    inplace: bool = False


def clone_input(inp: Any) -> Any:
    return pytree.tree_map(lambda x: x.clone() if isinstance(x, torch.Tensor) else x, inp)


def _make_cell(case: Case) -> tuple[Cell, dict[str, Any]]:
    sample = case.sample
    inp, args, kwargs = copy_tree((sample.input, sample.args, sample.kwargs))
    body = BACKWARD if case.grad else FORWARD
    if case.inplace and case.grad:
        body = "x = clone_input(inp)\n" + body.replace("fn(inp,", "fn(x,")
    source = "# %%opinfo\n" + body
    ns: dict[str, Any] = {
        "fn": case.fn, "inp": inp, "args": args, "kwargs": kwargs, "backward_on": backward_on,
        "clone_input": clone_input, "torch": torch,
    }
    code = compile(source, FILENAME, "exec")
    return Cell(FILENAME, source, source.splitlines(), code, None, ns, ns), ns


def _state_leak() -> str | None:
    if torch._C._len_torch_function_stack() or torch._C._len_torch_dispatch_stack():
        return "a torch function/dispatch mode was left on the stack"
    if not torch.is_grad_enabled():
        return "grad mode left disabled"
    return None


def run_once(runner: Runner, case: Case, render: bool = False) -> Outcome:
    """Seed, run the cell under ``runner``, and collect what it left (outside any mode).

    ``render``: also render the report to HTML and text (must not raise either).
    """
    cell, ns = _make_cell(case)
    torch.default_generator.manual_seed(SEED)  # the CPU generator (torch.manual_seed also records a stack: slow)
    said = io.StringIO()  # torchmagic reports its own (fenced) failures as "torchmagic: ..." lines
    try:
        with contextlib.redirect_stderr(said):
            _value, exc, report = runner(cell)
    except Exception as inner:
        return Outcome(internal=f"torchmagic raised {type(inner).__name__}: {inner}")
    own = [line for line in said.getvalue().splitlines() if line.startswith("torchmagic:")]
    if own:
        return Outcome(internal=own[0])
    leak = _state_leak()
    if leak:  # reading the results would go through the leftover mode
        return Outcome(internal=leak)
    if report is not None and render:
        try:
            report.to_html()
            report.to_text()
        except Exception as inner:
            return Outcome(internal=f"rendering the report raised {type(inner).__name__}: {inner}")
    leaves = leaves_of((ns["inp"], ns["args"], ns["kwargs"]))
    error = None
    if exc is not None:
        error = (type(exc).__name__, _ADDRESS.sub("0x?", str(exc)))
    return Outcome(
        out=ns.get("out"),
        error=error,
        inputs=(ns["inp"], ns["args"], ns["kwargs"]),
        grads=[t.grad for t in leaves if t.requires_grad] if case.grad else [],
        rng=torch.get_rng_state(),
    )


_SIZES = (1, 2, 3, 5, 7, 9, 12, 16, 24, 27, 36, 48, 64, 100, 128, 300, 512, 1000, 4096, 10000, 40000)


def _scribble(value: float | None) -> None:
    """Fill and free buffers of many sizes, so ``torch.empty`` hands back garbage next time.

    ``value=None`` writes random bits (from a private generator: the global RNG is untouched).
    """
    gen = torch.Generator().manual_seed(len(_SIZES))
    bufs = []
    for n in _SIZES:
        if value is None:
            bufs.append(torch.randint(-(2**31), 2**31 - 1, (n,), dtype=torch.int64, generator=gen))
        else:
            bufs.append(torch.full((n,), value))
            bufs.append(torch.full((n,), -12345 if value != value else int(value), dtype=torch.int64))
    del bufs


def _deterministic_fill(cell: Cell) -> tuple[Any, BaseException | None, Any]:
    """Bare, with torch filling uninitialised memory (NaN / max int) in deterministic mode."""
    import torch.utils.deterministic as det

    old_mode, old_warn = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    old_fill = det.fill_uninitialized_memory  # type: ignore[attr-defined]
    torch.use_deterministic_algorithms(True, warn_only=True)
    det.fill_uninitialized_memory = True  # type: ignore[attr-defined]
    try:
        return _bare(cell)
    finally:
        det.fill_uninitialized_memory = old_fill  # type: ignore[attr-defined]
        torch.use_deterministic_algorithms(old_mode, warn_only=old_warn)


def unstable(bare: Outcome, case: Case) -> str | None:
    """Why the op is not reproducible without torchmagic (``None``: it is, as far as we can tell).

    More bare runs with the same seed: plain, after filling freed memory with
    NaN, zeros or random bits, with torch filling uninitialised memory itself,
    and with other tensors allocated meanwhile (other addresses).  Any
    difference means the result depends on memory that was never written, on
    addresses, or on something else than the inputs and the seed.
    """
    keep: list[Any] = []
    attempts: tuple[tuple[str, Callable[[], None], Runner], ...] = (
        ("", lambda: None, _bare),
        (" after NaN was written to freed memory", lambda: _scribble(float("nan")), _bare),
        (" after zeros were written to freed memory", lambda: _scribble(0.0), _bare),
        (" after random bits were written to freed memory", lambda: _scribble(None), _bare),
        (" with torch.utils.deterministic.fill_uninitialized_memory", lambda: None, _deterministic_fill),
        (" with other tensors allocated meanwhile", lambda: keep.extend(torch.empty(n) for n in _SIZES), _bare),
    )
    for how, prepare, runner in attempts:
        prepare()
        again = run_once(runner, case)
        found = bare.diff(again)
        if found:
            return f"nondeterministic: a second bare run with the same seed differs{how} ({found})"
    return None


def intermittent(bare: Outcome, runner: Runner, case: Case) -> str | None:
    """A difference that the same recorder does not reproduce on a rerun (``None``: it does).

    Seen with LAPACK's gelsy (``linalg.lstsq``): results vary by an ulp in about
    1 of 100 runs under any Python mode, PyTorch's own empty one included, while
    bare runs agree.  A recorder that changes results changes them every time.
    """
    for _ in range(RERUNS):
        if not bare.diff(run_once(runner, case)):
            return ("intermittent: a rerun under the same recorder matched the bare run exactly "
                    "(the op's result varies between identical runs under a Python mode)")
    return None


# -- one op --------------------------------------------------------------------------
@dataclass
class OpResult:
    """Counts and findings for one OpInfo entry (plain data; see :func:`sweep_op`)."""

    op: str
    dtypes: list[str] = field(default_factory=list)
    available: int = 0  # samples the OpInfo entry provides (all dtypes and error inputs)
    samples: int = 0  # samples run (at most max_samples per dtype, spread over the list)
    grad_samples: int = 0  # of which with backward
    inplace_samples: int = 0  # of which through the op's in-place variant
    error_samples: int = 0  # of which from the op's error_inputs (must raise the same error)
    compared: dict[str, int] = field(default_factory=dict)  # recorder -> samples compared
    passed: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    excluded: list[tuple[str, str]] = field(default_factory=list)  # (what, reason)
    skipped: str = ""  # why the op ran no sample at all

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def op_id(op: Any) -> str:
    return op.name + (f".{op.variant_test_name}" if op.variant_test_name else "")


def int_dtype(op: Any) -> torch.dtype | None:
    supported = op.supported_dtypes("cpu")
    return next((d for d in INT_DTYPES if d in supported), None)


def op_db() -> list[Any]:
    from torch.testing._internal.common_methods_invocations import op_db as db

    return list(db)


def spread(n: int, k: int | None) -> list[int]:
    """At most ``k`` of ``range(n)``, evenly spaced and including both ends."""
    if k is None or n <= k:
        return list(range(n))
    if k <= 1:
        return [0][:k]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def _samples(op: Any, dtype: torch.dtype, grad: bool) -> list[Any]:
    torch.default_generator.manual_seed(SEED)
    return list(op.sample_inputs("cpu", dtype, requires_grad=grad))


def sweep_op(
    op: Any,
    recorders: Iterable[str] = tuple(RECORDERS),
    max_samples: int | None = MAX_SAMPLES,
    errors: bool = True,
) -> OpResult:
    """Compare every recorder with the bare run on ``op``'s CPU samples (float32, one int dtype)."""
    names = list(recorders)
    res = OpResult(op_id(op), compared=dict.fromkeys(names, 0), passed=dict.fromkeys(names, 0))
    supported = op.supported_dtypes("cpu")
    plan: list[tuple[torch.dtype, bool]] = []
    if torch.float32 in supported:
        grad = bool(op.supports_autograd) and torch.float32 in op.supported_backward_dtypes("cpu")
        plan.append((torch.float32, grad))
    idt = int_dtype(op)
    if idt is not None:
        plan.append((idt, False))
    if not plan:
        res.skipped = "supports neither float32 nor an integer dtype on CPU"
        return res
    threads = torch.get_num_threads()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # One intra-op thread: on a busy 2-core machine every parallel region waits for a
        # second core (tens of ms per op), and reductions stay in one order.
        torch.set_num_threads(1)
        try:
            _sweep_dtypes(res, names, op, plan, max_samples)
            if errors:
                _sweep_errors(res, names, op, max_samples)
        finally:
            torch.set_num_threads(threads)
    return res


def _sweep_dtypes(
    res: OpResult, names: list[str], op: Any, plan: list[tuple[torch.dtype, bool]], max_samples: int | None
) -> None:
    fn = op.op
    for dtype, grad in plan:
        dname = str(dtype).removeprefix("torch.")
        try:
            samples = _samples(op, dtype, grad)
        except Exception as exc:
            res.excluded.append((f"{dname} samples", f"sample_inputs raised {type(exc).__name__}: {str(exc)[:120]}"))
            continue
        res.available += len(samples)
        if not samples:
            continue
        res.dtypes.append(dname)
        for k, i in enumerate(spread(len(samples), max_samples)):
            render = k % RENDER_EVERY == 0
            _sweep_sample(res, names, Case(fn, samples[i], grad), f"{dname} sample {i}", render)
        inplace = getattr(op, "inplace_variant", None)
        if inplace is None:
            continue
        for k, i in enumerate(spread(len(samples), INPLACE_SAMPLES)):
            case = Case(inplace, samples[i], grad, inplace=True)
            _sweep_sample(res, names, case, f"{dname} in-place sample {i}", k % RENDER_EVERY == 0)


def _sweep_errors(res: OpResult, names: list[str], op: Any, max_samples: int | None) -> None:
    """The op's ``error_inputs``: each must raise, and raise the same error under every recorder."""
    if getattr(op, "error_inputs_func", None) is None:
        return
    try:
        torch.default_generator.manual_seed(SEED)
        inputs = list(op.error_inputs("cpu"))
    except Exception as exc:
        res.excluded.append(("error inputs", f"error_inputs raised {type(exc).__name__}: {str(exc)[:120]}"))
        return
    res.available += len(inputs)
    for k, i in enumerate(spread(len(inputs), max_samples)):
        before = res.samples
        case = Case(op.op, inputs[i].sample_input, False)
        _sweep_sample(res, names, case, f"error input {i}", k % RENDER_EVERY == 0)
        res.error_samples += res.samples - before


def _sweep_sample(
    res: OpResult, names: list[str], case: Case, where: str, render: bool = False
) -> None:
    bare = run_once(_bare, case)
    if bare.internal:
        res.samples += 1
        res.failures.append(f"{where}: bare run: {bare.internal}")
        return
    found: dict[str, str | None] = {}
    for name in names:
        got = run_once(RECORDERS[name], case, render)
        problem = found[name] = bare.diff(got)
        if not problem or got.internal:
            continue
        why = unstable(bare, case) or intermittent(bare, RECORDERS[name], case)
        if why:
            res.excluded.append((where, why))
            return
    res.samples += 1
    res.grad_samples += case.grad
    res.inplace_samples += case.inplace
    for name, problem in found.items():
        res.compared[name] += 1
        if problem:
            res.failures.append(f"{where} [{name}]: {problem}")
        else:
            res.passed[name] += 1


def sweep(ops: Iterable[Any], **kw: Any) -> list[OpResult]:
    return [sweep_op(op, **kw) for op in ops]


def totals(results: Iterable[OpResult]) -> dict[str, Any]:
    """Numbers for the whole sweep: ops, samples, per-recorder compared/passed/failed."""
    results = list(results)
    per: dict[str, dict[str, int]] = {}
    for r in results:
        for name, n in r.compared.items():
            row = per.setdefault(name, {"compared": 0, "passed": 0, "failed": 0})
            row["compared"] += n
            row["passed"] += r.passed.get(name, 0)
    for row in per.values():
        row["failed"] = row["compared"] - row["passed"]
    return {
        "entries": len(results),
        "ops_run": sum(1 for r in results if r.samples),
        "available": sum(r.available for r in results),
        "samples": sum(r.samples for r in results),
        "grad_samples": sum(r.grad_samples for r in results),
        "inplace_samples": sum(r.inplace_samples for r in results),
        "error_samples": sum(r.error_samples for r in results),
        "excluded_samples": sum(
            1 for r in results for w, _ in r.excluded if " sample " in w or w.startswith("error input ")
        ),
        "skipped_ops": sum(1 for r in results if not r.samples),
        "recorders": per,
    }


def summary_lines(results: Iterable[OpResult]) -> list[str]:
    """Plain-text summary (the pytest run prints it): totals and exclusions."""
    results = [r for r in results if r.samples or r.skipped or r.excluded]
    t = totals(results)
    lines = [
        (f"OpInfo conformance: {t['ops_run']} of {t['entries']} entries run, {t['samples']} samples "
        f"({t['grad_samples']} with backward, {t['inplace_samples']} in-place, {t['error_samples']} error inputs), "
        f"{t['excluded_samples']} samples excluded"),
    ]
    for name, row in t["recorders"].items():
        lines.append(
            f"  {name}: {row['passed']}/{row['compared']} identical, {row['failed']} different"
        )
    for r in results:
        if r.skipped:
            lines.append(f"  not run: {r.op}: {r.skipped}")
        reasons: dict[str, list[str]] = {}
        for where, why in r.excluded:
            reasons.setdefault(reason(why), []).append(where)
        for why, wheres in reasons.items():
            lines.append(f"  excluded: {r.op} ({len(wheres)}: {', '.join(wheres[:4])}"
                         f"{', ...' if len(wheres) > 4 else ''}): {why}")
    return lines


def reason(why: str, coarse: bool = False) -> str:
    """An exclusion reason without its sample-specific detail (for grouping).

    ``coarse``: also without which of the extra bare runs showed the difference.
    """
    why = _REASON_DETAIL.sub("", why)
    if coarse and " differs" in why:
        why = why[: why.index(" differs") + len(" differs")]
    return why


_REASON_DETAIL = re.compile(r" \((out|inputs|error|\.grad|RNG)[^()]*(\([^()]*\)[^()]*)*\)$")

"""Operator conformance: every OpInfo operator gives identical results under every recorder.

For each entry of PyTorch's ``op_db`` and its CPU sample inputs (float32 with
``backward()`` where the op supports autograd, one integer dtype, the op's
in-place variant and its ``error_inputs``; at most 64 samples per dtype), the
op runs bare and inside the ``%%tensorinfo`` trace recorder, its ``--deep``
variant, the ``%%autograd`` watcher and the ``%%device`` watcher, and the
results must be identical (see :mod:`tests.hardening.opinfo_sweep`).  A
handful of representative operators run by default; the rest of the database
is the ``slow`` sweep (CI runs both; together they are the database once,
about 3 minutes on 2 cores).  Exclusions are printed in pytest's terminal
summary; ``benchmarks/opinfo_report.py`` writes them to ``docs/reliability.md``.

The first tests check the checker: fake recorders that change a value, the
strides, an in-place write or an exception type, eat random numbers, raise,
leave a mode behind or push any TorchDispatchMode must be caught.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from tests.hardening import opinfo_sweep as S
from torchmagic.core.runner import Collector

# Operators that exercise the recorders' riskiest paths: in-place and views,
# RNG, tuples/namedtuples, integer outputs, errors, composite backward
# formulas, uninitialised memory, data-dependent shapes.
QUICK = (
    "add", "mul", "div.no_rounding_mode", "addcmul", "pow", "abs", "sum", "prod", "max.reduction_no_dim",
    "median", "sort", "topk", "cat", "stack", "split", "view", "reshape", "transpose", "as_strided",
    "expand", "__getitem__", "index_put", "masked_fill", "where", "matmul", "linalg.eig", "unique",
    "nonzero", "masked_select", "bernoulli", "nn.functional.dropout", "normal", "randn_like",
    "empty_like", "nn.functional.linear", "nn.functional.conv1d", "softmax",
    "nn.functional.cross_entropy", "linalg.tensorinv", "cumsum", "scatter_add", "clone", "item",
)

_ALL = S.op_db()
_BY_ID = {S.op_id(op): op for op in _ALL}
RESULTS: list[S.OpResult] = []


class _Summary:
    """Prints what was run, excluded and why in pytest's terminal summary (made by the test itself)."""

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not RESULTS:
            return
        terminalreporter.section("OpInfo conformance")
        for line in S.summary_lines(RESULTS):
            terminalreporter.write_line(line)


@pytest.fixture(scope="module", autouse=True)
def _summary_plugin(request: pytest.FixtureRequest) -> None:
    manager = request.config.pluginmanager
    if not manager.has_plugin("torchmagic-opinfo-summary"):
        manager.register(_Summary(), "torchmagic-opinfo-summary")


def _params(quick: bool) -> list[Any]:
    chosen = [op for op in _ALL if (S.op_id(op) in QUICK) == quick]
    return [pytest.param(op, id=S.op_id(op)) for op in chosen]


def _check(op: Any) -> S.OpResult:
    res = S.sweep_op(op)
    RESULTS.append(res)
    assert not res.failures, (
        f"{res.op}: {len(res.failures)} difference(s) between the bare run and a recorder:\n  "
        + "\n  ".join(res.failures[:20])
    )
    return res


# -- the checker itself -----------------------------------------------------------
def test_quick_ops_exist() -> None:
    assert set(QUICK) <= set(_BY_ID), sorted(set(QUICK) - set(_BY_ID))


def test_every_op_is_swept_once() -> None:
    quick, slow = _params(True), _params(False)
    assert len(quick) + len(slow) == len(_ALL) > 600
    assert len({p.id for p in quick + slow}) == len(_ALL)


def test_diff_is_exact() -> None:
    nan = float("nan")
    a = torch.tensor([1.0, nan, 0.0])
    assert S.diff(a, torch.tensor([1.0, nan, 0.0])) is None
    assert S.diff(a, torch.tensor([1.0, nan, -0.0])) == "out: values differ"
    assert S.diff(a, torch.tensor([1.0, 2.0, 0.0])) == "out: values differ"
    assert S.diff(a, torch.tensor([torch.nextafter(torch.tensor(1.0), torch.tensor(2.0)).item(), nan, 0.0]))
    t = torch.arange(6.0).reshape(2, 3)
    assert "strides" in str(S.diff(t.t(), t.t().contiguous()))
    assert "dtype" in str(S.diff(t, t.double()))
    assert "requires_grad" in str(S.diff(t, t.clone().requires_grad_()))
    assert S.diff((t, 1.5), (t.clone(), 1.5)) is None
    assert S.diff((t, -0.0), (t.clone(), 0.0)) == "out[1]: -0.0 vs 0.0"
    assert S.diff(torch.return_types.max((t, t)), (t, t)) is not None


def test_copies_keep_layout_and_are_fresh() -> None:
    base = torch.arange(12.0)
    view = base.as_strided((3, 2), (1, 4), 2)
    expanded = torch.ones(3, 1).expand(3, 4)
    leaf = torch.randn(2, requires_grad=True)
    copy = S.copy_tree((view, [expanded, leaf], {"x": view}))
    assert S.diff((view, [expanded, leaf], {"x": view}), copy, "copy") is None
    assert copy[0] is copy[2]["x"]
    assert copy[0].untyped_storage().data_ptr() != base.untyped_storage().data_ptr()
    assert copy[1][1].is_leaf and copy[1][1].requires_grad


class _PassThroughDispatch(TorchDispatchMode):
    """PyTorch's own empty dispatch mode: no recorder may push one (it changes composite paths)."""

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        return func(*args, **(kwargs or {}))


class _EatRandom:
    """A recorder that draws a random number: the RNG state after the cell differs."""

    def __enter__(self) -> None:
        torch.rand(1)

    def __exit__(self, *exc: Any) -> None:
        pass


class _Nudge(TorchFunctionMode):
    """Changes every float result by one ulp."""

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if isinstance(out, torch.Tensor) and out.is_floating_point() and func is torch.add:
            with torch.no_grad():
                out.copy_(torch.nextafter(out, torch.full_like(out, float("inf"))))
        return out


class _Contiguous(TorchFunctionMode):
    """Returns contiguous copies of views: same values, other strides."""

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if getattr(func, "__name__", "") == "transpose" and isinstance(out, torch.Tensor):
            return out.contiguous()
        return out


class _OutOfPlace(TorchFunctionMode):
    """Runs ``add_`` as ``add``: the result is right, but the input is left unchanged."""

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if getattr(func, "__name__", "") == "add_":
            return torch.add(*args, **(kwargs or {}))
        return func(*args, **(kwargs or {}))


class _Leaky(TorchFunctionMode):
    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        return func(*args, **(kwargs or {}))

    def __exit__(self, *exc: Any) -> None:
        pass  # never pops itself


class _As(Collector):
    """A fake recorder (a plain context manager) as a collector, run the way every cell magic runs."""

    def __init__(self, cm: Any) -> None:
        super().__init__()
        self.cm = cm
        self.what = type(cm).__name__  # type: ignore[misc]

    def __enter__(self) -> _As:
        self.cm.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cm.__exit__(*exc)


def _fake(contexts: Any) -> S.Runner:
    return S._collected(lambda cell: _As(contexts()[0]))


class _BrokenStart:
    """A recorder that fails to start: the runner runs the cell unrecorded and says so on stderr."""

    def __enter__(self) -> None:
        raise RuntimeError("cannot start")

    def __exit__(self, *exc: Any) -> None:
        pass


def _raises(cell: Any) -> tuple[Any, BaseException | None, Any]:
    raise RuntimeError("torchmagic bug")


def _error_type_changed(cell: Any) -> tuple[Any, BaseException | None, Any]:
    value, exc, _ = S._bare(cell)
    return value, (ValueError(str(exc)) if exc is not None else None), None


@pytest.mark.parametrize(
    "runner, op, expected",
    [
        (_fake(lambda: [_EatRandom()]), "add", "RNG state"),
        (_fake(lambda: [_Nudge()]), "add", "values differ"),
        (_fake(lambda: [_Contiguous()]), "transpose", "strides"),
        (_fake(lambda: [_OutOfPlace()]), "add", "in-place sample 0 [fake]: inputs after the call"),
        (_raises, "add", "torchmagic raised RuntimeError"),
        (_fake(lambda: [_BrokenStart()]), "add", "torchmagic: starting _BrokenStart failed"),
        (_error_type_changed, "linalg.inv_ex", None),  # raises on nothing: no difference
        (_error_type_changed, "cat", "error ("),  # cat's error_inputs raise
        (_fake(lambda: [_PassThroughDispatch()]), "prod", "values differ"),  # any dispatch mode changes prod's grad
    ],
    ids=["rng", "values", "strides", "in-place", "raises", "said-on-stderr", "no-error", "error-type", "dispatch-mode"],
)
def test_checker_catches_a_bad_recorder(
    monkeypatch: pytest.MonkeyPatch, runner: S.Runner, op: str, expected: str | None
) -> None:
    monkeypatch.setitem(S.RECORDERS, "fake", runner)
    res = S.sweep_op(_BY_ID[op], recorders=["fake"], max_samples=None if op == "prod" else 12)
    assert res.samples > 0
    if expected is None:
        assert not res.failures
    else:
        assert any(expected in f for f in res.failures), res.failures[:3]
        assert res.passed["fake"] < res.compared["fake"]


def test_checker_catches_a_leaked_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    leaky = _Leaky()

    def run(cell: Any) -> tuple[Any, BaseException | None, Any]:
        with contextlib.ExitStack() as stack:
            stack.callback(lambda: None)
            leaky.__enter__()
            return S._bare(cell)

    monkeypatch.setitem(S.RECORDERS, "fake", run)
    try:
        res = S.sweep_op(_BY_ID["add"], recorders=["fake"], max_samples=1)
    finally:
        while torch._C._len_torch_function_stack():
            torch._C._pop_torch_function_stack()
    assert res.failures and "mode was left on the stack" in res.failures[0]


def test_uninitialised_memory_is_excluded_with_its_reason() -> None:
    res = S.sweep_op(_BY_ID["empty_like"], recorders=["device"])
    assert not res.failures
    assert res.excluded, "empty_like reads uninitialised memory: some sample must differ bare vs bare"
    assert all("nondeterministic" in why for _where, why in res.excluded)


# Operators whose results change under any TorchDispatchMode (PyTorch's own empty one included):
# the old --deep and %%device recorders pushed one and differed on these.
DISPATCH_SENSITIVE = ("prod", "masked.prod", "median", "nanmedian", "max.reduction_no_dim",
                      "min.reduction_no_dim", "nn.functional.ctc_loss", "linalg.eig", "linalg.tensorinv")


@pytest.mark.parametrize("name", DISPATCH_SENSITIVE)
def test_ops_that_a_dispatch_mode_would_change_are_identical_under_every_recorder(name: str) -> None:
    res = S.sweep_op(_BY_ID[name])
    assert not res.failures, res.failures[:5]
    assert all(res.passed[r] == res.compared[r] > 0 for r in S.RECORDERS), (res.passed, res.compared)


# -- the sweep ---------------------------------------------------------------------
@pytest.mark.parametrize("op", _params(quick=True))
def test_op_quick(op: Any) -> None:
    _check(op)


@pytest.mark.slow
@pytest.mark.parametrize("op", _params(quick=False))
def test_op(op: Any) -> None:
    _check(op)

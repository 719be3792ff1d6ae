"""Fault injection: every step of every magic raises, and the user must not notice.

Policy (docs/reliability.md, "Internal failures"): a failure inside torchmagic
— a collector step, report building, a renderer, showing — is reported as one
line on stderr starting ``torchmagic:``; the cell's own result stands (its
value, its variables, its exception).  A KeyboardInterrupt raised anywhere
propagates (the user asked to stop) after all global state is restored.

Each case patches one step to raise and runs a passing and a failing cell.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.hardening.state import diff, snapshot


class Boom(RuntimeError):
    """An internal torchmagic failure (never raised by a user cell)."""


OK_BODY = (
    "y = x * 3\n"
    "d = y.detach()\n"
    "m = d.to('meta')\n"
    "with torch.no_grad():\n"
    "    n = y * 2\n"
    "loss = (y * y).sum() + model(y).sum()\n"
    "loss.backward()\n"
    "marker = 41\n"
    "marker + 1"
)
FAIL_BODY = (
    "y = x * 3\n"
    "loss = (y * y).sum() + model(y).sum()\n"
    "loss.backward()\n"
    "marker = 41\n"
    "torch.ones(2) @ torch.ones(3)"
)

RENDER = {
    "trace": "torchmagic.trace.render",
    "tensorinfo": "torchmagic.tensors.render",
    "autograd": "torchmagic.autograd.render",
    "device": "torchmagic.device.render",
    "device_info": "torchmagic.device.render_info",
}


def _render_steps(kind: str) -> list[tuple[str, str]]:
    return [(RENDER[kind], "to_rich"), (RENDER[kind], "to_html"), ("torchmagic.magics", "show")]


# magic -> (how it is written, is it a cell magic, steps to break)
MAGICS: dict[str, tuple[str, bool, list[tuple[str, str]]]] = {
    "%tensorinfo x": ("%tensorinfo x", False, [
        ("torchmagic.tensors.inspect", "inspect_many"),
        ("torchmagic.tensors.inspect", "inspect_tensor"),
        ("torchmagic.tensors.inspect", "sharing"),
        ("torchmagic.tensors.stats", "compute_stats"),
        *_render_steps("tensorinfo"),
    ]),
    "%%tensorinfo": ("%%tensorinfo", True, [
        ("torchmagic.trace.recorder.Recorder", "__init__"),
        ("torchmagic.trace.recorder.Recorder", "before"),
        ("torchmagic.trace.recorder.Recorder", "after"),
        ("torchmagic.trace.recorder.Recorder", "failed"),
        ("torchmagic.trace.recorder", "locate"),
        ("torchmagic.trace.recorder", "describe"),
        ("torchmagic.core.saved.SavedLog", "note"),
        ("torchmagic.trace.nans.NanWatch", "add"),
        ("torchmagic.trace.nans.NanWatch", "finish"),
        ("torchmagic.trace.modules.ModuleTracker", "_new_node"),
        ("torchmagic.trace.collector", "finish"),
        ("torchmagic.core.runner", "drop_own_frames"),
        *_render_steps("trace"),
    ]),
    "%%tensorinfo --deep --source": ("%%tensorinfo --deep --source", True, [
        ("torchmagic.trace.recorder.Recorder", "_count"),
        ("torchmagic.trace.aten.AtenLog", "start"),
        ("torchmagic.trace.aten.AtenLog", "open"),
        ("torchmagic.trace.aten.AtenLog", "close"),
        ("torchmagic.trace.aten.AtenLog", "_walk"),
        ("torchmagic.trace.aten", "decomposes"),
        ("torchmagic.trace.recorder.Recorder", "before"),
        ("torchmagic.trace.collector", "finish"),
        ("torchmagic.trace.render", "annotated_text"),
        *_render_steps("trace"),
    ]),
    "error explainer (any failing cell)": ("", True, [
        ("torchmagic.errors.frames", "show_explanation"),
        ("torchmagic.errors.frames", "explain_exception"),
    ]),
    "%tensorinfo": ("%tensorinfo", False, [
        ("torchmagic.tensors.namespace", "scan_namespace"),
        ("torchmagic.tensors.namespace", "data_row"),
        ("torchmagic.tensors.summary", "module_row"),
        ("torchmagic.tensors.summary.stats", "compute_stats"),
        *_render_steps("tensorinfo"),
    ]),
    "%tensorinfo --short x model": ("%tensorinfo --short x model", False, [
        ("torchmagic.tensors.namespace", "summarize"),
        ("torchmagic.tensors.namespace", "summary_row"),
        ("torchmagic.tensors.render", "summary_values"),
        *_render_steps("tensorinfo"),
    ]),
    "%%autograd": ("%%autograd", True, [
        ("torchmagic.autograd.session.AutogradSession", "__init__"),
        ("torchmagic.autograd.watcher.AutogradWatcher", "_on_untracked"),
        ("torchmagic.autograd.site.CellSite", "names"),
        ("torchmagic.autograd.backward.BackwardRecorder", "_before"),
        ("torchmagic.autograd.backward.BackwardRecorder", "_after"),
        ("torchmagic.autograd.modules.ModuleRecorder", "register"),
        ("torchmagic.autograd.backward", "annotate"),
        ("torchmagic.autograd.steps.StepLog", "register"),
        ("torchmagic.autograd.session", "finish_graph"),
        ("torchmagic.autograd.session", "accumulation_notes"),
        ("torchmagic.autograd.session.AutogradSession", "report"),
        ("torchmagic.autograd.session", "_with_grads"),
        ("torchmagic.autograd.session", "user_names"),
        *_render_steps("autograd"),
    ]),
    "%%autograd --jacobian --modules": ("%%autograd --jacobian --modules", True, [
        ("torchmagic.autograd.jacobian", "jacobian_before"),
        ("torchmagic.autograd.session", "group_modules"),
        ("torchmagic.autograd.session", "explain"),
        *_render_steps("autograd"),
    ]),
    "%autograd t": ("%autograd t", False, [
        ("torchmagic.autograd.session", "tensor_report"),
        ("torchmagic.autograd.session", "walk"),
        *_render_steps("autograd"),
    ]),
    "%%device cpu": ("%%device cpu", True, [
        ("torchmagic.device.session", "prime"),
        ("torchmagic.device.watcher.Watcher", "__enter__"),
        ("torchmagic.device.watcher", "op_key"),
        ("torchmagic.device.watcher", "caller"),
        ("torchmagic.device.watcher", "sync_reason"),
        ("torchmagic.device.watcher", "copy_devices"),
        ("torchmagic.device.ops.OpTimer", "begin"),
        ("torchmagic.device.ops.OpTimer", "end"),
        ("torchmagic.device.ops.OpTimer", "stats"),
        ("torchmagic.device.memory.TensorTracker", "add"),
        ("torchmagic.device.memory.TensorTracker", "finish"),
        ("torchmagic.device.watcher.Watcher", "note_error"),
        ("torchmagic.device.watcher.Watcher", "transfer_rows"),
        ("torchmagic.device.session", "tracked_stats"),
        ("torchmagic.device.modules.ModuleRecorder", "__enter__"),
        ("torchmagic.device.modules.ModuleRecorder", "_pre"),
        ("torchmagic.device.modules.ModuleRecorder", "_post"),
        ("torchmagic.device.modules.ModuleRecorder", "made"),
        ("torchmagic.device.modules.ModuleRecorder", "_step_ends"),
        ("torchmagic.device.modules.ModuleRecorder", "rows"),
        ("torchmagic.device.session", "fold_rows"),
        *_render_steps("device"),
    ]),
    "%%device meta -n 2 -r 1": ("%%device meta -n 2 -r 1", True, [
        ("torchmagic.device.session", "timed_repeats"),
        ("torchmagic.device.watcher.Watcher", "note_transfer"),
        ("torchmagic.device.watcher.Watcher", "sync_rows"),
        *_render_steps("device"),
    ]),
    "%device": ("%device", False, [
        ("torchmagic.device.info", "device_info"),
        ("torchmagic.device.info", "_settings"),
        *_render_steps("device_info"),
    ]),
    "%device model": ("%device model", False, [
        ("torchmagic.device.info", "model_map"),
        ("torchmagic.device.info", "_row"),
        *_render_steps("device_info"),
    ]),
}

# steps only a failing cell reaches (covered by the user-error and KeyboardInterrupt tests)
ONLY_ON_ERROR = {"note_error", "failed", "drop_own_frames", "show_explanation",
                 "explain_exception", "explain"}
# a KeyboardInterrupt inside an IPython event callback escapes run_cell itself (IPython's
# choice, not ours): the error explainer runs there
NO_INTERRUPT = {"show_explanation", "explain_exception"}
CASES = [(magic, target, attr) for magic, (_w, _c, steps) in MAGICS.items() for target, attr in steps]
COUNTS = {"magics": len(MAGICS), "steps": len(CASES)}


def _resolve(target: str) -> Any:
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError:
        mod, _, cls = target.rpartition(".")
        return getattr(importlib.import_module(mod), cls)


class _Injector:
    def __init__(self, monkeypatch: Any, target: str, attr: str, exc: type[BaseException]) -> None:
        self.hits = 0
        owner = _resolve(target)
        original = getattr(owner, attr)
        assert callable(original), (target, attr)

        def broken(*args: Any, **kwargs: Any) -> Any:
            self.hits += 1
            raise exc(f"injected into {attr}")

        monkeypatch.setattr(owner, attr, broken)


def _cell_source(magic: str, body: str) -> str:
    return f"{magic}\n{body}"


def _run(ip: Any, magic: str, cell: bool, body: str, capture: Any) -> tuple[Any, str]:
    with capture() as cap:
        res = ip.run_cell(_cell_source(magic, body) if cell else magic)
    shown = "".join(o.data.get("text/plain", "") + "\n" for o in cap.outputs)
    return res, cap.stdout + cap.stderr + shown


def _notebook_display(monkeypatch: Any) -> None:
    """Make ``show`` take the notebook path (display → _repr_mimebundle_ → to_html)."""
    monkeypatch.setattr("torchmagic.core.report.in_kernel", lambda shell: True)


@contextlib.contextmanager
def _state_kept(hip: Any, monkeypatch: Any) -> Iterator[None]:
    """Global torch state and the user's objects' hooks are as before, once the fault is undone."""
    objs = [hip.user_ns["x"], hip.user_ns["model"]]
    before = snapshot(hip, objs)
    yield
    monkeypatch.undo()
    hip.user_ns["x"].grad = None
    assert diff(before, snapshot(hip, objs)) == []


def _warm(hip: Any, magic: str, cell: bool, capture: Any) -> None:
    """First use imports lazily (and registers warning filters): not what we measure.

    The failing body runs once too: torch's own error path for it on ``meta``
    imports sympy the first time (which adds a warning filter, also without
    torchmagic).
    """
    res, out = _run(hip, magic, cell, OK_BODY, capture)
    assert res.error_in_exec is None, out
    if cell:
        _run(hip, magic, cell, FAIL_BODY, capture)


@pytest.mark.parametrize("display", ["terminal", "notebook"])
@pytest.mark.parametrize("magic,target,attr", [c for c in CASES if c[2] not in ONLY_ON_ERROR])
def test_internal_failure_keeps_the_cell_result(
    hip: Any, capture: Any, monkeypatch: Any, magic: str, target: str, attr: str, display: str
) -> None:
    if display == "notebook":
        _notebook_display(monkeypatch)
    elif attr == "to_html":
        pytest.skip("the terminal never renders HTML")
    written, cell, _steps = MAGICS[magic]
    _warm(hip, written, cell, capture)
    with _state_kept(hip, monkeypatch):
        inj = _Injector(monkeypatch, target, attr, Boom)
        res, out = _run(hip, written, cell, OK_BODY, capture)
        assert inj.hits, f"{target}.{attr} was never called by {written}"
        assert res.error_in_exec is None, out
        # the user is told (a `torchmagic:` line, or a note in the report) without a traceback
        lines = [ln for ln in out.splitlines() if ln.startswith("torchmagic:")]
        assert len(lines) <= 1 and f"injected into {attr}" in out, out
        assert "Traceback" not in out and "Boom" not in out.replace("Boom: injected", ""), out
        if cell:
            assert hip.user_ns["marker"] == 41 and res.result == 42


@pytest.mark.parametrize("magic,target,attr", [c for c in CASES if MAGICS[c[0]][1]])
def test_internal_failure_keeps_the_user_error(
    hip: Any, capture: Any, monkeypatch: Any, magic: str, target: str, attr: str
) -> None:
    written, cell, _steps = MAGICS[magic]
    _notebook_display(monkeypatch)
    _warm(hip, written, cell, capture)
    with _state_kept(hip, monkeypatch):
        _Injector(monkeypatch, target, attr, Boom)
        res, out = _run(hip, written, cell, FAIL_BODY, capture)
        err = res.error_in_exec
        assert type(err) is RuntimeError and "injected" not in str(err), out
        assert "Error in callback" not in out and "Traceback" not in out.split("RuntimeError")[0], out
        assert "size mismatch" in str(err) or "inconsistent" in str(err) or "1D tensors" in str(err), str(err)
        assert hip.user_ns["marker"] == 41


@pytest.mark.parametrize("magic,target,attr", [c for c in CASES if c[2] not in NO_INTERRUPT])
def test_keyboard_interrupt_in_a_step_restores_state(
    hip: Any, capture: Any, monkeypatch: Any, magic: str, target: str, attr: str
) -> None:
    written, cell, _steps = MAGICS[magic]
    _notebook_display(monkeypatch)
    _warm(hip, written, cell, capture)
    with _state_kept(hip, monkeypatch):
        inj = _Injector(monkeypatch, target, attr, KeyboardInterrupt)
        res, out = _run(hip, written, cell, OK_BODY, capture)
        if not inj.hits and cell:  # a step only a failing cell reaches
            res, out = _run(hip, written, cell, FAIL_BODY, capture)
        assert inj.hits
        assert isinstance(res.error_in_exec, KeyboardInterrupt), out


def test_internal_failure_does_not_chain_onto_the_users_backward_error(
    hip: Any, capture: Any, monkeypatch: Any
) -> None:
    """The user's error must not read 'During handling of the above exception (ours)...'."""
    _Injector(monkeypatch, "torchmagic.autograd.backward.BackwardRecorder", "_before", Boom)
    body = "y = (x * x).sum()\ny.backward()\ny.backward()"
    res, out = _run(hip, "%%autograd", True, body, capture)
    err = res.error_in_exec
    assert type(err) is RuntimeError and "second time" in str(err)
    assert err.__context__ is None and "During handling" not in out, out


def test_unresolvable_device_is_one_line_and_the_cell_does_not_run(
    hip: Any, capture: Any, monkeypatch: Any
) -> None:
    """The one step where the cell cannot run as if torchmagic were not there: where to run
    it is the magic's whole point (a %%device meta cell run on the CPU could allocate what
    the user meant never to allocate).  One UsageError line, nothing run, state unchanged."""
    from IPython.core.error import UsageError

    before = snapshot(hip, [hip.user_ns["x"]])
    _Injector(monkeypatch, "torchmagic.device.session", "resolve", Boom)
    res, out = _run(hip, "%%device meta", True, "ran = True", capture)
    assert isinstance(res.error_in_exec, UsageError) and "injected into resolve" in str(res.error_in_exec)
    assert "Traceback" not in out and "ran" not in hip.user_ns
    monkeypatch.undo()
    assert diff(before, snapshot(hip, [hip.user_ns["x"]])) == []

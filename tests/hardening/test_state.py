"""State hygiene: after every magic, however it ends, global state is exactly as before.

Each case snapshots everything global (tests/hardening/state.py: default
device/dtype, grad/inference/anomaly modes, deterministic flags, function and
dispatch mode stacks, saved-tensor hooks, global module hooks, the hooks of the
user's tensors and modules, RNG, print options, IPython event callbacks,
custom exception handlers, display/except hooks), runs one magic through
``ip.run_cell`` (the real path: the cell must fail exactly when the user's
code fails) and compares.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest

from tests.hardening.state import diff, snapshot

pytestmark = pytest.mark.filterwarnings("ignore:Anomaly Detection has been enabled")

CELL_MAGICS = ["%%tensorinfo", "%%tensorinfo --deep", "%%tensorinfo --source -o rep", "%%autograd",
               "%%device cpu", "%%device meta", "%%device cpu -n 2 -r 1", "%%device --compare cpu meta"]
LINE_MAGICS = ["%tensorinfo x", "%tensorinfo", "%autograd t", "%device", "%device model",
               "%tensorinfo -o rep x", "%autograd -o rep t", "%device -o rep model",
               "%tensorinfo big", "%tensorinfo --image img"]

HELPERS = """
big = torch.arange(1_100_000, dtype=torch.float32)  # statistics from a sample
img = torch.linspace(0, 1, 3 * 16 * 16).reshape(3, 16, 16)
class Odd(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if getattr(func, '__name__', '') == 'mul':
            raise ValueError('from __torch_function__')
        return super().__torch_function__(func, types, args, kwargs or {})

def raising_hook(*args):
    raise ValueError('from a hook')

def interrupting_hook(*args):
    raise KeyboardInterrupt
"""

OK = "y = x * 3\nloss = (y * y).sum()\nloss.backward()\nout = model(x)\nloss.detach() + 1"
# stage -> (body, expected exception type, text in its message)
STAGES: dict[str, tuple[str, type[BaseException], str]] = {
    "syntax": ("y = (x *\n", SyntaxError, ""),
    "first line": ("raise ValueError('user first')\ny = x * 2", ValueError, "user first"),
    "in an op": ("y = x * 3\nz = torch.ones(2) @ torch.ones(3)", RuntimeError, ""),
    "in a forward hook": (
        "h = model.register_forward_hook(raising_hook)\ntry:\n    model(x)\nfinally:\n    h.remove()",
        ValueError, "from a hook"),
    "in backward (tensor hook)": (
        "h = x.register_hook(raising_hook)\ntry:\n    (x * 2).sum().backward()\nfinally:\n    h.remove()",
        ValueError, "from a hook"),
    "in __torch_function__": ("o = x.detach().as_subclass(Odd)\no * 2", ValueError, "from __torch_function__"),
    "under no_grad": ("with torch.no_grad():\n    y = x * 2\n    raise ValueError('inside')", ValueError, "inside"),
    "under anomaly mode": (
        "with torch.autograd.detect_anomaly():\n    y = (x * 2).sum()\n    raise ValueError('anom')",
        ValueError, "anom"),
    "last expression": ("y = x * 2\ny @ torch.ones(4)", RuntimeError, ""),
    "second backward": ("y = (x * x).sum()\ny.backward()\ny.backward()", RuntimeError, "second time"),
    "KeyboardInterrupt at start": ("raise KeyboardInterrupt\n", KeyboardInterrupt, ""),
    "KeyboardInterrupt in backward": (
        "h = x.register_hook(interrupting_hook)\ntry:\n    (x * 2).sum().backward()\nfinally:\n    h.remove()",
        KeyboardInterrupt, ""),
    "KeyboardInterrupt in a forward hook": (
        "h = model.register_forward_pre_hook(interrupting_hook)\ntry:\n    model(x)\nfinally:\n    h.remove()",
        KeyboardInterrupt, ""),
}
REPEAT_FAIL = (
    "_n = globals().setdefault('_calls', [0])\n_n[0] += 1\n"
    "if _n[0] == 3:\n    raise ValueError('third run')\ny = x * 2"
)

COUNTS = {"cell magics": len(CELL_MAGICS), "line magics": len(LINE_MAGICS), "stages": len(STAGES)}


def _objs(ip: Any) -> list[Any]:
    return [ip.user_ns["x"], ip.user_ns["model"], ip.user_ns["t"]]


def _check(ip: Any, capture: Any, source: str, rng: bool = True) -> Any:
    before = snapshot(ip, _objs(ip), rng=rng)
    with capture() as cap:
        res = ip.run_cell(source)
    ip.user_ns["x"].grad = None
    for p in ip.user_ns["model"].parameters():
        p.grad = None
    changed = diff(before, snapshot(ip, _objs(ip), rng=rng))
    assert changed == [], (changed, cap.stdout[-3000:], cap.stderr[-3000:])
    return res


_WARM: list[bool] = []


@pytest.fixture
def sip(hip: Any, capture: Any) -> Any:
    assert hip.run_cell(HELPERS).success
    if not _WARM:
        with capture():  # warm up once: first uses import lazily (and register warning filters)
            for magic in CELL_MAGICS:
                assert hip.run_cell(f"{magic}\n{OK}").success
            for magic in LINE_MAGICS:
                assert hip.run_cell(magic).success
        _WARM.append(True)
    hip.user_ns["x"].grad = None
    return hip


@pytest.mark.parametrize("magic", CELL_MAGICS)
def test_cell_magic_success(sip: Any, capture: Any, magic: str) -> None:
    res = _check(sip, capture, f"{magic}\n{OK}")
    assert res.error_in_exec is None and float(res.result) == 127.0  # 9 * (1 + 4 + 9) + 1


@pytest.mark.parametrize("stage", list(STAGES))
@pytest.mark.parametrize("magic", CELL_MAGICS)
def test_cell_magic_user_error(sip: Any, capture: Any, magic: str, stage: str) -> None:
    body, exc_type, text = STAGES[stage]
    res = _check(sip, capture, f"{magic}\n{body}")
    err = res.error_before_exec if exc_type is SyntaxError else res.error_in_exec
    if exc_type is SyntaxError and err is None:
        err = res.error_in_exec  # compiled by the magic: fails inside the magic call
    assert type(err) is exc_type, (stage, err)
    assert text in str(err)


@pytest.mark.parametrize("magic", CELL_MAGICS)
def test_same_failure_without_magic(sip: Any, capture: Any, magic: str) -> None:
    """The magic fails exactly when the bare cell fails, with the same exception text."""
    for stage, (body, exc_type, _text) in STAGES.items():
        if exc_type is SyntaxError:
            continue
        with capture():
            bare = sip.run_cell(body).error_in_exec
            magic_err = sip.run_cell(f"{magic}\n{body}").error_in_exec
        assert type(bare) is type(magic_err), stage
        if "meta" not in magic:  # meta kernels word their errors differently: that is torch
            assert str(bare) == str(magic_err), stage


def test_device_repeat_run_error(sip: Any, capture: Any) -> None:
    res = _check(sip, capture, f"%%device cpu -n 2 -r 2\n{REPEAT_FAIL}")
    assert isinstance(res.error_in_exec, ValueError) and "third run" in str(res.error_in_exec)


@pytest.mark.parametrize("magic", LINE_MAGICS)
def test_line_magic_success(sip: Any, capture: Any, magic: str) -> None:
    res = _check(sip, capture, magic)
    assert res.error_in_exec is None


@pytest.mark.parametrize("magic", ["%tensorinfo", "%autograd", "%device"])
def test_line_magic_expression_errors(sip: Any, capture: Any, magic: str) -> None:
    from IPython.core.error import UsageError

    sip.run_cell("def fails():\n    raise ValueError('user expr')\ndef stops():\n    raise KeyboardInterrupt")
    res = _check(sip, capture, f"{magic} fails()")
    assert isinstance(res.error_in_exec, UsageError) and "user expr" in str(res.error_in_exec)
    res = _check(sip, capture, f"{magic} stops()")
    assert isinstance(res.error_in_exec, KeyboardInterrupt)


NESTED = {
    "line magics inside %%device": (
        "%%device meta\n%tensorinfo x\n%autograd t\n%device model\nz = torch.ones(2)", None),
    "cell magics via run_cell_magic": (
        ("%%device cpu\n"
        "get_ipython().run_cell_magic('autograd', '', 'w = (x * 2).sum()\\nw.backward()')\n"
        "get_ipython().run_cell_magic('device', 'meta', 'q = torch.ones(3)')\n"
        "q.device"), None),
    "inner failure propagates": (
        ("%%autograd\n"
        "y = (x * 2).sum()\n"
        "get_ipython().run_cell_magic('device', 'meta', 'raise ValueError(\"inner\")')"), ValueError),
    "%%tensorinfo --deep around %%autograd and %%device": (
        ("%%tensorinfo --deep\n"
        "get_ipython().run_cell_magic('autograd', '', 'w = (x * 2).sum()\\nw.backward()')\n"
        "get_ipython().run_cell_magic('device', 'cpu', 'q = x * 4')\n"
        "%tensorinfo q"), None),
    "%%device around a failing %%tensorinfo": (
        "%%device meta\nget_ipython().run_cell_magic('tensorinfo', '', 'torch.ones(2) @ torch.ones(3)')",
        RuntimeError),
    "%%autograd inside %%autograd": (
        "%%autograd\nget_ipython().run_cell_magic('autograd', '', 'w = (x * 2).sum()\\nw.backward()')",
        None),
}


@pytest.mark.parametrize("case", list(NESTED))
def test_nested_magics(sip: Any, capture: Any, case: str) -> None:
    source, exc_type = NESTED[case]
    res = _check(sip, capture, source)
    if exc_type is None:
        assert res.error_in_exec is None, res.error_in_exec
    else:
        assert type(res.error_in_exec) is exc_type


def _registrations(ip: Any) -> dict[str, Any]:
    return {
        "events": {k: len(v) for k, v in ip.events.callbacks.items()},
        "magics": {kind: sorted(names) for kind, names in ip.magics_manager.magics.items()},
        "configurables": sum(type(c).__name__ == "TorchMagics" for c in ip.configurables),
        "custom_exceptions": tuple(ip.custom_exceptions),
    }


def test_reload_ext_leaves_one_of_everything(sip: Any, capture: Any) -> None:
    before = snapshot(sip, _objs(sip))
    regs = _registrations(sip)
    with capture():
        for _ in range(3):
            assert sip.run_cell("%reload_ext torchmagic").success
        assert sip.run_cell(f"%%autograd\n{OK}").success
    sip.user_ns["x"].grad = None
    after = snapshot(sip, _objs(sip))
    assert {k for k in diff(before, after) if not k.startswith("events")} == set()
    assert _registrations(sip) == regs


def test_unload_removes_everything(sip: Any, capture: Any) -> None:
    sip.run_line_magic("unload_ext", "torchmagic")
    try:
        assert "tensorinfo" not in sip.magics_manager.magics["line"]
        assert not any(type(c).__name__ == "TorchMagics" for c in sip.configurables)
        names = [getattr(fn, "__qualname__", "") for fns in sip.events.callbacks.values() for fn in fns]
        assert not any("TorchMagics" in n for n in names), names
    finally:
        sip.run_line_magic("load_ext", "torchmagic")


def test_nothing_of_torchmagic_runs_after_the_cell(sip: Any, capture: Any) -> None:
    """No hook, mode or callback torchmagic installed during a cell fires afterwards."""
    import torchmagic

    pkg = os.path.dirname(torchmagic.__file__)
    with capture():
        for magic in CELL_MAGICS:
            assert sip.run_cell(f"{magic}\n{OK.replace('loss.backward()', 'loss.backward(retain_graph=True)')}").success
    seen: set[str] = set()

    def profile(frame: Any, event: str, arg: Any) -> None:
        if frame.f_code.co_filename.startswith(pkg):
            seen.add(f"{frame.f_code.co_filename}:{frame.f_code.co_name}")

    sys.setprofile(profile)
    try:
        ns = sip.user_ns
        ns["loss"].backward()  # the graph the last cell built, still alive
        ns["model"](ns["x"]).sum().backward()
        (ns["x"] * 2).sum().backward()
    finally:
        sys.setprofile(None)
    assert seen == set()


LEFT_ON = """
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

class UserFunctionMode(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))

class UserDispatchMode(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))
"""


RUNS = {"%%device cpu -n 2 -r 1": 3, "%%device --compare cpu meta": 2}


@pytest.mark.parametrize("kind", ["UserFunctionMode", "UserDispatchMode"])
@pytest.mark.parametrize("magic", CELL_MAGICS)
def test_a_mode_the_cell_leaves_on_stays_and_ours_go(sip: Any, capture: Any, magic: str, kind: str) -> None:
    """The user enters a mode and never exits it: afterwards the stacks hold exactly that
    mode, as after the bare cell — not torchmagic's recorder in its place."""
    from torch.overrides import _get_current_function_mode_stack as functions
    from torch.utils._python_dispatch import _get_current_dispatch_mode_stack as dispatches

    assert sip.run_cell(LEFT_ON).success
    before = (len(functions()), len(dispatches()))
    with capture():
        res = sip.run_cell(f"{magic}\nleft = {kind}()\nleft.__enter__()\ny = x * 2\ndot = x @ x")
    try:
        assert res.success, res.error_in_exec
        runs = RUNS.get(magic, 1)  # -n/-r and --compare run the cell (and its __enter__) again
        stacks = [type(m).__name__ for m in (*functions(), *dispatches())]
        assert stacks == [kind] * runs
        if runs == 1:
            with capture():  # and the user can still exit it as usual
                assert sip.run_cell("left.__exit__(None, None, None)").success
            assert (len(functions()), len(dispatches())) == before
    finally:
        while len(functions()) > before[0]:
            functions()[-1].__exit__(None, None, None)
        while len(dispatches()) > before[1]:
            dispatches()[-1].__exit__(None, None, None)

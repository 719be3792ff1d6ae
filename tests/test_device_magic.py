"""%%device and %device through the real IPython paths (in-process shell)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from IPython.core.error import UsageError

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine-without-CUDA path")


def run(ip: Any, src: str) -> Any:
    ip.user_ns["torch"] = torch
    return ip.run_cell(src)


def test_cell_runs_on_the_device_returns_its_value_and_stores_the_report(ip: Any, capture: Any) -> None:
    with capture() as cap:
        res = run(ip, "%%device meta -o rep\nt = torch.ones(4, 4)\nt.device.type\n")
    assert res.error_in_exec is None and res.result == "meta"
    assert ip.user_ns["t"].device.type == "meta"
    assert torch.ones(1).device.type == "cpu"  # restored
    rep = ip.user_ns["rep"]
    assert type(rep).__name__ == "DeviceReport" and rep.runs[0].device == "meta"
    json.dumps(rep.to_dict())
    assert "%%device on meta: the cell ran once" in cap.stdout


def test_failing_cell_fails_with_the_users_exception_and_still_reports(ip: Any, capture: Any) -> None:
    ip.user_ns["x"] = torch.ones(3)
    with capture() as cap:
        res = run(ip, "%%device meta\na = torch.ones(3)\nb = a + x\n")
    err = res.error_in_exec
    assert isinstance(err, RuntimeError) and "not on the expected device" in str(err)
    assert torch.ones(1).device.type == "cpu"
    out = cap.stdout
    assert "device mismatch at line 3: b = a + x" in out
    assert "x (3,) is on cpu but this cell runs on meta" in out


def test_keyboard_interrupt_restores_the_default_device(ip: Any, capture: Any) -> None:
    with capture():
        run(ip, "%%device meta\nt = torch.ones(1)\nraise KeyboardInterrupt\n")
    assert torch.ones(1).device.type == "cpu"


@NO_CUDA
def test_cuda_without_cuda_is_one_clear_line(ip: Any, capture: Any) -> None:
    ip.user_ns["ran"] = False
    with capture():
        res = run(ip, "%%device cuda\nran = True\n")
    assert isinstance(res.error_in_exec, UsageError)
    msg = str(res.error_in_exec)
    assert "CUDA is not available" in msg and "cpu, meta" in msg and "--fallback cpu" in msg
    assert ip.user_ns["ran"] is False


@NO_CUDA
def test_fallback_runs_on_the_cpu_with_a_notice(ip: Any, capture: Any) -> None:
    with capture() as cap:
        res = run(ip, "%%device cuda --fallback cpu\nt = torch.ones(2)\nt.device.type\n")
    assert res.error_in_exec is None and res.result == "cpu"
    # issue 14: the notice printed twice (stderr before the cell, and the report); once now, in the report
    assert "⚠" in cap.stdout and (cap.stdout + cap.stderr).count("instead of cuda") == 1


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("cdua", "unknown device 'cdua'"),
        ("", "%%device needs a device"),
        ("cpu --compare cpu meta", "not both"),
        ("cpu -n 0", "-n must be at least 1"),
        ("cpu -o 1bad", "-o needs a Python name"),
    ],
)
def test_bad_lines_are_one_clear_line(ip: Any, capture: Any, line: str, message: str) -> None:
    with capture():
        res = run(ip, f"%%device {line}\nx = 1\n")
    assert isinstance(res.error_in_exec, UsageError)
    assert message in str(res.error_in_exec) and "\n" not in str(res.error_in_exec)


def test_repeats_and_compare_through_the_magic(ip: Any, capture: Any) -> None:
    ip.user_ns["count"] = 0
    with capture() as cap:
        res = run(ip, "%%device cpu -n 2 -r 2 -o rep\ncount += 1\n")
    assert res.error_in_exec is None and ip.user_ns["count"] == 5
    assert "the cell ran 5 times" in cap.stdout and "warm-up run" in cap.stdout
    ip.user_ns["count"] = 0
    with capture() as cap:
        res = run(ip, "%%device -n 3 cpu\ncount += 1\n")  # -n alone: device_repeats (3) repeats
    assert ip.user_ns["count"] == 1 + 3 * 3
    with capture() as cap:
        res = run(ip, "%%device --compare cpu meta\nt = torch.ones(2)\n")
    assert res.error_in_exec is None and "compared on cpu vs meta" in cap.stdout


def test_traits_shape_the_report(ip: Any, capture: Any) -> None:
    ip.run_line_magic("config", "TorchMagics.device_top_ops = 1")
    try:
        with capture():
            run(ip, "%%device cpu -o rep\na = torch.ones(3)\nb = a * 2\nc = b.sum()\n")
        assert len(ip.user_ns["rep"].runs[0].ops) == 1
    finally:
        ip.run_line_magic("config", "TorchMagics.device_top_ops = 10")


def test_no_dispatch_mode_is_ever_active_while_the_cell_runs(ip: Any, capture: Any) -> None:
    """A TorchDispatchMode would change composite ops' paths (issue 7); %%device pushes none."""
    ip.user_ns["stack"] = torch.utils._python_dispatch._get_current_dispatch_mode_stack
    src = (
        "%%device cpu -o rep\n"
        "seen = [len(stack())]\n"
        "model = torch.nn.Linear(3, 2)\n"
        "model.register_forward_hook(lambda m, i, o: seen.append(len(stack())))\n"
        "x = torch.ones(4, 3, requires_grad=True)\n"
        "x.register_hook(lambda g: seen.append(len(stack())))\n"
        "model(x).sum().backward()\n"
        "seen.append(len(stack()))\n"
    )
    with capture():
        res = run(ip, src)
    assert res.error_in_exec is None
    assert ip.user_ns["seen"] == [0, 0, 0, 0]  # cell, forward hook, backward hook, after backward
    ops = {s.op for s in ip.user_ns["rep"].runs[0].ops}
    assert {"F.linear", "Tensor.backward"} <= ops  # user-level rows, backward is one row


def test_the_memory_line_says_what_tracking_misses(ip: Any, capture: Any) -> None:
    with capture() as cap:
        run(ip, "%%device cpu\na = torch.ones(256)\n")
    assert "lower bound" in cap.stdout and "gradients made by backward" in cap.stdout


def test_line_form_info_and_model(ip: Any, capture: Any) -> None:
    with capture() as cap:
        ip.run_line_magic("device", "-o info")
    assert "settings" in cap.stdout and "cudnn.benchmark" in cap.stdout
    assert type(ip.user_ns["info"]).__name__ == "DeviceInfoReport"
    ip.user_ns["model"] = torch.nn.Sequential(torch.nn.Linear(2, 3))
    with capture() as cap:
        ip.run_line_magic("device", "model")
    assert "where the Sequential's tensors live" in cap.stdout and "Linear" in cap.stdout


def test_line_form_errors(ip: Any) -> None:
    ip.user_ns["n"] = 3
    with pytest.raises(UsageError, match=r"expected an nn\.Module"):
        ip.run_line_magic("device", "n")
    with pytest.raises(UsageError, match="use the cell form: %%device cuda"):
        ip.run_line_magic("device", "cuda")
    with pytest.raises(UsageError, match="belong to the cell form"):
        ip.run_line_magic("device", "-n 3")
    with pytest.raises(UsageError, match="one model or tensor expression"):
        ip.run_line_magic("device", "a b")


def test_help_has_examples(ip: Any) -> None:
    doc = ip.find_cell_magic("device").__doc__
    assert "%%device cuda -n 10 -r 5" in doc and "%device model" in doc and "--compare" in doc

"""Device strings and availability: one clear line, naming what is available."""

from __future__ import annotations

import pytest
import torch
from IPython.core.error import UsageError

from torchmagic.device import devices
from torchmagic.device.devices import available_devices, parse_device, resolve, unavailable_reason


def test_parse_known_devices() -> None:
    assert parse_device("cpu") == torch.device("cpu")
    assert parse_device(" cuda:1 ") == torch.device("cuda", 1)
    assert parse_device("meta").type == "meta"


@pytest.mark.parametrize("spec", ["cdua", "gpu", "cuda:x", ""])
def test_unknown_device_is_one_line(spec: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_device(spec)
    msg = str(info.value)
    assert "\n" not in msg and "unknown device" in msg and "available here: cpu" in msg


def test_unsupported_device_type_is_one_line() -> None:
    with pytest.raises(UsageError, match="cannot run cells on 'xla'"):
        parse_device("xla")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_without_cuda_names_devices_and_the_way_out() -> None:
    assert available_devices() == ["cpu", "meta"]
    with pytest.raises(UsageError) as info:
        resolve("cuda")
    msg = str(info.value)
    assert "\n" not in msg
    assert "CUDA is not available" in msg and "Available devices: cpu, meta" in msg
    assert "%%device cpu" in msg and "--fallback cpu" in msg


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA fallback")
def test_fallback_gives_the_cpu_and_a_notice() -> None:
    device, notice = resolve("cuda:1", fallback="cpu")
    assert device == torch.device("cpu")
    assert notice is not None and "ran on cpu instead of cuda:1" in notice and "--fallback cpu" in notice
    assert resolve("cpu", fallback="meta") == (torch.device("cpu"), None)


def test_missing_index_with_fake_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "_cuda_count", lambda: 2)
    assert available_devices()[:3] == ["cpu", "cuda:0", "cuda:1"]
    assert unavailable_reason(torch.device("cuda:1")) is None
    reason = unavailable_reason(torch.device("cuda:5"))
    assert reason is not None and "has 2 CUDA device(s)" in reason
    with pytest.raises(UsageError, match="cuda:5 does not exist"):
        resolve("cuda:5")


def test_fallback_that_is_unavailable_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "_cuda_count", lambda: 0)
    monkeypatch.setattr(devices, "_mps_available", lambda: False)
    with pytest.raises(UsageError, match="and the fallback too"):
        resolve("cuda", fallback="mps")

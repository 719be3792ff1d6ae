"""%device facts and the model map (per device and per module)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch

from torchmagic.device import devices, info
from torchmagic.device.info import device_info, model_map


def test_device_info_on_this_machine_lists_devices_and_settings() -> None:
    rep = device_info()
    assert rep.torch_version == torch.__version__
    names = [d.name for d in rep.devices]
    assert names[0] == "cpu" and names[-1] == "meta"
    keys = dict(rep.settings)
    for key in ("cuDNN", "cudnn.benchmark", "cudnn.deterministic", "cuda.matmul.allow_tf32",
                "cudnn.allow_tf32", "float32 matmul precision", "default device"):
        assert key in keys
    assert keys["cudnn.benchmark"] == str(torch.backends.cudnn.benchmark)
    assert keys["float32 matmul precision"] == torch.get_float32_matmul_precision()
    rep.to_dict()


def test_device_info_with_a_fake_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "_cuda_count", lambda: 1)
    props = SimpleNamespace(name="Fake GPU 80GB", total_memory=80 * 2**30, major=9, minor=0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: props)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i: (70 * 2**30, 80 * 2**30))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda i: 2**20)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda i: 2**21)
    gpu = next(d for d in device_info().devices if d.name == "cuda:0")
    assert (gpu.description, gpu.capability, gpu.total_bytes, gpu.free_bytes) == (
        "Fake GPU 80GB", "9.0", 80 * 2**30, 70 * 2**30)
    assert (gpu.allocated_bytes, gpu.reserved_bytes) == (2**20, 2**21)


def test_model_map_counts_per_device_and_per_module() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    model[1].to("meta")
    rep = model_map(model, "model")
    assert rep is not None
    by_dev = {r.name: r for r in rep.per_device}
    # Linear(3, 4): weight 12 + bias 4 floats = 64 B on cpu; parameters count elements (issue 13)
    cpu, meta = by_dev["cpu"], by_dev["meta"]
    assert (cpu.params, cpu.param_tensors, cpu.param_bytes, cpu.buffers, cpu.buffer_tensors) == (16, 2, 64, 0, 0)
    # BatchNorm1d(4): weight+bias 8 floats; buffers running_mean/var 8 floats + int64 counter
    assert (meta.params, meta.param_tensors, meta.param_bytes) == (8, 2, 32)
    assert (meta.buffers, meta.buffer_tensors, meta.buffer_bytes) == (9, 3, 32 + 8)
    assert [(r.name, r.kind, r.devices) for r in rep.layers] == [
        ("0", "Linear", ("cpu",)), ("1", "BatchNorm1d", ("meta",))]
    assert any("2 devices" in n for n in rep.notes)


def test_model_map_grads_and_split_modules() -> None:
    lin = torch.nn.Linear(2, 2)
    lin(torch.ones(1, 2)).sum().backward()
    lin.bias = torch.nn.Parameter(torch.zeros(2, device="meta"))
    rep = model_map(lin, "lin")
    assert rep is not None
    (root,) = rep.layers
    assert root.name == "(root)" and root.devices == ("cpu", "meta")
    assert any("more than one device" in n for n in rep.notes)
    # only the weight (2 x 2 floats) still has a gradient
    assert [(r.name, r.grad_bytes) for r in rep.per_device] == [("cpu", 16), ("meta", 0)]


def test_model_map_of_tensors_and_non_tensors() -> None:
    rep = model_map({"w": torch.ones(3), "b": torch.ones(2, device="meta"), "n": 1}, "sd")
    assert rep is not None and [r.name for r in rep.per_device] == ["cpu", "meta"]
    assert [r.name for r in rep.layers] == ["w", "b"]
    single = model_map(torch.ones(2, 2), "t")
    assert single is not None and single.per_device[0].param_bytes == 16
    assert model_map(42, "n") is None and model_map([], "l") is None


def test_model_map_caps_rows() -> None:
    model = torch.nn.Sequential(*[torch.nn.Linear(1, 1) for _ in range(7)])
    rep = model_map(model, "m", max_rows=3)
    assert rep is not None and len(rep.layers) == 3 and rep.layers_total == 7


def test_settings_survive_a_missing_attribute(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> str:
        raise AttributeError("gone")

    monkeypatch.setattr(torch, "get_float32_matmul_precision", broken)
    assert dict(info._settings())["float32 matmul precision"] == "n/a (AttributeError)"


def test_parameters_mean_elements_in_every_report(ip: Any) -> None:
    """Issue 13: `%device model` said "params 4" (tensors), `%tensorinfo model` "22 parameters" (elements)."""
    from IPython.utils.capture import capture_output

    ip.run_line_magic("load_ext", "torchmagic")
    ip.user_ns["model"] = torch.nn.Sequential(torch.nn.Linear(10, 20), torch.nn.ReLU(), torch.nn.Linear(20, 2))
    texts = []
    for line in ("%device model", "%tensorinfo model", "%tensorinfo"):
        with capture_output() as cap:
            ip.run_cell(line)
        texts.append(cap.stdout)
    device_text, info_text, listing = texts
    assert "262 in 4 tensors" in device_text and "parameters" in device_text
    assert "262 parameters in 4 tensors" in info_text
    assert "262 parameters in 4 tensors" in listing
    for text in texts:
        assert "params" not in text.replace("parameters", "")

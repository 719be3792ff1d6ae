"""``%device``: the devices here and their settings; ``%device model``: placement.

The settings listed are the ones that silently change GPU speed or numerics
(cuDNN benchmark/deterministic, TF32, float32 matmul precision).  The model
map answers "where does every parameter and buffer live?" per device and per
layer, which is what model-parallel partitioning and data parallelism are
about.  Only plain values are read: no CUDA call happens without CUDA.
"""

from __future__ import annotations

import os
import platform
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from torchmagic.core.meta import dtype_name
from torchmagic.device.devices import available_devices
from torchmagic.device.report import DeviceFacts, DeviceInfoReport, ModelMapReport, PlacementRow
from torchmagic.i18n import N_, tr

if TYPE_CHECKING:
    import torch

__all__ = ["device_info", "model_map"]


def _read(fn: Callable[[], Any]) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return str(fn())
        except Exception as exc:  # noqa: BLE001 - fenced: our failure must not reach the user
            return f"n/a ({type(exc).__name__})"


def _settings() -> list[tuple[str, str]]:
    import torch

    cudnn = torch.backends.cudnn
    rows: list[tuple[str, str]] = [
        (N_("CUDA (torch built with)"), str(torch.version.cuda or tr("none (CPU-only build)"))),
        ("cuDNN", _read(lambda: cudnn.version() if cudnn.is_available() else tr("not available"))),
        ("cudnn.enabled", _read(lambda: cudnn.enabled)),
        ("cudnn.benchmark", _read(lambda: cudnn.benchmark)),
        ("cudnn.deterministic", _read(lambda: cudnn.deterministic)),
        ("cudnn.allow_tf32", _read(lambda: cudnn.allow_tf32)),
        ("cuda.matmul.allow_tf32", _read(lambda: torch.backends.cuda.matmul.allow_tf32)),
        (
            "cuda.matmul.allow_fp16_reduced_precision_reduction",
            _read(lambda: torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction),
        ),
        (N_("float32 matmul precision"), _read(torch.get_float32_matmul_precision)),
        (N_("deterministic algorithms"), _read(torch.are_deterministic_algorithms_enabled)),
        (N_("default device"), _read(torch.get_default_device)),
        (N_("default dtype"), dtype_name(torch.get_default_dtype())),
        (N_("CPU threads (intra-op)"), str(torch.get_num_threads())),
    ]
    hip = getattr(torch.version, "hip", None)
    if hip:
        rows.insert(1, ("ROCm/HIP", str(hip)))
    return rows


def _cuda_facts(i: int) -> DeviceFacts:
    import torch

    props = torch.cuda.get_device_properties(i)
    free: int | None = None
    try:
        free, _total = torch.cuda.mem_get_info(i)
    except RuntimeError:
        pass
    return DeviceFacts(
        name=f"cuda:{i}",
        kind="cuda",
        description=str(props.name),
        total_bytes=int(props.total_memory),
        free_bytes=None if free is None else int(free),
        allocated_bytes=int(torch.cuda.memory_allocated(i)),
        reserved_bytes=int(torch.cuda.memory_reserved(i)),
        capability=f"{props.major}.{props.minor}",
    )


def device_info() -> DeviceInfoReport:
    """Facts about every device present and the numerics/speed settings."""
    import torch

    devices: list[DeviceFacts] = []
    for name in available_devices():
        if name == "cpu":
            cpu = platform.processor() or platform.machine()
            devices.append(
                DeviceFacts(name="cpu", kind="cpu",
                            description=tr("{cpu}, {n} logical cores", cpu=cpu, n=os.cpu_count()))
            )
        elif name.startswith("cuda:"):
            devices.append(_cuda_facts(int(name.split(":")[1])))
        elif name == "mps":
            allocated = _read(lambda: torch.mps.current_allocated_memory())
            devices.append(
                DeviceFacts(
                    name="mps",
                    kind="mps",
                    description=tr("Apple GPU (Metal)"),
                    allocated_bytes=int(allocated) if allocated.isdigit() else None,
                )
            )
        elif name == "meta":
            devices.append(
                DeviceFacts(name="meta", kind="meta",
                            description=tr("shapes and dtypes only, no data (always available)"))
            )
        else:
            devices.append(DeviceFacts(name=name, kind=name.split(":")[0], description=""))
    return DeviceInfoReport(torch_version=str(torch.__version__), devices=devices, settings=_settings())


def _nbytes(t: torch.Tensor) -> int:
    return int(t.numel()) * int(t.element_size())


def _row(name: str, kind: str, params: list[torch.Tensor], buffers: list[torch.Tensor]) -> PlacementRow:
    devices = sorted({str(t.device) for t in params + buffers})
    grads = [p.grad for p in params if getattr(p, "grad", None) is not None]
    return PlacementRow(
        name=name,
        kind=kind,
        devices=tuple(devices),
        params=sum(int(p.numel()) for p in params),
        param_tensors=len(params),
        param_bytes=sum(_nbytes(p) for p in params),
        buffers=sum(int(b.numel()) for b in buffers),
        buffer_tensors=len(buffers),
        buffer_bytes=sum(_nbytes(b) for b in buffers),
        grad_bytes=sum(_nbytes(g) for g in grads if g is not None),
    )


_Named = list[tuple[str, "torch.Tensor"]]


def _tensors_of(obj: object) -> tuple[_Named, _Named] | None:
    """(named params, named buffers) of a module, a tensor or a dict/list of tensors."""
    import torch

    if isinstance(obj, torch.nn.Module):
        return list(obj.named_parameters()), list(obj.named_buffers())
    if isinstance(obj, torch.Tensor):
        return [("", obj)], []
    if isinstance(obj, dict):
        items = [(str(k), v) for k, v in obj.items() if isinstance(v, torch.Tensor)]
        return (items, []) if items else None
    if isinstance(obj, (list, tuple)):
        items = [(str(i), v) for i, v in enumerate(obj) if isinstance(v, torch.Tensor)]
        return (items, []) if items else None
    return None


def model_map(obj: object, name: str, max_rows: int = 50) -> ModelMapReport | None:
    """Where ``obj``'s parameters and buffers live; ``None`` if it holds no tensors."""
    import torch

    found = _tensors_of(obj)
    if found is None:
        return None
    params, buffers = found
    by_device: dict[str, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
    for _n, p in params:
        by_device.setdefault(str(p.device), ([], []))[0].append(p)
    for _n, b in buffers:
        by_device.setdefault(str(b.device), ([], []))[1].append(b)
    per_device = [_row(dev, "device", ps, bs) for dev, (ps, bs) in sorted(by_device.items())]

    layers: list[PlacementRow] = []
    notes: list[str] = []
    if isinstance(obj, torch.nn.Module):
        for mod_name, mod in obj.named_modules():
            own_p = list(mod.parameters(recurse=False))
            own_b = list(mod.buffers(recurse=False))
            if own_p or own_b:
                layers.append(_row(mod_name or tr("(root)"), type(mod).__name__, own_p, own_b))
        split = [row.name for row in layers if len(row.devices) > 1]
        if split:
            notes.append(tr("{n} module(s) have tensors on more than one device: {names}", n=len(split),
                            names=", ".join(split[:5])))
        device_ids = getattr(obj, "device_ids", None)
        if device_ids:
            notes.append(tr("{type} replicates the model over {ids}", type=type(obj).__name__,
                            ids="device_ids=" + str(list(device_ids))))
        for p_name, p in params:
            if p.grad is not None and p.grad.device != p.device:
                notes.append(tr("{grad} is on {grad_device} but the parameter is on {device}", grad=p_name + ".grad",
                                grad_device=p.grad.device, device=p.device))
                break
    else:
        for t_name, t in params:
            layers.append(_row(t_name or name, tr("tensor"), [t], []))
    if len(per_device) > 1:
        notes.insert(0, tr("spread over {n} devices: inputs must move between them (model parallel)",
                           n=len(per_device)))
    kind = type(obj).__name__
    return ModelMapReport(
        name=name,
        kind=kind,
        per_device=per_device,
        layers=layers[:max_rows],
        layers_total=len(layers),
        notes=notes,
    )

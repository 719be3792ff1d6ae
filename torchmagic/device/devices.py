"""Which devices exist here, and turning a user's device string into one.

``%%device cuda`` on a laptop must not end in an internal traceback: the user
gets one line naming the devices that *are* available and the way out
(``%%device cpu`` or ``--fallback cpu``).  Everything here only asks torch
questions that are safe on a CPU-only build (``torch.cuda.is_available()``
before any CUDA call).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from IPython.core.error import UsageError

from torchmagic.i18n import tr

if TYPE_CHECKING:
    import torch

__all__ = [
    "ASYNC_DEVICE_TYPES",
    "SUPPORTED_TYPES",
    "available_devices",
    "parse_device",
    "unavailable_reason",
    "resolve",
]

#: Device types whose kernels run asynchronously to Python: on these, reading a
#: value back (``.item()``, printing, ``.cpu()``) waits for all queued work.
ASYNC_DEVICE_TYPES = frozenset({"cuda", "mps", "xpu", "hpu", "mtia"})

#: Device types ``%%device`` knows how to run on.
SUPPORTED_TYPES = ("cpu", "cuda", "mps", "xpu", "meta")


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def _xpu_count() -> int:
    import torch

    xpu = getattr(torch, "xpu", None)
    return int(xpu.device_count()) if xpu is not None and xpu.is_available() else 0


def available_devices() -> list[str]:
    """Devices a cell can run on here, e.g. ``['cpu', 'cuda:0', 'meta']``."""
    out = ["cpu"]
    out += [f"cuda:{i}" for i in range(_cuda_count())]
    if _mps_available():
        out.append("mps")
    out += [f"xpu:{i}" for i in range(_xpu_count())]
    out.append("meta")
    return out


def parse_device(spec: str) -> torch.device:
    """``'cuda:1'`` -> ``torch.device('cuda', 1)``; anything else is one clear ``UsageError``."""
    import torch

    text = spec.strip()
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError, TypeError):
        raise UsageError(
            tr("unknown device {device}: use one of cpu, cuda, cuda:N, mps, meta (available here: {available})",
               device=repr(text), available=", ".join(available_devices()))
        ) from None
    if device.type not in SUPPORTED_TYPES:
        raise UsageError(
            tr("%%device cannot run cells on {device}: supported are cpu, cuda, cuda:N, mps, xpu, meta "
               "(available here: {available})", device=repr(text), available=", ".join(available_devices()))
        )
    return device


def _build_note() -> str:
    import torch

    if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
        return tr("torch {version} is a CPU-only build", version=torch.__version__)
    return tr("torch {version} found no usable CUDA GPU", version=torch.__version__)


def unavailable_reason(device: torch.device) -> str | None:
    """Why ``device`` cannot be used here (one sentence), or ``None`` if it can."""
    kind, index = device.type, device.index
    if kind in ("cpu", "meta"):
        return None
    if kind == "cuda":
        count = _cuda_count()
        if count == 0:
            return tr("CUDA is not available here ({why})", why=_build_note())
        if index is not None and index >= count:
            return tr("{device} does not exist: this machine has {count} CUDA device(s) (cuda:0..cuda:{last})",
                      device=device, count=count, last=count - 1)
        return None
    if kind == "mps":
        return None if _mps_available() else tr("MPS (Apple GPU) is not available here")
    if kind == "xpu":
        count = _xpu_count()
        if count == 0:
            return tr("XPU is not available here")
        if index is not None and index >= count:
            return tr("{device} does not exist: this machine has {count} XPU device(s)", device=device, count=count)
        return None
    return tr("{device} is not supported", device=device)  # pragma: no cover - parse_device filters these


def resolve(spec: str, fallback: str | None = None) -> tuple[torch.device, str | None]:
    """The device to run on and a notice when ``fallback`` replaced the requested one.

    Without a usable device and without a fallback, raises one ``UsageError``
    line that names the available devices and the way out.
    """
    device = parse_device(spec)
    reason = unavailable_reason(device)
    if reason is None:
        return device, None
    available = ", ".join(available_devices())
    if fallback is None:
        raise UsageError(
            tr("{reason}. Available devices: {available}. Use %%device cpu, or add --fallback cpu to run on the "
               "CPU when {kind} is missing.", reason=reason, available=available, kind=device.type)
        )
    backup = parse_device(fallback)
    backup_reason = unavailable_reason(backup)
    if backup_reason is not None:
        raise UsageError(tr("{reason}, and the fallback too: {fallback_reason}. Available: {available}",
                            reason=reason, fallback_reason=backup_reason, available=available))
    return backup, tr("{reason}: this cell ran on {backup} instead of {device} (--fallback {fallback})",
                      reason=reason, backup=backup, device=device, fallback=fallback)

"""A snapshot of every piece of global state a torchmagic magic could change.

``snapshot(ip, objs)`` returns a plain dict; two snapshots taken around a
magic must be equal (``diff`` names what differs).  ``objs`` are tensors and
modules whose per-object hooks are checked too.  RNG state is kept separately
(``rng=False`` leaves it out for cells that draw random numbers).
"""

from __future__ import annotations

import sys
import threading
import warnings
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.modules.module as module_mod
from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

_GLOBAL_MODULE_HOOKS = sorted(n for n in dir(module_mod) if n.startswith("_global_") and n.endswith("hooks"))
_MODULE_HOOK_DICTS = (
    "_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
    "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs", "_state_dict_hooks",
    "_load_state_dict_pre_hooks",
)


def _hook_keys(d: Any) -> tuple[Any, ...]:
    if d is None:
        return ()
    return tuple((k, id(v)) for k, v in dict(d).items())


def _object_hooks(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return (
            _hook_keys(getattr(obj, "_backward_hooks", None)),
            _hook_keys(getattr(obj, "_post_accumulate_grad_hooks", None)),
            obj.requires_grad,
            obj._version,
        )
    if isinstance(obj, torch.nn.Module):
        return tuple(
            (mod_name, attr, _hook_keys(getattr(m, attr, None)))
            for mod_name, m in obj.named_modules()
            for attr in _MODULE_HOOK_DICTS
        ) + tuple((n, _object_hooks(p)) for n, p in obj.named_parameters())
    return None


def snapshot(ip: Any = None, objs: Iterable[Any] = (), rng: bool = True) -> dict[str, Any]:
    """Everything global that a magic must leave as it found it."""
    po = torch._tensor_str.PRINT_OPTS
    state: dict[str, Any] = {
        "default_device": str(torch.get_default_device()),
        "default_dtype": torch.get_default_dtype(),
        "grad_enabled": torch.is_grad_enabled(),
        "inference_mode": torch.is_inference_mode_enabled(),
        "anomaly": (torch.is_anomaly_enabled(), torch.is_anomaly_check_nan_enabled()),
        "deterministic": (
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
            torch.backends.cudnn.deterministic,
            torch.backends.cudnn.benchmark,
        ),
        "matmul_precision": torch.get_float32_matmul_precision(),
        "num_threads": torch.get_num_threads(),
        "warn_always": torch.is_warn_always_enabled(),
        "function_modes": tuple(map(id, torch.overrides._get_current_function_mode_stack())),
        "dispatch_modes": tuple(map(id, _get_current_dispatch_mode_stack())),
        "torch_function_enabled": torch._C._is_torch_function_enabled(),
        "saved_tensors_hooks": (
            torch._C._autograd._top_saved_tensors_default_hooks(False),
            torch._C._autograd._saved_tensors_hooks_is_enabled(),
        ),
        "multithreading": torch._C._is_multithreading_enabled(),
        "profiler": torch.autograd._profiler_enabled(),  # --deep runs PyTorch's profiler
        "autocast": (torch.is_autocast_enabled("cpu"),),
        "global_module_hooks": {n: _hook_keys(getattr(module_mod, n)) for n in _GLOBAL_MODULE_HOOKS
                                if isinstance(getattr(module_mod, n), dict)},
        "print_options": (po.precision, po.threshold, po.edgeitems, po.linewidth, po.sci_mode),
        "trace": (sys.gettrace(), sys.getprofile()),
        "threads": len(threading.enumerate()),
        "warning_filters": len(warnings.filters),
        "objects": tuple(_object_hooks(o) for o in objs),
    }
    if rng:
        state["rng"] = torch.get_rng_state().tolist()
    if ip is not None:
        state["events"] = {k: tuple(map(id, v)) for k, v in ip.events.callbacks.items()}
        state["custom_exceptions"] = (tuple(ip.custom_exceptions), id(getattr(ip, "CustomTB", None)))
        state["displayhook"] = id(sys.displayhook)
        state["excepthook"] = id(sys.excepthook)
        state["stdout"] = (id(sys.stdout), id(sys.stderr))
        state["formatters"] = tuple(sorted(ip.display_formatter.active_types))
    return state


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Names (with both values, RNG shortened) of the entries that changed."""
    out = []
    for key in before.keys() | after.keys():
        a, b = before.get(key), after.get(key)
        if a != b:
            out.append(key if key == "rng" else f"{key}: {a!r} -> {b!r}")
    return sorted(out)

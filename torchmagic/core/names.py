"""Find the user's names for tensors: ``x``, ``model.0.weight``, ``batch[1]``.

Reports label tensors by the name a learner typed.  We walk the user
namespace once (skipping IPython's own ``_``/``In``/``Out`` entries), look one
level into lists, tuples and dicts, and into ``nn.Module`` parameters and
buffers.  The result maps ``id(tensor)`` to a name and is meant to be used
while the namespace still holds those tensors: it never keeps them alive.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["user_names", "iter_named_tensors", "is_user_name", "module_names"]

_CONTAINER_LIMIT = 64  # look at most this many items inside one list/dict


def is_user_name(name: str) -> bool:
    """False for IPython's history variables (``_``, ``_3``, ``_i2``, ``In``, ``Out``...)."""
    return not name.startswith("_") and name not in {"In", "Out", "exit", "quit", "get_ipython"}


def iter_named_tensors(namespace: Mapping[str, Any]) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield ``(name, tensor)`` for tensors reachable by a short name from ``namespace``."""
    import torch

    for name, value in list(namespace.items()):
        if not is_user_name(name):
            continue
        if isinstance(value, torch.Tensor):
            yield name, value
        elif isinstance(value, torch.nn.Module):
            for pname, p in value.named_parameters(recurse=True):
                yield f"{name}.{pname}", p
            for bname, b in value.named_buffers(recurse=True):
                yield f"{name}.{bname}", b
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value[:_CONTAINER_LIMIT]):
                if isinstance(item, torch.Tensor):
                    yield f"{name}[{i}]", item
        elif isinstance(value, dict):
            for i, (key, item) in enumerate(value.items()):
                if i >= _CONTAINER_LIMIT:
                    break
                if isinstance(item, torch.Tensor) and isinstance(key, (str, int)):
                    yield f"{name}[{key!r}]", item


def user_names(namespace: Mapping[str, Any]) -> dict[int, str]:
    """``id(tensor) -> name``; a top-level name wins over a nested one for the same tensor."""
    names: dict[int, str] = {}
    for name, tensor in iter_named_tensors(namespace):
        key = id(tensor)
        if key not in names or ("." not in name and "[" not in name):
            names[key] = name
    return names


def module_names(namespace: Mapping[str, Any]) -> dict[int, str]:
    """``id(module) -> name`` for every ``nn.Module`` reachable from a namespace name (``model.0``).

    A submodule gets the path under the first top-level name that holds it,
    unless it has a top-level name of its own.
    """
    import torch

    names: dict[int, str] = {}
    for name, value in list(namespace.items()):
        if is_user_name(name) and isinstance(value, torch.nn.Module):
            names[id(value)] = name
    for name, value in list(namespace.items()):
        if is_user_name(name) and isinstance(value, torch.nn.Module):
            for sub, module in value.named_modules():
                if sub:
                    names.setdefault(id(module), f"{name}.{sub}")
    return names

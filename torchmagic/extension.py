"""Loading and unloading the extension without leaving anything behind.

IPython has no API to unregister magics, so unloading pops them from the
magics manager by hand, removes the configurable and undoes every event
callback the magics registered.  ``%reload_ext`` (unload, reload, load) then
leaves exactly one of everything.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load", "unload"]

_INSTANCES: dict[int, Any] = {}


def load(ip: Any) -> None:
    from torchmagic.magics import TorchMagics

    if id(ip) in _INSTANCES:
        return  # already loaded in this shell
    magics = TorchMagics(shell=ip)
    ip.register_magics(magics)
    magics.install_hooks()
    _INSTANCES[id(ip)] = magics


def unload(ip: Any) -> None:
    magics = _INSTANCES.pop(id(ip), None)
    if magics is None:
        return
    magics.remove_hooks()
    magics.stop_distributed()  # no rank process outlives the extension
    from torchmagic.i18n import set_language

    set_language("auto")  # the API outside the magics follows the locale again
    manager = ip.magics_manager
    for kind, names in magics.magics.items():
        for name in names:
            manager.magics[kind].pop(name, None)
    manager.registry.pop(type(magics).__name__, None)
    if magics in ip.configurables:
        ip.configurables.remove(magics)

"""torchmagic: IPython/Jupyter magics that make PyTorch visible.

Load it in a notebook or IPython with ``%load_ext torchmagic``.  The same
reports are available from plain Python::

    import torch, torchmagic
    report = torchmagic.tensorinfo(torch.ones(2, 3))
    print(report)             # rich text; in a notebook, display(report) shows HTML
    report.to_dict()          # JSON-serialisable data

Importing this package is cheap: ``torch`` and IPython are imported only when
a magic or API function is used.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["tensorinfo", "load_ipython_extension", "unload_ipython_extension", "__version__"]


def tensorinfo(*objs: Any, names: list[str] | None = None, **options: Any) -> Any:
    """Inspect tensors, arrays, modules or values; returns a report (see ``%tensorinfo?``).

    ``names`` labels the objects (defaults to ``arg0``, ``arg1``...); options
    are :class:`torchmagic.tensors.inspect.InfoOptions` fields, e.g.
    ``stats_max_elements=10_000`` or ``image=True``.
    """
    from torchmagic.options import options_for
    from torchmagic.tensors.inspect import InfoOptions, inspect_many

    labels = names or [f"arg{i}" for i in range(len(objs))]
    return inspect_many(list(zip(labels, objs)), namespace={}, options=options_for(InfoOptions, **options))


def load_ipython_extension(ip: Any) -> None:
    """Called by ``%load_ext torchmagic``."""
    from torchmagic.extension import load

    load(ip)


def unload_ipython_extension(ip: Any) -> None:
    """Called by ``%unload_ext torchmagic``: removes every magic, hook and option."""
    from torchmagic.extension import unload

    unload(ip)

"""``TorchMagics.tensor_display = "summary"``: a one-line summary above every tensor a cell shows.

lovely-tensors' convenience without patching ``torch.Tensor.__repr__``: the
summary is registered as IPython display formatters for ``torch.Tensor``
(plain text and HTML), so only what IPython *displays* changes (``Out[N]``,
``display(t)``); ``print(t)``, ``repr(t)`` and every library keep torch's own
text.  The line is the one ``%tensorinfo --short`` prints
(:mod:`torchmagic.tensors.summary`), followed by torch's repr.  Off by
default; :meth:`TensorDisplay.use` with ``"repr"`` (and unloading the
extension) puts back whatever printers were there before.
"""

from __future__ import annotations

import sys
from typing import Any

from torchmagic.core.guard import guarded
from torchmagic.core.html import esc, wrap
from torchmagic.i18n import tr

__all__ = ["TensorDisplay"]

_FORMATS = ("text/plain", "text/html")
# tensor classes with a __repr__ of their own (IPython's pretty printer would use it before Tensor's printer)
_TYPES = (("torch", "Tensor"), ("torch.nn.parameter", "Parameter"), ("torch.nn.parameter", "Buffer"))


class TensorDisplay:
    """Installs and removes the summary printers on one shell.

    ``source`` holds the traits (the magics object): the options are read
    at display time, so ``%config`` changes apply at once.
    """

    def __init__(self, shell: Any, source: Any) -> None:
        self.shell = shell
        self.source = source
        # (format, module, class) -> the printer we replaced, None where there was none; None when off
        self._before: dict[tuple[str, str, str], Any] | None = None

    @property
    def on(self) -> bool:
        return self._before is not None

    def use(self, mode: str) -> None:
        """``"summary"`` installs the printers, ``"repr"`` removes them."""
        if mode == "summary" and not self.on:
            self._install()
        elif mode != "summary" and self.on:
            self._remove()

    def _formatter(self, kind: str) -> Any:
        return self.shell.display_formatter.formatters[kind]

    def _install(self) -> None:
        printers = {"text/plain": self._plain, "text/html": self._html}
        before: dict[tuple[str, str, str], Any] = {}
        for kind in _FORMATS:
            formatter = self._formatter(kind)
            for module, name in _TYPES:
                before[kind, module, name] = formatter.pop(f"{module}.{name}", None)  # the user's own, for later
                cls = getattr(sys.modules.get(module), name, None)
                if cls is not None:  # imported: register by type (IPython may have resolved the name already)
                    formatter.for_type(cls, printers[kind])
                else:  # not yet: IPython resolves the name on the first display
                    formatter.for_type_by_name(module, name, printers[kind])
        self._before = before

    def _remove(self) -> None:
        before, self._before = self._before or {}, None
        for kind in _FORMATS:
            formatter = self._formatter(kind)
            for module, name in _TYPES:
                formatter.pop(f"{module}.{name}", None)
                old = before.get((kind, module, name))
                if old is not None:
                    formatter.for_type_by_name(module, name, old)

    def _line(self, t: Any) -> Any:
        """The summary row of ``t``; no function mode sees our reads (``display(t)`` inside ``%%device``)."""
        import torch

        from torchmagic.options import options_for
        from torchmagic.tensors.summary import SummaryOptions, tensor_row

        options = options_for(SummaryOptions, self.source)
        with torch._C.DisableTorchFunction():
            return tensor_row("", t, options.summary_max_elements)

    def _plain(self, t: Any, p: Any, cycle: bool) -> None:
        """The plain-text printer: the summary line, then torch's repr (never a failure of ours)."""
        from torchmagic.tensors.render import summary_line

        line = ""
        with guarded(tr("summarising a tensor for display")):
            line = summary_line(self._line(t))
        p.text((line + "\n" if line else "") + repr(t))

    def _html(self, t: Any) -> str | None:
        """The HTML printer: the summary line (NaN/Inf highlighted) above torch's repr, escaped."""
        from torchmagic.tensors.render import summary_html

        with guarded(tr("summarising a tensor for display")):
            return wrap(summary_html(self._line(t)) + f"<pre>{esc(repr(t))}</pre>", "tensor")
        return None  # our failure: IPython shows the plain text instead

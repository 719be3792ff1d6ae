"""The base every torchmagic result shares: plain data in, three views out.

A report is a dataclass of plain values (str, int, float, bool, tuples, lists,
nested report dataclasses).  It knows nothing about drawing: it names the
renderer module that turns it into HTML and rich renderables, and the plain
text view is the rich view printed without colour.  That keeps one code path
for terminal and text, and lets renderers be tested without torch.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import math
import sys
from typing import Any, ClassVar

__all__ = ["Report", "jsonable", "rich_to_text", "show"]

TEXT_WIDTH = 100


def jsonable(value: Any) -> Any:
    """Convert dataclasses, tuples and odd floats into JSON-serialisable values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, Report):
            out["kind"] = type(value).__name__
        return out
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no nan/inf
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def rich_to_text(renderable: Any, width: int = TEXT_WIDTH) -> str:
    """Render a rich renderable to plain text (no colour, fixed width)."""
    from rich.console import Console

    buf = io.StringIO()
    console = Console(
        file=buf,
        width=width,
        color_system=None,
        force_terminal=False,
        force_jupyter=False,
        legacy_windows=False,
        highlight=False,
    )
    console.print(renderable)
    return buf.getvalue().rstrip() + "\n"


class Report:
    """Mixin for report dataclasses.

    Subclasses set ``_renderer`` to the dotted name of a module providing
    ``to_html(report) -> str`` and ``to_rich(report) -> rich renderable``.
    """

    _renderer: ClassVar[str] = ""

    def _render_module(self) -> Any:
        return importlib.import_module(self._renderer)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable data of this report (``json.dumps`` works on it)."""
        out = jsonable(self)
        assert isinstance(out, dict)
        return out

    def to_html(self) -> str:
        return str(self._render_module().to_html(self))

    def to_text(self) -> str:
        return rich_to_text(self.__rich__())

    def __rich__(self) -> Any:
        return self._render_module().to_rich(self)

    def _repr_mimebundle_(
        self, include: Any = None, exclude: Any = None
    ) -> dict[str, str]:
        bundle = {"text/plain": self.to_text().rstrip("\n")}
        if include is None or "text/html" in include:
            bundle["text/html"] = self.to_html()
        return bundle

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.to_text().rstrip("\n"))

    def __str__(self) -> str:
        return self.to_text()


def in_kernel(shell: Any) -> bool:
    """True when ``shell`` talks to a notebook front end (HTML can be shown).

    Any subclass of ipykernel's shell counts (Google Colab's shell is one).
    A shell of that class exists only once ``ipykernel.zmqshell`` is imported,
    so a terminal session never pays for importing it.
    """
    zmqshell = sys.modules.get("ipykernel.zmqshell")
    return zmqshell is not None and isinstance(shell, zmqshell.ZMQInteractiveShell)


def show(report: Report, shell: Any = None) -> None:
    """Show ``report`` where the user is: HTML in notebooks, rich in a terminal."""
    if shell is None:
        try:
            from IPython import get_ipython

            shell = get_ipython()
        except ImportError:  # pragma: no cover - IPython is a dependency
            shell = None
    if in_kernel(shell):
        from IPython.display import display

        # Render here, not in IPython's formatter: a renderer failure then reaches
        # the caller (which reports it in one line) instead of a formatter traceback.
        display(report._repr_mimebundle_(), raw=True)
        return
    from rich.console import Console

    Console().print(report)

"""Global PyTorch hooks that exist only while a cell runs (module calls, optimizer steps).

A recorder subclasses :class:`GlobalHooks`, says which hooks it registers and
what to forget afterwards; entering registers them, exiting removes every
one, however the cell ended.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from torch.utils.hooks import RemovableHandle

__all__ = ["GlobalHooks"]

H = TypeVar("H", bound="GlobalHooks")


class GlobalHooks:
    """A context manager holding some global hooks: :meth:`register` them, :meth:`reset` after."""

    _handles: list[RemovableHandle]

    def register(self) -> list[RemovableHandle]:
        """Register the hooks; return their handles."""
        raise NotImplementedError

    def reset(self) -> None:
        """Forget per-run state once the hooks are gone."""

    def __enter__(self: H) -> H:
        self._handles = self.register()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for handle in getattr(self, "_handles", []):
            handle.remove()
        self._handles = []
        self.reset()

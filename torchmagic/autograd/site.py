"""Where in the cell an autograd event happened: its frame, line, source text and the names in scope.

The watcher (``.detach()``, ``no_grad``, ``.data``) and the backward recorder
both ask the same questions from inside a torch hook; a :class:`CellSite`
answers them for one compiled cell.  Frames are only looked at, never kept.
"""

from __future__ import annotations

import ast
import functools
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any

import torch

from torchmagic.core.cell import cell_lineno
from torchmagic.core.names import iter_named_tensors
from torchmagic.core.text import source_line

__all__ = ["CellSite", "enclosing_loop", "names_of"]

_TORCH_DIR = os.path.dirname(torch.__file__)
_OWN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # torchmagic/
# Ops run by optimizers, nn.init and nn.utils work under no_grad on purpose: not the cell's doing.
_SKIP_DIRS = tuple(
    os.path.join(_TORCH_DIR, *parts) for parts in (("optim",), ("nn", "init.py"), ("nn", "utils"))
)


@dataclass(frozen=True)
class CellSite:
    """One running cell: the file name its frames carry, its source lines and its namespace."""

    filename: str
    lines: list[str]
    namespace: Mapping[str, Any]

    def frame(self) -> FrameType | None:
        """The cell's frame if the current op was called from the cell (also through ``torch.nn``), else None.

        Ops that optimizers, ``nn.init`` and ``nn.utils`` run are their own
        business, so for them there is no cell frame.
        """
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            fname = frame.f_code.co_filename
            if fname == self.filename:
                return frame
            if fname.startswith(_OWN_DIR):
                frame = frame.f_back
                continue
            if fname.startswith(_TORCH_DIR):
                if fname.startswith(_SKIP_DIRS):
                    return None
                frame = frame.f_back
                continue
            return None
        return None

    def line(self) -> int:
        """The cell line the current call comes from (0 when no cell frame is on the stack)."""
        return cell_lineno(self.filename, sys._getframe(1))

    def source(self, line: int) -> str:
        """The stripped text of cell line ``line``."""
        return source_line(self.lines, line)

    def loop_line(self, line: int) -> int:
        """The line of the innermost ``for``/``while`` around cell line ``line`` (0 when there is none)."""
        return enclosing_loop("\n".join(self.lines), line)

    def tensors(self) -> list[tuple[str, torch.Tensor]]:
        """``(name, tensor)`` in the namespace, then in the cell's local frames (loops in functions)."""
        named = list(iter_named_tensors(self.namespace))
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_filename == self.filename and frame.f_locals is not self.namespace:
                named.extend((k, v) for k, v in list(frame.f_locals.items())
                             if isinstance(v, torch.Tensor) and not k.startswith("_"))
            frame = frame.f_back
        return named

    def names(self) -> dict[int, str]:
        """``id(tensor) -> name`` from :meth:`tensors`: a top-level name wins over a nested one."""
        return names_of(self.tensors())


@functools.lru_cache(maxsize=16)
def enclosing_loop(source: str, line: int) -> int:
    """The line of the innermost ``for``/``while`` of ``source`` around ``line`` (0 when there is none)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython syntax the transformers rewrote: no loop to point at
        return 0
    best = 0
    for node in ast.walk(tree):
        if isinstance(node, (ast.For, ast.While, ast.AsyncFor)) and node.lineno <= line <= (node.end_lineno or 0):
            best = max(best, node.lineno)
    return best


def names_of(named: list[tuple[str, torch.Tensor]]) -> dict[int, str]:
    """``id(tensor) -> name`` from ``(name, tensor)`` pairs: the first name, unless a later one is top-level
    and the first is not (``w`` over ``params[0]``), as :func:`torchmagic.core.names.user_names` does."""
    names: dict[int, str] = {}
    for name, tensor in named:
        key = id(tensor)
        old = names.get(key)
        if old is None or (_nested(old) and not _nested(name)):
            names[key] = name
    return names


def _nested(name: str) -> bool:
    return "." in name or "[" in name

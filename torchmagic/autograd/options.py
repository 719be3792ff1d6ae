"""What one ``%%autograd`` run records and draws: the traits it reads and the flags of its line."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WatchOptions", "GraphOptions"]


@dataclass
class WatchOptions:
    """What the watcher records (fields named like their trait, see :mod:`torchmagic.options`)."""

    autograd_value_elements: int
    autograd_max_nodes: int
    autograd_max_calls: int
    jacobian_max_elements: int
    precision: int
    jacobian: bool = False  # --jacobian


@dataclass
class GraphOptions:
    """How the graph is folded before it is drawn (``--no-collapse``, ``--modules`` and ``--expand`` override)."""

    autograd_collapse: bool
    autograd_collapse_above: int
    autograd_min_repeats: int
    autograd_group_modules: bool
    autograd_fold: bool
    autograd_fold_above: int
    autograd_fold_boxes: int
    expand: tuple[str, ...] = ()  # --expand NAME: module calls drawn open

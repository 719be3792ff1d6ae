"""``%%tensorinfo``: trace the torch ops of a cell.

collector (the runner's entry: recorder around the cell, report after) →
recorder (TorchFunctionMode; ``source`` reads sites, ``aten`` the profiler for
``--deep``) → build (names resolved after the cell) → report (plain data) →
render (HTML, rich) and annotate (``--source``).  Failing ops are explained by
:mod:`torchmagic.errors`.
"""

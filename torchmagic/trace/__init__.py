"""``%%tensorinfo``: trace the torch ops of a cell.

collector (the runner's entry: recorder around the cell, report after) →
recorder (TorchFunctionMode; ``sites`` says which calls are the user's,
``source`` reads their sub-expressions, ``rows`` holds the records,
``variants`` describes each new set of shapes, ``aten`` reads the profiler
for ``--deep``; in-place writes to saved tensors are caught by
:class:`torchmagic.core.saved.SavedLog`) → build (names resolved after the
cell) → report (plain data) → render (HTML, rich) and annotate
(``--source``).  Failing ops are explained by :mod:`torchmagic.errors`.
"""

"""``%%tensorinfo``: trace the torch ops of a cell; ``%tensorinfo --nan``: the NaN watch for any cell.

collector (the runner's entry: recorder around the cell, report after) →
recorder (TorchFunctionMode; ``sites`` says which calls are the user's,
``source`` reads their sub-expressions, ``rows`` holds the records,
``variants`` describes each new set of shapes and ``notes`` its silent
surprises, ``modules`` files ops under module calls, ``nans`` finds where
NaN/±Inf start, ``aten`` reads the profiler for ``--deep``; in-place writes
to saved tensors are caught by :class:`torchmagic.core.saved.SavedLog`) →
build (names resolved after the cell, ``fold`` folds repeated layers) →
report (plain data) → render (HTML, rich; ``render_ops``, ``render_modules``,
``render_nan``) and annotate (``--source``).  ``watch`` is the any-cell NaN
watch.  Failing ops are explained by :mod:`torchmagic.errors`.
"""

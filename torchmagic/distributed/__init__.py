"""``%%distributed``: run a cell on N ranks of torch.distributed and see what they did.

The notebook side: :mod:`pool` (the rank processes: ipyparallel engines with
a process group), :mod:`session` (run one cell on every rank, watch for
hangs, dead ranks and interrupts), :mod:`fold` (fold per-rank reports into
one), :mod:`render` (HTML, rich).  The rank side: :mod:`engine` runs the
cell through :func:`torchmagic.core.runner.run_cell` with the collectors of
:mod:`flight` (collectives, from PyTorch's flight recorder), :mod:`ddp`,
:mod:`dtensor` and :mod:`pipeline`, and returns plain data
(:mod:`report`).  Importing this package imports neither torch nor
ipyparallel.
"""

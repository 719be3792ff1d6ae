"""``%%tensorinfo``: trace the torch ops of a cell, and explain errors of any cell.

recorder (TorchFunctionMode/TorchDispatchMode collector) → report (plain
data) → render / render_error (HTML, rich).  ``broadcast``, ``explain`` and
``hints`` are pure logic; ``failing`` reads a traceback's frames for the
default-on error explainer; ``run`` is what the magic calls.
"""

"""Errors explained: why a torch op failed, in terms of the operands the user wrote.

Used by every cell: once the extension is loaded, a failing cell gets an
explanation under its traceback (``frames`` reads the traceback's frames,
``explain`` turns a failed op into an :class:`~torchmagic.errors.report.Explanation`,
``advice`` is the one table of what to write instead, ``render`` draws it).
``%%tensorinfo`` puts the same explanation in its trace; ``%%autograd``
takes its advice from the same table.
"""

"""``%%device``: run a cell on a device and see what it cost; ``%device``: device facts.

Modules: ``devices`` (device strings, availability), ``session`` (the
collector: default device, fallback, recorded run, repeats, compare),
``timing`` (host clock, device events), ``ops`` (per-op times), ``memory``
(allocator stats, tracked storages), ``rules`` (what a call means for
devices: sync points, copies; pure), ``watcher`` (the function mode that
records), ``mismatch`` (device-mismatch explanations), ``info``
(``%device``), ``report`` (plain data), ``render`` and ``render_info``
(HTML and rich).
"""

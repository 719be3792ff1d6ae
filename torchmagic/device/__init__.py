"""``%%device``: run a cell on a device and see what it cost; ``%device``: device facts.

Modules: ``devices`` (device strings, availability), ``run`` (default device,
fallback, recorded run, repeats, compare), ``timing`` (host clock, device
events), ``ops`` (per-op times), ``memory`` (allocator stats, tracked
storages), ``transfers`` (the watching modes), ``mismatch`` (device-mismatch
explanations), ``info`` (``%device``), ``report`` (plain data), ``render`` and
``render_info`` (HTML and rich).
"""

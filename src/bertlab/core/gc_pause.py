"""Python's cyclic garbage collector paused while a process imports torch, Lightning and transformers.

Those imports make some 820,000 objects the collector tracks (modules, classes, functions, their
dicts), and while they import the collector walks all of them again and again: a full pass
(generation 2) each time the tracked objects grow by a quarter, about seven before the imports end,
and a young pass every 700 allocations. On the 2-core CPU that is 1.0-1.4 s of the 5.3 s the imports
take (`import torch, lightning, transformers`: 5.3 s with the collector, 4.3 s paused; 2026-12-07).
The passes free little: what an import makes lives as long as the process.

`collector_paused()` disables the collector for the imports, then freezes what exists (gc.freeze:
moved to a generation no pass walks, so the run's later full passes walk only the run's own objects)
and enables it again. What it costs: the import-time garbage the skipped passes would have freed
(about 300,000 small objects, 10 MB of RSS) is frozen with the rest and kept for the process's life.

Only a process's own entry points use it (`python train.py`, `bertlab-train` and `bertlab train`,
through run/entry.py; the test servers and the tests' collection): a library call such as
bertlab.train() must not freeze its caller's objects.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic collection inside the block; on the way out, freeze what exists and turn the
    collector back on.

    Nested, or where the collector was already off (a caller that manages it), it changes nothing.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()

"""Keep the garbage collector's full passes off the request path.

A full collection scans every object the collector tracks.  A loaded tenant holds
about 90 000 of them (the bundle's tables, TVM's objects): one full pass took 8-25 ms
there, and 10-14 ms in `mtcc bench`'s own process in the middle of a trial (traced with
gc.callbacks on 2 vCPUs) -- a stall of every request in flight, longer than a small
model's whole target.  What a server loads at start lives until it stops, so once
loaded it is collected once and frozen (gc.freeze: out of every later pass), and later
passes scan only what serving allocates.
"""
from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect what start-up left behind, then freeze the rest; returns how many
    objects are frozen (they are never scanned or collected again)."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()

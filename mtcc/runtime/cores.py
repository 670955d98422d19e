"""The core allocator: disjoint core sets for the tenants, and a record of who held what.

Cores are handed out lowest id first, so a tenant that gets cores back tends to get the
same ones (warm caches, fewer re-pins)."""
from __future__ import annotations

import collections
import threading
import time

TIMELINE_EVENTS = 1_000_000  # grants and releases kept (a server runs for days)


class CoreAllocator:
    def __init__(self, cores, clock=time.monotonic):
        self.clock = clock  # the simulator passes its simulated clock
        self.cores = sorted(int(c) for c in cores)
        if not self.cores:
            raise ValueError("no cores to allocate")
        self._free = list(self.cores)
        self._held: dict[object, list[int]] = {}
        self._lock = threading.Lock()
        # (t, "grant"|"release", holder, cores), the latest TIMELINE_EVENTS
        self.timeline: collections.deque = collections.deque(maxlen=TIMELINE_EVENTS)
        self.events = 0  # grants and releases ever recorded

    @property
    def free(self) -> list[int]:
        with self._lock:
            return list(self._free)

    def held(self, holder) -> list[int]:
        with self._lock:
            return list(self._held.get(holder, []))

    def since(self, events: int) -> list:
        """The timeline's entries recorded after the first `events` (as many as are kept)."""
        with self._lock:
            new = min(self.events - events, len(self.timeline))
            return list(self.timeline)[len(self.timeline) - new:] if new > 0 else []

    def grant(self, holder, n: int) -> list[int] | None:
        """`n` free cores for `holder` (added to what it holds), or None when fewer are free."""
        with self._lock:
            if n < 1 or n > len(self._free):
                return None
            got, self._free = self._free[:n], self._free[n:]
            self._held.setdefault(holder, []).extend(got)
            self.timeline.append((self.clock(), "grant", holder, tuple(got)))
            self.events += 1
            return list(got)

    def release(self, holder, cores=None) -> None:
        """Give back `cores` (default: all that `holder` holds)."""
        with self._lock:
            mine = self._held.get(holder, [])
            back = list(mine) if cores is None else [c for c in cores if c in mine]
            if not back:
                return
            self._held[holder] = [c for c in mine if c not in back]
            if not self._held[holder]:
                del self._held[holder]
            self._free = sorted(self._free + back)
            self.timeline.append((self.clock(), "release", holder, tuple(back)))
            self.events += 1

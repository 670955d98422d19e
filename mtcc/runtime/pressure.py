"""Pressure proxies: the interference level a tenant is under right now, without
hardware counters (these VMs have none).

`PressureProxy` is the interface; `FootprintProxy` is the local implementation. It
combines two estimates of the slowdown a tenant suffers and keeps the larger:

1. from what the neighbours run: the product of the footprints of the blocks the other
   lanes run now (each variant's measured slowdown of a memory-bound probe; 1.0 = none),
   which the server writes into the lane's control words;
2. from the tenant's own blocks, online: observed / predicted time of each block,
   divided by the same ratio measured when the server started and the model ran
   alone (the bundle's tables may come from another CPU; the median of those
   readings -- their minimum read this host's ordinary speed as a 5-10 % slowdown,
   on the dead band's edge): the median of the last few blocks.  A slowdown nobody's
   footprint explains -- the host time-sharing the two vCPUs (a busy neighbour then
   costs 2x while steal time reads 0), another program, a stressor -- shows up here
   as pressure instead of being ignored.

The level is the strongest calibrated level whose slowdown *predicted for this block
by its own tables* (cells "<c>c/<level>" over "<c>c/none") the estimate reaches, so a
compute-bound block that no level slows much is never said to be under "high".
"""
from __future__ import annotations

import collections
import statistics

from ..cells import LEVEL_ORDER


class PressureProxy:
    """Interface: calibrate(block, ratio) while alone; observe(block, ratio) after
    each block (ratio = observed / predicted at level none); level(the block's
    thresholds(), neighbour slowdown) -> one of LEVEL_ORDER.

    These run at every block boundary, right after the kernels have evicted the
    interpreter from the caches, where each Python call costs several µs: keep them
    short (a boundary must stay within 2 % of a block)."""

    name = "abstract"

    def calibrate(self, block: int, ratio: float) -> None:
        raise NotImplementedError

    def observe(self, block: int, ratio: float) -> None:
        raise NotImplementedError

    def slowdown(self, neighbour: float = 1.0) -> float:
        raise NotImplementedError

    def level(self, marks: list[tuple[str, float]], neighbour: float = 1.0) -> str:
        """`marks`: thresholds() of this block's predicted slowdowns (computed once per
        block and core count by the caller)."""
        return level_for(marks, self.slowdown(neighbour))


DEAD_BAND = 1.10  # a shared VM's own block-to-block noise reaches ~5-10 %: never pressure


def thresholds(predicted: dict[str, float]) -> list[tuple[str, float]]:
    """(level, the estimate that reaches it) for a block's predicted slowdowns: most of
    the way to a level's slowdown counts, and never less than DEAD_BAND; a level that
    would not slow the block by 2 % is indistinguishable from none and left out."""
    return [(name, max(DEAD_BAND, 1.0 + 0.75 * (predicted[name] - 1.0))) for name in LEVEL_ORDER[1:]
            if predicted.get(name) and predicted[name] > 1.02]


def level_for(marks: list[tuple[str, float]], estimate: float) -> str:
    """The strongest level whose threshold the estimated slowdown reaches."""
    chosen = "none"
    for name, threshold in marks:
        if estimate >= threshold:
            chosen = name
    return chosen


class FootprintProxy(PressureProxy):
    """The estimate from the tenant's own blocks is the median of the last `window`
    slowdowns: one block slowed by a burst of the host's other work does not switch
    variants; a neighbour that stays does, within about half a window."""

    name = "footprint"

    def __init__(self, window: int = 5):
        self.baseline: dict = {}
        self._readings: dict = collections.defaultdict(list)  # the alone readings, per block
        self.recent: collections.deque = collections.deque(maxlen=window)
        self.estimate = 1.0

    def calibrate(self, block, ratio: float) -> None:
        if ratio > 0:
            readings = self._readings[block]
            readings.append(ratio)
            self.baseline[block] = statistics.median(readings)

    def observe(self, block, ratio: float) -> None:
        base = self.baseline.get(block)
        if not base or ratio <= 0:
            return
        recent = self.recent
        recent.append(ratio / base)
        ordered, n = sorted(recent), len(recent)  # the median, without statistics' overhead
        self.estimate = ordered[n // 2] if n % 2 else 0.5 * (ordered[n // 2 - 1] + ordered[n // 2])

    def slowdown(self, neighbour: float = 1.0) -> float:
        return max(float(neighbour), self.estimate)


PROXIES = {cls.name: cls for cls in (FootprintProxy,)}


def make_proxy(name: str, **kwargs) -> PressureProxy:
    try:
        return PROXIES[name](**kwargs)
    except KeyError:
        raise ValueError(f"unknown pressure proxy {name!r} (known: {', '.join(PROXIES)})") from None

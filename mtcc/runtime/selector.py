"""Variant selection: per block, the variant of each task predicted fastest for the
cores a tenant holds and the pressure it is under.

`Selector` is the interface (a learned predictor, or one fed by hardware counters
where they exist, can be plugged in by name); `TableSelector` reads the bundle's
measured tables.  A task switches away from its default only when the tables predict
a gain larger than `margin` and than the two cells' measured errors together (where
the bundle carries them), and a block keeps its default variants unless the switches
together gain `margin` of the whole block: the block is what the scheduler runs and
times, and a 3 % gain on a task that is 1 % of it is well inside what the tables'
whole-model error allows (a squeezenet choice predicted 0.9 % faster measured 2.7 %
slower once).  No switching for nothing.
"""
from __future__ import annotations

import math

from .profile import ModelProfile

DEFAULT_MARGIN = 0.03  # the least gain worth a switch, whatever the cells' own errors say


class Selector:
    """Interface: choose(profile, block, cores, level) -> {task: variant id}."""

    name = "abstract"

    def choose(self, profile: ModelProfile, block: int, cores: int, level: str) -> dict[str, str]:
        raise NotImplementedError

    def choose_all(self, profile: ModelProfile, cores: int, level: str) -> list[dict[str, str]]:
        """choose() for every block, in block order."""
        return [self.choose(profile, block, cores, level) for block in range(len(profile.blocks))]


class DefaultSelector(Selector):
    """Always the default variants (the `block` policy: separates the scheduling gain
    from the variant-choice gain)."""

    name = "default"

    def choose(self, profile, block, cores, level):
        return {task: profile.default[task] for task in profile.blocks[block].calls}


class TableSelector(Selector):
    """Per task, the variant with the lowest predicted latency at (cores, level)."""

    name = "table"

    def __init__(self, margin: float = DEFAULT_MARGIN):
        self.margin = margin

    def choose(self, profile, block, cores, level):
        out = self._per_task(profile, block, cores, level)
        switched = [task for task, vid in out.items() if vid != profile.default[task]]
        if switched:
            calls = profile.blocks[block].calls
            base = profile.block_us(block, cores, level)
            gain = base - profile.block_us(block, cores, level, out)
            error = math.sqrt(sum((calls[task] * profile.call_error_us(task, vid, cores, level)) ** 2
                                  for task in switched for vid in (out[task], profile.default[task])))
            if gain <= max(self.margin * base, error):
                out = {task: profile.default[task] for task in calls}
        return out

    def _per_task(self, profile, block, cores, level):
        out = {}
        for task in profile.blocks[block].calls:
            default = profile.default[task]
            base = profile.call_us(task, default, cores, level)
            best, best_us = default, base
            for v in profile.variants[task]:
                us = profile.call_us(task, v.id, cores, level)
                if us and us < best_us:
                    best, best_us = v.id, us
            if best != default and base:
                error = math.hypot(profile.call_error_us(task, best, cores, level),
                                   profile.call_error_us(task, default, cores, level))
                if best_us >= base - max(self.margin * base, error):
                    best = default
            out[task] = best
        return out


SELECTORS = {cls.name: cls for cls in (DefaultSelector, TableSelector)}


def make_selector(name: str) -> Selector:
    try:
        return SELECTORS[name]()
    except KeyError:
        raise ValueError(f"unknown selector {name!r} (known: {', '.join(SELECTORS)})") from None

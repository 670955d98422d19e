"""The figure of merit: the highest request rate at which a system serves at least
`required` of every model's requests within target.

A search is a small state machine, so the bench can run one trial of every system in
turn (interleaved: a drift of the shared machine hits all systems alike) instead of
finishing one system's search before the next:

    search = RateSearch(start=20.0)
    while not search.done:
        rate = search.next_rate()
        search.record(rate, share_within_target(rate))
    search.best            # highest rate that met the requirement (0.0 if none did)

It doubles the rate while trials pass (halves it while they fail), then bisects between
the highest pass and the lowest fail until they are within `resolution` of each other.
Shares measured under noise need not fall monotonically with the rate: the answer is
the highest passing rate below the lowest failing one, so a lucky pass above a failure
never counts.
"""
from __future__ import annotations

from dataclasses import dataclass, field

REQUIRED_SHARE = 0.99


@dataclass
class RateSearch:
    start: float
    required: float = REQUIRED_SHARE
    resolution: float = 1.15       # stop when lowest fail / highest pass is below this
    max_trials: int = 12
    floor: float | None = None     # a failure at or below this rate ends the search with 0 (default start / 8)
    trials: list[tuple[float, float]] = field(default_factory=list)   # (rate, share) in order

    def __post_init__(self):
        if self.start <= 0:
            raise ValueError("the search must start at a positive rate")
        if self.floor is None:  # trials at low rates are long (they need enough requests)
            self.floor = self.start / 8

    @property
    def highest_pass(self) -> float | None:
        fail = self.lowest_fail
        passed = [r for r, s in self.trials if s >= self.required and (fail is None or r < fail)]
        return max(passed) if passed else None

    @property
    def lowest_fail(self) -> float | None:
        failed = [r for r, s in self.trials if s < self.required]
        return min(failed) if failed else None

    @property
    def best(self) -> float:
        return self.highest_pass or 0.0

    @property
    def done(self) -> bool:
        if len(self.trials) >= self.max_trials:
            return True
        lo, hi = self.highest_pass, self.lowest_fail
        if hi is not None and hi <= self.floor:
            return True
        return lo is not None and hi is not None and hi / lo < self.resolution

    def next_rate(self) -> float:
        lo, hi = self.highest_pass, self.lowest_fail
        if lo is None and hi is None:
            return self.start
        if hi is None:
            return lo * 2.0
        if lo is None:
            return hi / 2.0
        return (lo * hi) ** 0.5   # bisect on a log scale: rates span orders of magnitude

    def record(self, rate: float, share: float) -> None:
        self.trials.append((float(rate), float(share)))

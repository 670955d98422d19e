"""A discrete-event simulator of `mtcc.Server` on any number of cores: the bundles'
measured latency tables replayed on simulated cores, with the runtime's own decisions.

It calls the same objects the server calls -- `runtime.scheduler.schedule` (with the
policy from `runtime.policies` and a `runtime.cores.CoreAllocator` on simulated time),
the selector from `runtime.selector` and the thresholds of `runtime.pressure` -- and
replaces only the tenants: a unit's calls take the time their tables predict for the
cores granted and the interference level the neighbours' footprints imply.  What it
leaves out, on purpose: cache warmth, the host's time-sharing, and any error of the
tables (the bench validates the simulator against real 2-core runs for that).

More cores than the tables measured: `extrapolate(profile, counts)` fills the missing
cells from an Amdahl fit on the two largest measured core counts of every variant and
level; figures made from them are labelled *extrapolated*.

    sim = Simulator(profiles, cores=16, policy="block-adaptive", qos_ms={"sq": 4.0})
    run = sim.run(poisson_arrivals({"sq": 200.0}, duration_s=5, seed=0))  # like load.drive()
"""
from __future__ import annotations

import copy
import heapq
import itertools
import random
from dataclasses import dataclass, field

from ..cells import cell_key, parse_cell
from ..runtime.cores import CoreAllocator
from ..runtime.policies import Pending, Policy, make_policy
from ..runtime.pressure import level_for, thresholds
from ..runtime.profile import ModelProfile
from ..runtime.scheduler import Waiting, default_lanes, must_yield, schedule, waiting_of
from ..runtime.selector import make_selector

# What a unit and a stop point cost the real server beyond the tables' kernels
# (measured on 2 vCPUs by benchmarks/runtime_costs.py; the bench may pass its own).
DEFAULT_UNIT_OVERHEAD_US = 60.0
DEFAULT_STOP_US = 25.0
# A tenant's pool spins ~1.6 ms after a run (threads.TENANT_SPIN_COUNT) and its data stays
# in the caches about as long: a unit that starts within this of its lane's last one finds
# the lane warm; later, it pays the model's measured cold cost (Server: after_pause_ms).
WARM_S = 0.002


def amdahl_serial_share(t_small: float, t_large: float, c_small: int, c_large: int) -> float:
    """Serial share s of t(c) = t1 (s + (1 - s) / c) through two measured points."""
    if t_small <= 0 or c_large <= c_small:
        return 1.0
    ratio = t_large / t_small   # = (s + (1-s)/cl) / (s + (1-s)/cs)
    a, b = 1.0 / c_large, 1.0 / c_small
    # ratio (s + (1-s) b) = s + (1-s) a  ->  s (ratio - ratio b - 1 + a) = a - ratio b
    denom = ratio - ratio * b - 1.0 + a
    if abs(denom) < 1e-12:
        return 1.0
    return min(1.0, max(0.0, (a - ratio * b) / denom))


def extrapolate(profile: ModelProfile, counts: list[int]) -> tuple[ModelProfile, bool]:
    """A copy of `profile` whose tables also hold `counts` cores, filled by an Amdahl fit
    where they were not measured; and whether any count rests on that fit alone.  A count
    at which this machine measured every block (calibrate) does not: block_us there is the
    measured time whatever the fit said (only other variants' times keep the fit's ratio)."""
    out = copy.deepcopy(profile)
    out._call_us, out._tables = {}, {}
    filled = False
    for variants in out.variants.values():
        for v in variants:
            by_level: dict[str, dict[int, float]] = {}
            for key, us in v.latency_us.items():
                c, level = parse_cell(key)
                by_level.setdefault(level, {})[c] = float(us)
            top = max((c for points in by_level.values() for c in points), default=0)
            for level, points in by_level.items():
                # a level measured at fewer core counts than `none` (no free core for the
                # stressor) grows like `none` does: predict() already scales it that way.
                fit = points if len(points) >= 2 else by_level.get("none", points)
                measured = sorted(fit)
                for c in counts:
                    if c <= top:
                        continue
                    ref = max(points)
                    if len(measured) >= 2:
                        cs, cl = measured[-2], measured[-1]
                        share = amdahl_serial_share(fit[cs], fit[cl], cs, cl)
                        us = points[ref] * (share + (1 - share) / c) / (share + (1 - share) / ref)
                    else:
                        us = points[ref]
                    v.latency_us[cell_key(c, level)] = round(us, 3)
                    filled |= c not in profile.measured_block_us
    out.core_counts = sorted(set(out.core_counts) | set(counts))
    if profile.measured_block_us:  # the factors were taken against the old tables: anew
        out.calibrate(profile.measured_block_us)
    return out, filled


@dataclass
class _Request:
    id: int
    model: str
    pending: Pending
    lane: int | None = None
    running: bool = False
    yield_asked: bool = False
    end: int = 0
    stops: list = field(default_factory=list)
    cores: int = 0


class Simulator:
    """See the module doc.  `profiles`: {model: ModelProfile}; `scale`: {model: measured /
    table latency} (1.0: the tables are the truth); `cold_us`: {model: µs a unit pays on a
    lane idle for more than `warm_s`} (the tables are timed back to back; a request that
    finds an idle machine runs slower); `unit_overhead_us`: what a unit costs beyond its
    kernels, one figure or quantiles of the real servers' round trips to draw from;
    `lanes` and `max_queue` as in Server."""

    def __init__(self, profiles: dict[str, ModelProfile], cores: int, policy: str | Policy,
                 qos_ms: dict[str, float], *, lanes: int | None = None, max_queue: int = 64,
                 scale: dict[str, float] | None = None,
                 unit_overhead_us: float | list[float] = DEFAULT_UNIT_OVERHEAD_US,
                 stop_us: float = DEFAULT_STOP_US, cold_us: dict[str, float] | None = None, warm_s: float = WARM_S):
        self.profiles, self.qos_ms = profiles, qos_ms
        self.policy = make_policy(policy) if isinstance(policy, str) else policy
        self.policy.set_targets(qos_ms)
        self.selector = make_selector(self.policy.selector)
        self.cores, self.max_queue = int(cores), max_queue
        self.lanes = lanes if lanes is not None else default_lanes(self.cores, len(profiles))
        self.scale = scale or {}
        # the real servers' measured round trips as quantiles (p0 .. p100; one figure: every
        # unit pays it): each unit draws one, so their tail reaches the latencies' tail
        self.overhead_quantiles = sorted([unit_overhead_us] if isinstance(unit_overhead_us, (int, float))
                                         else unit_overhead_us)
        self.stop_us = stop_us
        self.cold_us, self.warm_s = cold_us or {}, warm_s

    # -- one run -------------------------------------------------------------------------
    def run(self, arrivals: list[tuple[float, str]]) -> dict:
        """Serve `arrivals` [(seconds, model)]; returns what `load.drive` returns (per
        request model, arrival, latency ms or error), plus units, conflicts and the
        core-grant timeline, all in simulated time."""
        self.now = 0.0
        self.rng = random.Random(0)  # the same draws for the same arrivals
        self.allocator = CoreAllocator(range(self.cores), clock=lambda: self.now)
        self.queues = {m: [] for m in self.profiles}
        self.lane_of = {m: [None] * self.lanes for m in self.profiles}
        self.events: list = []
        self.seq = itertools.count()
        self.units = self.conflicts = 0
        self.switched_blocks = 0
        self.cold_units = 0
        self.lane_free_since: dict[tuple[str, int], float] = {}  # (model, lane) -> when its last unit ended
        latency: dict[int, float] = {}
        refused: set[int] = set()
        requests = []
        for k, (at, model) in enumerate(arrivals):
            heapq.heappush(self.events, (at, next(self.seq), "arrive", (k, model)))
        while self.events:
            t, _, kind, data = heapq.heappop(self.events)
            self.now = t
            if kind == "arrive":
                k, model = data
                if len(self.queues[model]) >= self.max_queue:
                    refused.add(k)
                else:
                    qos = self.qos_ms[model] / 1e3
                    pending = Pending(model, t, t + qos, 0, self.profiles[model], self.scale.get(model, 1.0))
                    self.queues[model].append(_Request(k, model, pending))
            else:
                done = self._segment_done(*data)
                if done is not None:
                    latency[done.id] = (t - done.pending.arrival) * 1e3
            self._dispatch()
        for k, (at, model) in enumerate(arrivals):
            requests.append({"model": model, "arrival_s": round(at, 6),
                             "latency_ms": round(latency[k], 4) if k in latency else None,
                             "error": "refused: queue full" if k in refused else None})
        return {"requests": requests, "sent": len(arrivals) - len(refused), "refused": len(refused),
                "units": self.units, "conflicts": self.conflicts, "switched_blocks": self.switched_blocks,
                "cold_units": self.cold_units,
                "timeline": [(round(t, 6), what, str(holder), list(c)) for t, what, holder, c in self.allocator.since(0)]}

    # -- the server's step, on simulated lanes ---------------------------------------------
    def _waiting(self) -> list[Waiting]:
        return [w for model, lanes in self.lane_of.items() for w in waiting_of(model, lanes, self.queues[model])]

    def _dispatch(self) -> None:
        step = schedule(self.policy, self.allocator, self._waiting(), self.now)
        for grant in step.grants:
            r, k = grant.waiting.item
            if r.lane is None:
                self.queues[r.model].remove(r)
                self.lane_of[r.model][k] = r
                r.lane = k
            r.running, r.yield_asked = True, False
            r.end, r.stops, r.cores = grant.end, grant.stops, len(grant.cores)
            self.units += 1
            self.conflicts += grant.conflict
            extra = self._unit_overhead()
            if self.now - self.lane_free_since.get((r.model, k), float("-inf")) > self.warm_s:
                extra += self.cold_us.get(r.model, 0.0)
                self.cold_units += 1
            self._start_segment(r, extra)
        if step.best_blocked is not None:
            for lanes in self.lane_of.values():
                for r in lanes:
                    if r is not None and r.running and must_yield(self.policy, r.pending, step.best_blocked):
                        r.yield_asked = True

    def _unit_overhead(self) -> float:
        """µs a unit costs beyond its kernels: a draw from the quantiles (one: that figure)."""
        q = self.overhead_quantiles
        x = self.rng.random() * (len(q) - 1)
        k = int(x)
        return q[k] + (q[min(k + 1, len(q) - 1)] - q[k]) * (x - k)

    def _neighbour_footprint(self, me: _Request) -> float:
        product = 1.0
        for model, lanes in self.lane_of.items():
            for r in lanes:
                if r is not None and r is not me and r.running:
                    profile = self.profiles[model]
                    product *= profile.block_footprint(profile.block_of(r.pending.reached))
        return product

    def _start_segment(self, r: _Request, extra_us: float = 0.0) -> None:
        """Run from `reached` to the next stop point, block end or the unit's end."""
        profile = self.profiles[r.model]
        at = r.pending.reached
        block = profile.block_of(at)
        cut = min([r.end, profile.blocks[block].end] + [s for s in r.stops if s > at])
        # The level the neighbours impose; the pressure proxy's thresholds read it the
        # same way the tenant's proxy would with a correct estimate.
        level = level_for(thresholds(profile.block_slowdowns(block, r.cores)), self._neighbour_footprint(r))
        choice = self.selector.choose(profile, block, r.cores, level)
        if any(choice[t] != profile.default[t] for t in choice):
            self.switched_blocks += 1
        us = profile.factor(block, r.cores) * sum(  # factor: the server's calibration, if any
            profile.call_us(task, choice.get(task, profile.default[task]), r.cores, level)
            for task in profile.call_tasks[at:cut])
        us = us * self.scale.get(r.model, 1.0) + extra_us + (self.stop_us if cut in r.stops else 0.0)
        heapq.heappush(self.events, (self.now + us / 1e6, next(self.seq), "segment", (r, cut)))

    def _segment_done(self, r: _Request, cut: int) -> _Request | None:
        """Advance `r` to `cut`; the finished request, if this was its last call."""
        r.pending.reached = cut
        finished = cut >= len(self.profiles[r.model].call_tasks)
        if cut >= r.end or finished or (cut in r.stops and r.yield_asked):
            self.allocator.release(("lane", r.model, r.lane))
            self.lane_free_since[(r.model, r.lane)] = self.now
            r.running = False
            if finished:
                self.lane_of[r.model][r.lane] = None
                return r
            return None
        self._start_segment(r)
        return None


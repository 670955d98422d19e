"""Scheduling policies: how requests are cut into units, in which order waiting units
run, and how many cores each gets.  One small interface, a local implementation per
name; the server and the simulator call the same objects.

A *unit* is a run of consecutive calls of one request on one core grant.  Where a
unit may stop early (its stop points) the tenant checks a shared-memory word, so a
boundary costs a read unless someone waits; the server cuts a request into units only
where the policy's wanted core count changes (the paper's "similar core demand").

    model-fcfs      the paper's baseline: arrival order; a request gets the fewest cores
                    whose isolated latency meets its target and holds them to the end
    model-edf       the same, earliest deadline first
    layer           deadline order, cores per call from the call's table, stop points at
                    every call
    block           deadline order, cores per layer block, stop points at every block:
                    a short request arriving behind a long one starts at the next block
                    boundary instead of after the whole model
    block-adaptive  block, and at every block the selector picks the variants for the
                    cores held and the pressure of the neighbours

The block rule: a block that does not get faster on more cores (its measured table)
runs on one; otherwise it gets the fewest cores with which the rest of the request is
predicted to finish within SLACK of the time left to its deadline -- planning to use
only part of the budget leaves room for waiting behind a neighbour's block -- and,
when no count achieves that, the count that runs the block fastest.  It never takes
every core for a block that would run longer than another model's whole target (one
core stays free for that model): measured on 2 cores, squeezenet's 10 ms blocks on
both cores made every transformer request (3.5 ms target) arriving meanwhile miss.
And a short run of blocks wanting another count (under ABSORB_US) stays in the unit
before it (each unit costs a scheduler round trip); stop points stay at every block,
so a waiting request of higher priority still takes over at the next boundary.

Spare cores (the block policies, SPARE_CORES): the rule above plans the fewest cores
that meet a target, which under a loose target is one core per unit -- on an idle
16-core server a transformer request then ran on one core at ~2 ms with 15 cores
idle, and 6-26 % of them missed 4x its one-core latency at every rate tried (29-232
req/s), where ONNX Runtime, on every core, met that target up to 82-164 req/s.  So when every waiting unit has its planned cores and some are
still free, the scheduler lends them, in priority order, to the units it just started,
up to the count at which each unit's calls run fastest (within SPARE_TOLERANCE), where
that saves more than SPARE_MIN_GAIN_US (waking the extra threads costs), and never the
last free core to a unit that would outlast another model's target.
The plan, and so the conflict count, stays what the rule wanted; a lent core comes
back at the unit's end, at the latest at its next block boundary when a unit of
higher priority waits.
"""
from __future__ import annotations

from dataclasses import dataclass

# The block rule's settings: class attributes of the block policies, so an A/B run
# (benchmarks/policy_ab.py --set NAME=VALUE) changes one server's policy object only.
SLACK = 0.5
KEEP_CORE_FOR_TIGHTER = True  # the rule's last sentence above
# Each unit costs a scheduler round trip (0.38-0.55 ms measured on 2 and 16 cores): a
# request cut into many short units pays it many times (benchmarks/block_count.py: the
# transformer's p50 grew ~0.4 ms per extra unit).  So a short run of blocks that wants
# another core count than the blocks before it -- predicted to last less than this on
# the cores already held -- stays in the current unit instead of starting its own.  A
# long run never does: carrying two cores over squeezenet's 55 ms one-core block (an
# earlier rule that extended every unit to 4 ms) kept the transformer waiting, p99
# 17-46 ms against 8-9 ms (benchmarks/policy_ab.py).  0 turns it off.
ABSORB_US = 2000.0
# Spare cores (the module doc): lend free cores to started units when nobody waits, up
# to the fewest cores within SPARE_TOLERANCE of the unit's fastest time (a flat table
# keeps its one core).
SPARE_CORES = True
SPARE_TOLERANCE = 0.10
# ... and only where the lent cores save more than this: each extra pool thread is woken
# for the unit, 0.1-0.3 ms on these VMs after idle, so the transformer's 0.19 ms saved
# on a second core (0.81 -> 0.62 ms) did not pay on 2 cores (its share within 4x@1c 0.88
# against 0.97 without lending at 10 req/s, 0.84 against 0.85 at 30: one A/B), where the
# 0.7 ms on 16 cores (1.1 -> 0.43 ms) should.
SPARE_MIN_GAIN_US = 500.0


@dataclass
class Pending:
    """What a policy sees of a request."""
    model: str
    arrival: float           # seconds (monotonic)
    deadline: float          # seconds (monotonic)
    reached: int             # next call to run
    profile: object          # ModelProfile
    scale: float = 1.0       # measured / table latency of this model on this machine


class Policy:
    name = "abstract"
    granularity = "model"    # "model" | "block" | "call": where a unit may stop
    preemptive = False       # running units yield at stop points when a unit of higher priority waits
    selector = "default"     # "default" | "table"
    waits_for_planned = True # a unit waits until its planned cores are free (else runs with fewer: a conflict)
    targets_us: dict = {}    # {model: its latency target in µs}, for every model served (set_targets)

    def set_targets(self, targets_ms: dict) -> None:
        """The targets of every model served: a plan may keep a core free for the tightest."""
        self.targets_us = {m: float(ms) * 1e3 for m, ms in targets_ms.items() if ms}

    def priority(self, p: Pending) -> tuple:
        return (p.arrival,)

    def stops(self, p: Pending) -> list[int]:
        """Call indices where a unit of this request may stop early."""
        if self.granularity == "block":
            return [b.end for b in p.profile.blocks]
        if self.granularity == "call":
            return list(range(1, len(p.profile.call_tasks) + 1))
        return []

    def unit(self, p: Pending, now: float, total_cores: int) -> tuple[int, int]:
        """(cores wanted, end call) of the request's next unit."""
        raise NotImplementedError

    def spare(self, p: Pending, end: int, total_cores: int, held: int, available: int) -> int:
        """Cores the unit of calls [p.reached, end) should hold, of the `available` ones
        (the `held` and the free), when nobody waits (spare cores, module doc); the
        policies without them: those it holds."""
        return held


def model_cores(p: Pending, total_cores: int) -> int:
    """Fewest cores whose predicted isolated latency meets the request's target."""
    budget_us = (p.deadline - p.arrival) * 1e6
    for c in range(1, total_cores + 1):
        if p.scale * p.profile.model_us(c) <= budget_us:
            return c
    return total_cores


class ModelFcfs(Policy):
    name = "model-fcfs"

    def unit(self, p, now, total_cores):
        return model_cores(p, total_cores), len(p.profile.call_tasks)


class ModelEdf(ModelFcfs):
    name = "model-edf"

    def priority(self, p):
        return (p.deadline, p.arrival)


def _tightest_other(rule: Policy, model: str) -> float | None:
    """The tightest target (µs) of the other models served: a plan keeps a core for it."""
    return min((us for m, us in rule.targets_us.items() if m != model), default=None)


def _fastest(costs: dict[int, float]) -> int:
    return min(costs, key=lambda c: (costs[c], c))


def _planned(rule: "Block", item: int, costs: dict[int, list[float]], suffix: dict[int, list[float]],
             p: Pending, now: float, tightest_other_us: float | None = None) -> int:
    """Cores for `item` (a block or a call) by the block rule of the module doc, with
    `rule`'s settings; `costs[c][k]` is item k's µs on c cores, `suffix[c][k]` the sum
    from k to the end."""
    one = costs[1][item]
    if all(costs[c][item] > 0.9 * one for c in costs if c > 1):  # does not scale
        return 1
    counts = sorted(costs)
    total = counts[-1]
    # Keep one core free when holding all of them for this item would outlast another
    # model's whole target: a request of that model arriving meanwhile could only miss.
    if (rule.keep_core_for_tighter and total > 1 and tightest_other_us is not None
            and p.scale * costs[total][item] > tightest_other_us):
        counts = counts[:-1]
    budget_us = max(0.0, (p.deadline - now) * 1e6) * rule.slack
    for c in counts:
        if p.scale * suffix[c][item] <= budget_us:
            return c
    return _fastest({c: costs[c][item] for c in counts})


def _spare(rule: "Block", first: int, end: int, costs: dict, suffix: dict, p: Pending, held: int,
           available: int) -> int:
    """The fewest cores, of the `available` ones (the `held` and the free), within
    `rule.spare_tolerance` of the fastest time of items [first, end) -- but not every
    available core when the unit would outlast another model's target: a request of
    that model arriving meanwhile would find no core and wait for a block boundary
    (measured on 2 cores: squeezenet lent the transformer's core, and the transformer's
    share within 4x@1c fell from 0.97 to 0.83); and no more than `held` where that saves
    less than `rule.spare_min_gain_us`."""
    count = len(costs[1])

    def span(c: int) -> float:
        return suffix[c][first] - (suffix[c][end] if end < count else 0.0)

    def fastest(counts: list[int]) -> int:
        best = min(span(c) for c in counts)
        return min(c for c in counts if span(c) <= best * (1 + rule.spare_tolerance))

    counts = [c for c in sorted(costs) if c <= available] or [1]
    want = fastest(counts)
    tightest = _tightest_other(rule, p.model)
    if (rule.keep_core_for_tighter and want == available > 1 and tightest is not None
            and p.scale * span(want) > tightest):
        want = fastest(counts[:-1])
    if p.scale * (span(held) - span(want)) < rule.spare_min_gain_us:
        return held
    return want


def _unit(rule: "Block", first: int, costs: dict, suffix: dict, p: Pending, now: float) -> tuple[int, int]:
    """(cores wanted for item `first`, first item after the unit): the run of items
    wanting as many cores, and after it every following run that wants another count
    but is predicted to last less than `rule.absorb_us` on these cores."""
    count = len(costs[1])
    tightest = _tightest_other(rule, p.model)

    def run_end(start: int, cores: int) -> tuple[int, int | None]:
        """(first item after the run from `start` wanting `cores`, what that item wants)."""
        for end in range(start + 1, count):
            wants = _planned(rule, end, costs, suffix, p, now, tightest)
            if wants != cores:
                return end, wants
        return count, None

    want = _planned(rule, first, costs, suffix, p, now, tightest)
    end, next_want = run_end(first, want)
    row = suffix[want]
    while next_want is not None and rule.absorb_us > 0:
        after, following = run_end(end, next_want)
        if p.scale * (row[end] - (row[after] if after < count else 0.0)) >= rule.absorb_us:
            break
        end, next_want = after, following
    return want, end


class Block(Policy):
    name = "block"
    granularity = "block"
    preemptive = True
    waits_for_planned = False
    slack = SLACK
    keep_core_for_tighter = KEEP_CORE_FOR_TIGHTER
    absorb_us = ABSORB_US
    spare_cores = SPARE_CORES
    spare_tolerance = SPARE_TOLERANCE
    spare_min_gain_us = SPARE_MIN_GAIN_US

    def priority(self, p):
        return (p.deadline, p.arrival)

    def unit(self, p, now, total_cores):
        profile = p.profile
        costs, suffix = profile.cost_tables("block", total_cores)
        want, end = _unit(self, profile.block_of(p.reached), costs, suffix, p, now)
        return want, profile.blocks[end - 1].end

    def spare(self, p, end, total_cores, held, available):
        if not self.spare_cores:
            return held
        profile = p.profile
        costs, suffix = profile.cost_tables(self.granularity, total_cores)
        if self.granularity == "block":  # items are blocks: the unit's calls [reached, end) as blocks
            first, stop = profile.block_of(p.reached), profile.block_of(end - 1) + 1
        else:
            first, stop = p.reached, end
        return _spare(self, first, stop, costs, suffix, p, held, available)


class BlockAdaptive(Block):
    name = "block-adaptive"
    selector = "table"


class Layer(Block):
    name = "layer"
    granularity = "call"
    selector = "default"
    absorb_us = 0.0   # re-negotiated at every call, by definition

    def unit(self, p, now, total_cores):
        costs, suffix = p.profile.cost_tables("call", total_cores)
        return _unit(self, p.reached, costs, suffix, p, now)


POLICIES = {cls.name: cls for cls in (ModelFcfs, ModelEdf, Layer, Block, BlockAdaptive)}


def make_policy(name: str) -> Policy:
    try:
        return POLICIES[name]()
    except KeyError:
        from ..errors import BadInput

        raise BadInput(f"policy {name!r}: unknown (known: {', '.join(POLICIES)})") from None

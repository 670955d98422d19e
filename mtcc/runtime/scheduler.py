"""One scheduling step: which waiting units run now, on how many cores, and who must
yield.  Pure decisions over a policy and a core allocator, with no processes or
clocks of its own, so the server (real tenants) and the bench's simulator (measured
tables replayed on simulated cores) take exactly the same decisions.

    step = schedule(policy, allocator, waiting, now)
    for grant in step.grants: ...        # start each unit on grant.cores
    for unit in running: if must_yield(policy, unit.pending, step.best_blocked): ...
"""
from __future__ import annotations

from dataclasses import dataclass

from .policies import Pending, Policy


@dataclass
class Waiting:
    """A unit that could start now: a request's next calls, and who would hold its cores."""
    pending: Pending
    holder: object           # the allocator's key for the lane that would run it
    item: object = None      # the caller's own record (the server's Request, the simulator's)


@dataclass
class Grant:
    waiting: Waiting
    cores: list[int]
    want: int                # cores the policy planned; more than granted is a conflict
    end: int                 # one past the unit's last call
    stops: list[int]         # calls where the unit may stop early (when asked to yield)

    @property
    def conflict(self) -> bool:
        return len(self.cores) < self.want


@dataclass
class Step:
    grants: list[Grant]
    best_blocked: tuple | None   # priority of the best unit left waiting (None: nobody waits)


def default_lanes(cores: int, models: int) -> int:
    """Requests of one model that may run at once, by default: the cores shared out
    among the models (at least one).  One lane per model leaves a many-core server idle
    behind each model's queue -- measured on 16 cores, squeezenet's requests waited for
    each other while 14 cores were free -- and a lane costs only its own intermediate
    buffers and thread pool (the weights are shared)."""
    return max(1, int(cores) // max(1, int(models)))


def waiting_of(model: str, lanes: list, queue) -> list[Waiting]:
    """What one model has ready to run: each bound lane's next unit (a request whose
    unit ended), then queued requests on the free lanes, in queue order.  `lanes[k]` is
    the request bound to lane k or None; requests have `.pending` and `.running`.  Each
    Waiting's item is (request, lane index); its holder ("lane", model, k)."""
    out = [Waiting(r.pending, ("lane", model, k), (r, k)) for k, r in enumerate(lanes)
           if r is not None and not r.running]
    free = [k for k, r in enumerate(lanes) if r is None]
    out += [Waiting(r.pending, ("lane", model, k), (r, k)) for r, k in zip(list(queue), free)]
    return out


def schedule(policy: Policy, allocator, waiting: list[Waiting], now: float) -> Step:
    """Serve waiting units in the policy's priority order.  A unit gets the cores its
    policy wants, or -- where the policy does not wait for its planned cores -- what is
    free (a conflict); a non-preemptive policy stops at the first unit that must wait
    (arrival order means everyone behind it waits too)."""
    total = len(allocator.cores)
    grants, blocked = [], []
    for w in sorted(waiting, key=lambda w: policy.priority(w.pending)):
        want, end = policy.unit(w.pending, now, total)
        n = min(want, len(allocator.free))
        if n < 1 or (n < want and policy.waits_for_planned):
            blocked.append(w)
            if not policy.preemptive:
                break
            continue
        cores = allocator.grant(w.holder, n)
        stops = [s for s in policy.stops(w.pending) if w.pending.reached < s < end]
        grants.append(Grant(w, cores, want, end, stops))
    if not blocked:  # everyone has its planned cores: lend what is left (policies.spare)
        for g in grants:
            free = len(allocator.free)
            if free < 1:
                break
            held = len(g.cores)
            more = min(policy.spare(g.waiting.pending, g.end, total, held, held + free) - held, free)
            if more > 0:
                g.cores = g.cores + allocator.grant(g.waiting.holder, more)
    best = min((policy.priority(w.pending) for w in blocked), default=None) if policy.preemptive else None
    return Step(grants, best)


def must_yield(policy: Policy, running: Pending, best_blocked: tuple | None) -> bool:
    """Whether a running unit should stop at its next stop point for a waiting one."""
    return best_blocked is not None and policy.priority(running) > best_blocked

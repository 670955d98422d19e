"""Layer blocks: the call plan cut into a few runs of consecutive calls.

A block is the unit at which a multi-tenant runtime renegotiates cores and picks
variants (DESIGN.md, "Scheduling granularity"): finer than the whole model, coarser
than single layers.  Any call boundary of the plan is legal (every buffer lives in
the plan's preallocated memory, so a run can stop after any call and resume).

Rule (version 1, deliberately simple):

1. Every call gets an estimated cost: the latency of its task's default variant in
   the reference cell (the target's core count, no interference, "<C>c/none"); else
   the cell with the most cores at level "none"; else the tuner's time.  Calls of
   tasks with no number at all (untuned) get the mean cost of the calls that have
   one, so they neither vanish nor dominate.  All zero: every call costs 1.
2. The calls are cut into at most `max_blocks` blocks of about equal estimated
   latency: boundary k is the call boundary whose prefix cost is closest to
   k/B of the total (ties to the earlier boundary); coinciding boundaries merge,
   so a model with fewer calls than B gets one block per call at most.
3. Each block then carries its latency table: per cell ("<cores>c/<level>") the
   sum over its calls, for the cells every call of the block has, and its
   `scaling` (latency at 1 core / latency at the most cores, when both exist), the
   measured core demand a scheduler compares blocks by.

Cutting where the core demand changes (the paper's "similar core demand") needs
per-call tables at several core counts, which only characterized variants have;
`scaling` is recorded so a later rule can use it without changing the format.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

RULE = "equal-latency-share/1"
DEFAULT_MAX_BLOCKS = 8


def _cell(key: str) -> tuple[int, str]:
    cores, _, level = key.partition("/")
    try:
        return int(cores.rstrip("c")), level
    except ValueError:
        return 0, level


def reference_cost(table: Mapping[str, float] | None, cores: int, fallback: float | None = None) -> float | None:
    """A call's cost in µs from a latency table (see the module doc, rule 1)."""
    table = {k: float(v) for k, v in (table or {}).items() if isinstance(v, (int, float))}
    key = f"{int(cores)}c/none"
    if key in table:
        return table[key]
    alone = sorted((c, v) for k, v in table.items() for c, lvl in [_cell(k)] if lvl == "none")
    if alone:
        return alone[-1][1]
    return fallback


def cut(costs: Sequence[float], max_blocks: int = DEFAULT_MAX_BLOCKS) -> list[tuple[int, int]]:
    """[start, end) ranges covering range(len(costs)) in at most `max_blocks` blocks of
    about equal total cost."""
    n = len(costs)
    if n == 0:
        return []
    if max_blocks < 1:
        raise ValueError("max_blocks must be at least 1")
    costs = [max(0.0, float(c)) for c in costs]
    if sum(costs) <= 0:
        costs = [1.0] * n
    prefix = [0.0]
    for c in costs:
        prefix.append(prefix[-1] + c)
    total = prefix[-1]
    bounds = [0]
    for k in range(1, max_blocks):
        target = total * k / max_blocks
        best = min(range(1, n), key=lambda i: (abs(prefix[i] - target), i)) if n > 1 else n
        if bounds[-1] < best < n:
            bounds.append(best)
    bounds.append(n)
    return list(zip(bounds, bounds[1:]))


@dataclass
class CallCost:
    task: str
    table: dict            # latency table of the call's default variant (µs per cell)
    cost_us: float | None  # rule 1 before filling unknowns


def make_blocks(calls: Sequence[CallCost], cores: int, max_blocks: int = DEFAULT_MAX_BLOCKS) -> list[dict]:
    """The manifest's `blocks`: [{"index", "start", "end", "calls", "tasks",
    "est_us", "share", "latency_us", "scaling"}], start/end being call indices
    ([start, end))."""
    known = [c.cost_us for c in calls if c.cost_us is not None]
    fill = sum(known) / len(known) if known else 0.0
    costs = [c.cost_us if c.cost_us is not None else fill for c in calls]
    total = sum(costs) or 1.0
    blocks = []
    for k, (start, end) in enumerate(cut(costs, max_blocks)):
        members = calls[start:end]
        tasks: list[str] = []
        for c in members:
            if c.task not in tasks:
                tasks.append(c.task)
        common = set(members[0].table) if members else set()
        for c in members[1:]:
            common &= set(c.table)
        table = {key: round(sum(float(c.table[key]) for c in members), 3)
                 for key in sorted(common, key=lambda s: (_cell(s)[0], s))}
        alone = sorted((_cell(key)[0], v) for key, v in table.items() if _cell(key)[1] == "none")
        scaling = round(alone[0][1] / alone[-1][1], 3) if len(alone) > 1 and alone[0][0] == 1 and alone[-1][1] else None
        est = sum(costs[start:end])
        blocks.append({"index": k, "start": start, "end": end, "calls": end - start, "tasks": tasks,
                       "est_us": round(est, 3), "share": round(est / total, 4),
                       "latency_us": table, "scaling": scaling})
    return blocks

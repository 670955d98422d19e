"""Layer blocks: the call plan cut into runs of consecutive calls.

A block is the unit at which a multi-tenant runtime renegotiates cores and picks
variants (docs/method.md, "Scheduling granularity"): finer than the whole model,
coarser than single layers.  Any call boundary of the plan is legal (every buffer lives
in the plan's preallocated memory, so a run can stop after any call and resume).

Rule "core-demand/2" (the paper's "consecutive layers with similar core demand"):

1. Every call gets a cost: the latency of its task's default variant in the reference
   cell (the target's core count, no interference, "<C>c/none"); else the cell with the
   most cores at level "none"; else the tuner's time.  Calls with no number at all get
   the mean of those that have one.
2. Every call gets a core demand from its measured table: the most cores at which each
   step up in cores still made it at least cells.DEMAND_GAIN faster (1 when it was measured on
   one core only or does not scale).  A call without a table takes its neighbour's.
3. The plan is cut where the demand changes.  A block shorter than `min_block_us` is
   merged into its cheaper neighbour (a block boundary costs the runtime a few µs, so
   blocks of at least ~0.5 ms keep it within 2 %); then, while there are more than
   `max_blocks`, the cheapest adjacent pair is merged; then, while there are fewer, the
   longest block is split at its equal-cost point if both halves stay above the
   minimum -- boundaries are also where a waiting request can take over the cores.
4. Each block carries its latency table: per cell ("<cores>c/<level>") the sum over
   its calls, for the cells every call of the block has (a call with one cell, the
   tuner's time of a task too short to characterize, counts it in every cell); its
   `demand`; and its
   `scaling` (latency at 1 core / latency at the most cores).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from ..cells import cell_key, demand, parse_cell  # demand: rule 2

RULE = "core-demand/2"
DEFAULT_MAX_BLOCKS = 8
DEFAULT_MIN_BLOCK_US = 500.0


def reference_cost(table: Mapping[str, float] | None, cores: int, fallback: float | None = None) -> float | None:
    """A call's cost in µs from a latency table (see the module doc, rule 1)."""
    table = {k: float(v) for k, v in (table or {}).items() if isinstance(v, (int, float))}
    key = cell_key(cores, "none")
    if key in table:
        return table[key]
    alone = sorted((c, v) for k, v in table.items() for c, lvl in [parse_cell(k)] if lvl == "none")
    if alone:
        return alone[-1][1]
    return fallback


def cut_by_demand(costs: Sequence[float], demands: Sequence[int | None], *, min_block_us: float = DEFAULT_MIN_BLOCK_US,
                  max_blocks: int = DEFAULT_MAX_BLOCKS) -> list[tuple[int, int]]:
    """Rule 3: [start, end) ranges covering every call."""
    n = len(costs)
    if n == 0:
        return []
    if max_blocks < 1:
        raise ValueError("max_blocks must be at least 1")
    known = [d for d in demands if d is not None]
    filled, last = [], known[0] if known else 1
    for d in demands:  # a call without a table takes its neighbour's demand
        last = d if d is not None else last
        filled.append(last)
    runs = []  # [start, end, demand]
    for k, d in enumerate(filled):
        if runs and runs[-1][2] == d:
            runs[-1][1] = k + 1
        else:
            runs.append([k, k + 1, d])

    def cost(run) -> float:
        return sum(costs[run[0]:run[1]])

    def merge(i: int, j: int) -> None:  # j == i + 1; the costlier part's demand wins
        a, b = runs[i], runs[j]
        runs[i] = [a[0], b[1], a[2] if cost(a) >= cost(b) else b[2]]
        del runs[j]

    while len(runs) > 1:
        short = min(range(len(runs)), key=lambda i: (cost(runs[i]), i))
        if cost(runs[short]) >= min_block_us:
            break
        neighbours = [i for i in (short - 1, short + 1) if 0 <= i < len(runs)]
        other = min(neighbours, key=lambda i: (cost(runs[i]), i))
        merge(min(short, other), max(short, other))
    while len(runs) > max_blocks:
        pair = min(range(len(runs) - 1), key=lambda i: (cost(runs[i]) + cost(runs[i + 1]), i))
        merge(pair, pair + 1)
    while len(runs) < max_blocks:
        longest = max(range(len(runs)), key=lambda i: (cost(runs[i]), -i))
        start, end, d = runs[longest]
        if end - start < 2:
            break
        half = cost(runs[longest]) / 2
        acc, at = 0.0, start
        while at < end - 1 and acc + costs[at] <= half:
            acc += costs[at]
            at += 1
        at = max(at, start + 1)
        if min(sum(costs[start:at]), sum(costs[at:end])) < min_block_us:
            break
        runs[longest:longest + 1] = [[start, at, d], [at, end, d]]
    return [(r[0], r[1]) for r in runs]


def block_table(tables: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Rule 4: per cell, the sum over the calls, for the cells every call has.  A call with
    a single cell (a task too short to characterize: the tuner's one time, e.g. "2c/none")
    counts that time in every cell, or one 1 µs reshape would leave the block without a
    1-core table."""
    if not tables or not all(tables):
        return {}
    common = set.intersection(*([set(t) for t in tables if len(t) > 1] or [set(t) for t in tables]))

    def cell(table, key):
        return float(table[key] if key in table else next(iter(table.values())))  # key missing: one cell
    return {key: round(sum(cell(t, key) for t in tables), 3) for key in sorted(common, key=lambda s: (parse_cell(s)[0], s))}


@dataclass
class CallCost:
    task: str
    table: dict            # latency table of the call's default variant (µs per cell)
    cost_us: float | None  # rule 1 before filling unknowns


def make_blocks(calls: Sequence[CallCost], cores: int, max_blocks: int = DEFAULT_MAX_BLOCKS,
                min_block_us: float = DEFAULT_MIN_BLOCK_US) -> list[dict]:
    """The manifest's `blocks`: [{"index", "start", "end", "calls", "tasks", "est_us",
    "share", "latency_us", "demand", "scaling"}], start/end being call indices ([start, end))."""
    known = [c.cost_us for c in calls if c.cost_us is not None]
    fill = sum(known) / len(known) if known else 0.0
    costs = [c.cost_us if c.cost_us is not None else fill for c in calls]
    if sum(costs) <= 0:
        costs = [1.0] * len(calls)
    total = sum(costs)
    demands = [demand(c.table) for c in calls]
    blocks = []
    for k, (start, end) in enumerate(cut_by_demand(costs, demands, min_block_us=min_block_us,
                                                   max_blocks=max_blocks)):
        members = calls[start:end]
        tasks: list[str] = []
        for c in members:
            if c.task not in tasks:
                tasks.append(c.task)
        table = block_table([c.table for c in members])
        alone = sorted((parse_cell(key)[0], v) for key, v in table.items() if parse_cell(key)[1] == "none")
        scaling = round(alone[0][1] / alone[-1][1], 3) if len(alone) > 1 and alone[0][0] == 1 and alone[-1][1] else None
        est = sum(costs[start:end])
        blocks.append({"index": k, "start": start, "end": end, "calls": end - start, "tasks": tasks,
                       "est_us": round(est, 3), "share": round(est / total, 4), "latency_us": table,
                       "demand": demand(table) or max((d for d in demands[start:end] if d), default=1),
                       "scaling": scaling})
    return blocks

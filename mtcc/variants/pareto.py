"""The Pareto filter: which measured candidates of a task are worth keeping.

Every candidate has three costs, all lower-is-better:
  - latency alone,
  - latency under high interference pressure,
  - footprint: how much it slows a probe running beside it.
A candidate is kept when no other is at least as good on all three and better
on one.  The paper keeps at most five per task; past that cap we keep the three
extremes (best alone, best under pressure, lowest footprint) and fill the rest
by crowding distance, so the kept set still spans the trade-off.

Pure functions on plain data: candidates are dicts or objects with `id`,
`latency_alone`, `latency_pressure` and `footprint` (names configurable).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

OBJECTIVES = ("latency_alone", "latency_pressure", "footprint")


def _get(candidate: Any, name: str):
    return candidate[name] if isinstance(candidate, dict) else getattr(candidate, name)


def _costs(candidate: Any, objectives: Sequence[str]) -> tuple[float, ...]:
    costs = tuple(float(_get(candidate, o)) for o in objectives)
    if any(math.isnan(c) for c in costs):
        raise ValueError(f"candidate {_get(candidate, 'id')!r} has a NaN objective: {costs}")
    return costs


def _id_key(candidate: Any) -> tuple[str, str]:
    # Sort ids of mixed types deterministically: by type name, then by text.
    cid = _get(candidate, "id")
    return (type(cid).__name__, str(cid))


def dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """`a` is no worse than `b` everywhere and strictly better somewhere."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def non_dominated(candidates: Sequence[Any], objectives: Sequence[str] = OBJECTIVES) -> list:
    """All non-dominated candidates; of identical points only the one with the
    smallest id is kept.  Ordered by latency alone, then the other costs, then id."""
    # Identical points first, so that neither copy survives twice.
    unique: dict[tuple[float, ...], Any] = {}
    for c in sorted(candidates, key=_id_key):
        unique.setdefault(_costs(c, objectives), c)
    points = list(unique.items())
    kept = [(p, c) for p, c in points if not any(dominates(q, p) for q, _ in points)]
    kept.sort(key=lambda pc: (pc[0], _id_key(pc[1])))
    return [c for _, c in kept]


def crowding_distance(points: Sequence[tuple[float, ...]]) -> list[float]:
    """NSGA-II crowding distance: how isolated each point is along every objective
    (extremes get infinity).  A larger distance means a more distinct trade-off."""
    n = len(points)
    distance = [0.0] * n
    if n <= 2:
        return [math.inf] * n
    for k in range(len(points[0])):
        order = sorted(range(n), key=lambda i: (points[i][k], i))
        low, high = points[order[0]][k], points[order[-1]][k]
        distance[order[0]] = distance[order[-1]] = math.inf
        if high == low:
            continue
        for j in range(1, n - 1):
            distance[order[j]] += (points[order[j + 1]][k] - points[order[j - 1]][k]) / (high - low)
    return distance


def pareto_front(candidates: Sequence[Any], max_variants: int = 5,
                 objectives: Sequence[str] = OBJECTIVES) -> list:
    """The non-dominated candidates, at most `max_variants`, deterministic order
    (by latency alone, then the other objectives, then id).

    When the front is larger than the cap: the best candidate on each objective is
    always kept (ties broken by the other objectives, then id), and the remaining
    places go to the most isolated points by crowding distance (ties: by latency
    alone, then id)."""
    if max_variants < 1:
        raise ValueError("max_variants must be at least 1")
    front = non_dominated(candidates, objectives)
    if len(front) <= max_variants:
        return front
    points = [_costs(c, objectives) for c in front]
    chosen: list[int] = []
    for k in range(len(objectives)):
        best = min(range(len(front)),
                   key=lambda i: (points[i][k], points[i], _id_key(front[i])))
        if best not in chosen:
            chosen.append(best)
    chosen = chosen[:max_variants]
    distance = crowding_distance(points)
    rest = sorted((i for i in range(len(front)) if i not in chosen),
                  key=lambda i: (-distance[i], points[i], _id_key(front[i])))
    chosen += rest[:max_variants - len(chosen)]
    return [front[i] for i in sorted(chosen)]  # front is already in output order


def best_alone_differs_under_pressure(front: Sequence[Any],
                                      objectives: Sequence[str] = OBJECTIVES) -> bool:
    """True when the candidate fastest alone is not the fastest under pressure:
    the paper's second finding, per task.  Ties on a latency count as the same
    winner (no difference to act on)."""
    if not front:
        return False
    alone, pressure = objectives[0], objectives[1]
    best_alone_latency = min(float(_get(c, alone)) for c in front)
    best_pressure_latency = min(float(_get(c, pressure)) for c in front)
    # Is there a candidate that is best on both at once?
    return not any(float(_get(c, alone)) == best_alone_latency
                   and float(_get(c, pressure)) == best_pressure_latency for c in front)

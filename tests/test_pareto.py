"""The Pareto filter on hand-made tables (pure functions, no measuring)."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from mtcc.variants.pareto import (best_alone_differs_under_pressure, crowding_distance, dominates,
                         non_dominated, pareto_front)


def table(rows):
    """rows: (id, latency alone, latency under pressure, footprint)."""
    return [{"id": i, "latency_alone": a, "latency_pressure": p, "footprint": f} for i, a, p, f in rows]


def ids(front):
    return [c["id"] for c in front]


def test_dominated_points_are_dropped():
    cands = table([
        ("fast-alone", 10, 30, 1.30),
        ("robust", 12, 15, 1.10),
        ("gentle", 20, 22, 1.01),
        ("worse-than-robust", 13, 16, 1.20),   # dominated by robust
        ("worse-everywhere", 25, 35, 1.40),     # dominated by all three
    ])
    assert ids(pareto_front(cands)) == ["fast-alone", "robust", "gentle"]


def test_equal_on_one_objective_still_dominated():
    # b ties a on two objectives and is worse on the third.
    cands = table([("a", 10, 20, 1.1), ("b", 10, 20, 1.2)])
    assert ids(pareto_front(cands)) == ["a"]


def test_identical_points_keep_one_by_smallest_id():
    cands = table([("v3", 10, 20, 1.1), ("v1", 10, 20, 1.1), ("v2", 10, 20, 1.1), ("x", 30, 10, 1.5)])
    assert ids(pareto_front(cands)) == ["v1", "x"]
    # and the choice does not depend on input order
    assert ids(pareto_front(list(reversed(cands)))) == ["v1", "x"]


def test_single_candidate_returns_itself():
    only = table([("only", 5, 9, 1.2)])
    assert pareto_front(only) == only
    assert best_alone_differs_under_pressure(only) is False


def test_empty():
    assert pareto_front([]) == []
    assert best_alone_differs_under_pressure([]) is False


def test_order_is_deterministic_whatever_the_input_order():
    cands = table([("a", 10, 30, 1.3), ("b", 12, 15, 1.1), ("c", 20, 22, 1.0), ("d", 11, 25, 1.2)])
    expected = ids(pareto_front(cands))
    assert expected == ["a", "d", "b", "c"]  # by latency alone
    for shift in range(1, 4):
        assert ids(pareto_front(cands[shift:] + cands[:shift])) == expected


def _big_front():
    # 9 mutually non-dominated points: latency alone up, pressure latency down, footprint mixed.
    rows = [(f"v{i}", 10 + i, 30 - 2 * i, 1.0 + 0.05 * ((i * 7) % 9)) for i in range(9)]
    return table(rows)


def test_cap_keeps_the_extremes():
    cands = _big_front()
    assert len(non_dominated(cands)) == 9
    kept = pareto_front(cands, max_variants=5)
    assert len(kept) == 5
    best_alone = min(cands, key=lambda c: c["latency_alone"])["id"]
    best_pressure = min(cands, key=lambda c: c["latency_pressure"])["id"]
    lowest_footprint = min(cands, key=lambda c: c["footprint"])["id"]
    assert {best_alone, best_pressure, lowest_footprint} <= set(ids(kept))
    assert [c["latency_alone"] for c in kept] == sorted(c["latency_alone"] for c in kept)
    # deterministic
    assert ids(pareto_front(list(reversed(cands)), max_variants=5)) == ids(kept)


def test_cap_smaller_than_the_number_of_extremes():
    kept = pareto_front(_big_front(), max_variants=1)
    assert ids(kept) == ["v0"]  # best alone comes first


def test_cap_fills_by_spread_not_by_position():
    # Points along a line; three extremes are v0 (alone), v8 (pressure), and the lowest footprint.
    rows = [(f"v{i}", 10 + i, 30 - i, 1.0 + 0.01 * (i != 4)) for i in range(9)]
    kept = ids(pareto_front(table(rows), max_variants=4))
    assert kept[0] == "v0" and "v8" in kept and "v4" in kept and len(kept) == 4


def test_dataclass_candidates_and_custom_objectives():
    @dataclass
    class Cand:
        id: str
        latency_alone: float
        latency_pressure: float
        footprint: float

    cands = [Cand("a", 1, 3, 1.0), Cand("b", 2, 2, 1.0), Cand("c", 2, 3, 1.0)]
    assert [c.id for c in pareto_front(cands)] == ["a", "b"]
    assert [c.id for c in pareto_front(cands, objectives=("latency_alone",))] == ["a"]


def test_nan_is_refused():
    with pytest.raises(ValueError, match="NaN"):
        pareto_front(table([("a", float("nan"), 1, 1)]))


def test_bad_cap():
    with pytest.raises(ValueError):
        pareto_front(table([("a", 1, 1, 1)]), max_variants=0)


def test_best_alone_differs_under_pressure():
    differs = table([("fast-alone", 10, 30, 1.3), ("robust", 12, 15, 1.1)])
    assert best_alone_differs_under_pressure(differs) is True
    same = table([("both", 10, 15, 1.3), ("gentle", 12, 18, 1.0)])
    assert best_alone_differs_under_pressure(same) is False
    # tie for best alone where one of the tied is also best under pressure: no difference
    tie = table([("a", 10, 20, 1.0), ("b", 10, 15, 1.2), ("c", 11, 15, 0.9)])
    assert best_alone_differs_under_pressure(tie) is False


def test_helpers():
    assert dominates((1, 1, 1), (1, 2, 1)) and not dominates((1, 1, 1), (1, 1, 1))
    assert not dominates((1, 3, 1), (2, 2, 1))
    d = crowding_distance([(1, 3), (2, 2), (3, 1)])
    assert d[0] == d[2] == float("inf") and d[1] == 2.0

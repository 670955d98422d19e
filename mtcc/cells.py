"""Names of latency-table cells: "<cores>c/<level>", e.g. "1c/none", "2c/high".

One definition for every stage that reads or writes a table (characterization,
variants.json, a bundle's selector and blocks)."""
from __future__ import annotations

LEVEL_ORDER = ("none", "low", "mid", "high")
DEMAND_GAIN = 1.15  # a step up in cores that gains less than this is not worth the cores


def cell_key(cores: int, level: str) -> str:
    """Name of a latency-table cell: "2c/none", "1c/high"."""
    return f"{int(cores)}c/{level}"


def parse_cell(key: str) -> tuple[int, str]:
    """("2c/high") -> (2, "high"); a malformed core count reads as 0 (sorts first)."""
    cores, _, level = key.partition("/")
    try:
        return int(cores.rstrip("c")), level
    except ValueError:
        return 0, level


def cell_order(key: str) -> tuple[int, int]:
    """Sort key: by cores, then by level from none to high."""
    cores, level = parse_cell(key)
    return cores, LEVEL_ORDER.index(level) if level in LEVEL_ORDER else len(LEVEL_ORDER)


def default_core_counts(n: int) -> list[int]:
    """1, 2, 4, ... up to n, and n itself."""
    counts, c = [], 1
    while c < n:
        counts.append(c)
        c *= 2
    return counts + [n]



def demand(table: dict | None) -> int | None:
    """The cores a call (or task) can use, from its level-"none" cells: the most cores at
    which each step up still made it at least DEMAND_GAIN faster (None: no table).
    The block rule cuts where it changes; `mtcc inspect` flags tasks where it is 1."""
    alone = sorted((c, float(v)) for k, v in (table or {}).items() if isinstance(v, (int, float))
                   for c, lvl in [parse_cell(k)] if lvl == "none" and v > 0)
    if not alone:
        return None
    best = alone[0][0]
    for (c0, t0), (c1, t1) in zip(alone, alone[1:]):
        if t0 / t1 < DEMAND_GAIN:
            break
        best = c1
    return best


def best_cells(tables) -> dict[str, float]:
    """Per cell, the lowest latency over several tables (a task's variants): what the
    task can do at each core count and level when the selector picks for that cell."""
    best: dict[str, float] = {}
    for table in tables:
        for key, value in (table or {}).items():
            if isinstance(value, (int, float)) and value > 0 and (key not in best or value < best[key]):
                best[key] = float(value)
    return dict(sorted(best.items(), key=lambda kv: cell_order(kv[0])))

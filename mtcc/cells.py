"""Names of latency-table cells: "<cores>c/<level>", e.g. "1c/none", "2c/high".

One definition for every stage that reads or writes a table (characterization,
variants.json, a bundle's selector and blocks)."""
from __future__ import annotations

LEVEL_ORDER = ("none", "low", "mid", "high")


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


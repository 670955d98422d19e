"""The Pareto filter: from characterization.json to variants.json (see mtcc.variants)."""
from __future__ import annotations

import math
import statistics
from pathlib import Path

from ..errors import BadInput
from ..files import atomic_write_json, read_json
from ..tune.database import RECORDS
from ..cells import LEVEL_ORDER, cell_key, cell_order
from .store import CHARACTERIZATION, load_characterization

VARIANTS_FORMAT = "mtcc-variants/1"
VARIANTS = "variants.json"


def objective_cells(characterization: dict) -> dict:
    """Which cells the objectives read (see the module doc): {"alone", "pressure",
    "alone_max_cores" (or None), "pressure_level", "pressure_cores"}."""
    counts = sorted(characterization["core_counts"])
    levels = [lv for lv in LEVEL_ORDER if lv in characterization["levels"]]
    machine_cores = len(characterization.get("machine", {}).get("cores") or [counts[-1]])
    top = levels[-1] if levels else "none"
    if top == "none":
        p = counts[-1]
    else:
        measurable = [n for n in counts if n < machine_cores]
        p = measurable[-1] if measurable else counts[-1]
        if not measurable:
            top = "none"
    return {"alone": cell_key(p, "none"), "pressure": cell_key(p, top),
            "alone_max_cores": cell_key(counts[-1], "none") if counts[-1] != p else None,
            "pressure_level": top, "pressure_cores": p}


# Candidates are timed one after another, minutes apart on a shared machine: two cells
# closer than this are one speed, whatever their own spreads say.
MIN_RELATIVE_ERROR = 0.02
# Footprints are medians of a few probe ratios: a neighbour notices 5 %, not 1 %.
FOOTPRINT_STEP = 0.05


def _half_iqr(samples) -> float:
    if not samples or len(samples) < 4:
        return 0.0
    q1, _, q3 = statistics.quantiles(samples, n=4)
    return (q3 - q1) / 2


def latency_table(cand: dict) -> dict[str, float]:
    return {k: v["us"] for k, v in cand.get("cells", {}).items() if isinstance(v, dict) and "us" in v}


def error_table(cand: dict) -> dict[str, float]:
    """Per cell, the error bar of its time (µs): half the interquartile range of the
    cell's samples, at least MIN_RELATIVE_ERROR of the time."""
    return {k: round(max(_half_iqr(v.get("samples_us")), MIN_RELATIVE_ERROR * v["us"]), 4)
            for k, v in cand.get("cells", {}).items() if isinstance(v, dict) and "us" in v}


def footprint_error(cand: dict) -> float:
    """The error bar of a footprint: half the interquartile range of its probe ratios,
    at least FOOTPRINT_STEP."""
    return max(_half_iqr((cand.get("footprint") or {}).get("ratios")), FOOTPRINT_STEP)


def beats_in(row: dict, other: dict) -> list[str]:
    """The latency cells in which `row` is faster than `other` by more than the two
    measurements' errors together."""
    out = []
    for cell, us in row["table"].items():
        theirs = other["table"].get(cell)
        if theirs is None:
            continue
        margin = math.hypot(row["errors"].get(cell, 0.0), other["errors"].get(cell, 0.0))
        if us < theirs - margin:
            out.append(cell)
    return out


def beats(row: dict, other: dict) -> bool:
    """`row` is faster than `other` in some latency cell, or lighter on a neighbour, by
    more than the two measurements' errors together."""
    if beats_in(row, other):
        return True
    margin = math.hypot(footprint_error(row["cand"]), footprint_error(other["cand"]))
    return row["footprint"] < other["footprint"] - margin


def apply_confirmations(task: dict, rows: list[dict]) -> None:
    """Where a pair timed in turns (variants.confirm) tested a row's cell against another
    candidate, the row's cell becomes that candidate's cell x the pair's median ratio,
    its error the ratios' half interquartile range (at least MIN_RELATIVE_ERROR) of it:
    the comparison the selector makes, measured as one.  That candidate's cell is itself
    read through its own pair where it has one (a chain, after a default changed)."""
    raw = {c["id"]: latency_table(c) for c in task["candidates"]}
    pairs = {c["id"]: c.get("confirmed") or {} for c in task["candidates"]}

    def corrected(cid: str, cell: str, seen: tuple = ()) -> float | None:
        # a pair against a candidate that was itself timed as a pair against a third (a
        # default that changed: faster_by_pairs) reads through to that one's cell
        pair = pairs.get(cid, {}).get(cell)
        if pair and pair.get("against") in raw and pair["against"] not in seen:
            base = corrected(pair["against"], cell, seen + (cid,))
            if base is not None:
                return base * pair["ratio"]
        return raw.get(cid, {}).get(cell)

    for row in rows:
        row["confirmed"] = {}
        for cell, pair in (row["cand"].get("confirmed") or {}).items():
            base = corrected(pair.get("against"), cell, (row["id"],))
            if base is None or cell not in row["table"]:
                continue
            spread = max(_half_iqr(pair["ratios"]), MIN_RELATIVE_ERROR * pair["ratio"])
            row["table"][cell] = round(base * pair["ratio"], 4)
            row["errors"][cell] = round(base * spread, 4)
            row["confirmed"][cell] = {"against": pair["against"], "ratio": pair["ratio"],
                                      "error": round(spread, 4), "rounds": len(pair["ratios"])}


def worth_keeping(front: list[dict], reference: dict) -> list[dict]:
    """The reference (the variant that runs by default) and those of the front that beat
    every variant kept before them (beats), biggest gain over the reference first: a
    variant whose only edge is within the error is never switched to for nothing."""
    def best_gain(row) -> float:
        gains = [1 - us / reference["table"][c] for c, us in row["table"].items() if reference["table"].get(c)]
        return max(gains, default=0.0)

    kept = [reference]
    for row in sorted((r for r in front if r is not reference), key=lambda r: (-best_gain(r), r["id"])):
        if all(beats(row, k) for k in kept):
            kept.append(row)
    return [r for r in front if any(r is k for k in kept)]  # the front's order


def faster_alone_everywhere(front: list[dict], reference: dict, cells: dict) -> dict:
    """The reference, unless a row of the front is faster than it alone at every core
    count measured (the "alone" and "alone_max_cores" cells), each cell shown by a pair
    timed in turns against it (variants.confirm) beyond the pair's error: then the
    fastest of those alone.  The tuner's best can stay on the front by a lighter footprint
    alone (inception_v1: `NCHWc44`'s rank 0 ran 65 / 35 µs on 1 / 2 cores, a kept 1-thread
    record 0.43 / 0.50 of it as pairs), and the default is what runs wherever no pressure
    is predicted -- the Relax VM always.  A table alone never moves it: its cells are
    timed minutes apart."""
    alone = [c for c in (cells["alone"], cells["alone_max_cores"]) if c]

    def shown_faster(row) -> bool:
        pairs = row["cand"].get("confirmed") or {}
        return (all((pairs.get(c) or {}).get("against") == reference["id"] for c in alone)
                and set(alone) <= set(beats_in(row, reference)))

    better = [r for r in front if r is not reference and shown_faster(r)]
    if not better:
        return reference
    return min(better, key=lambda r: (r["table"][cells["alone"]], r["id"]))


def faster_by_pairs(rows: list[dict], start: dict, cell: str) -> dict:
    """From `start` (a task's cold search's best), the row its pairs at `cell` lead to:
    while a pair against the current row (variants.confirm, read by apply_confirmations)
    shows another faster by more than the pair's error, the fastest of those.  The cold
    search times each candidate in single calls and ranks schedules within a few per cent
    of each other as one (resnet50, 2026-11-27: two records at 2960 and 2953 us there were
    0.73 of each other as a pair, and in the model)."""
    current, seen = start, {start["id"]}
    while True:
        better = [(pair["ratio"], row["id"], row) for row in rows if row["id"] not in seen
                  for pair in [row.get("confirmed", {}).get(cell)]
                  if pair and pair["against"] == current["id"] and pair["ratio"] < 1 - pair["error"]]
        if not better:
            return current
        current = min(better, key=lambda b: b[:2])[2]
        seen.add(current["id"])


def default_records(schedules_dir, lines=None) -> dict[int, int]:
    """{workload: record} of every task's default in a folder's variants.json, for the
    copy of the database MetaSchedule applies (tune.database.applying_copy): every task
    compiles from its default, so the Relax VM and mtcc.compile run what the bundle's call
    plan runs.  Before, only a task searched cold did: inception_v1's Relax VM ran, in 15
    tasks, the record with the fastest tuning time at any thread count, and read 1.04x its
    call plan on 1 and 2 threads.  Empty without a variants.json.  `lines`: the folder's
    DatabaseLines, to find a record whose line moved."""
    from ..tune.database import DatabaseLines

    path = Path(schedules_dir) / VARIANTS
    if not path.is_file():
        return {}
    lines = lines or DatabaseLines(schedules_dir)
    out = {}
    for task in load_variants(path).get("tasks", []):
        default = next((v for v in task.get("variants", []) if v["id"] == task.get("default")), None)
        try:
            out[int(default["trace"]["workload"])] = lines.resolve(default["trace"])
        except (KeyError, TypeError, BadInput):
            continue  # no default, or a stale variants.json: the search's best applies
    return out


def footprint_objective(ratio) -> float:
    """A neighbour cannot make the probe faster: ratios below 1 are noise and read as 1.
    Two decimals: differences under 1 % are within any machine's noise and must not
    keep a variant on their own.  Unmeasured (one core) reads as 1."""
    return 1.0 if ratio is None else round(max(1.0, float(ratio)), 2)


def target_cores_of(target: str) -> int:
    import re

    found = re.search(r"num-cores[=\"': ]+(\d+)", str(target))
    return int(found.group(1)) if found else 1


def select_variants(characterization, max_variants: int = 5, *, out=None, write: bool = True) -> dict:
    """The Pareto set of every task (see the module doc), as variants.json's dict;
    written to `out` (a folder or file; default: beside the characterization file when
    one was given) when `write`."""
    from .pareto import best_alone_differs_under_pressure, pareto_front

    char = load_characterization(characterization)
    if out is None and not isinstance(characterization, dict):
        path = Path(characterization)
        out = path if path.is_dir() else path.parent
    if write and out is None:
        raise BadInput("select_variants: give `out` (the schedules folder) for a characterization dict")
    cells = objective_cells(char)
    objectives = ["latency_alone", "latency_pressure", "footprint"]
    if cells["alone_max_cores"]:
        objectives.append("latency_alone_max_cores")
    tasks_out = []
    for task in char["tasks"]:
        rows = []
        for cand in task["candidates"]:
            table = latency_table(cand)
            fp = cand.get("footprint") or {}
            row = {"id": cand["id"], "cand": cand, "table": table, "errors": error_table(cand),
                   "latency_alone": table.get(cells["alone"]),
                   "latency_pressure": table.get(cells["pressure"]),
                   "footprint": footprint_objective(fp.get("ratio")),
                   "latency_alone_max_cores": table.get(cells["alone_max_cores"]) if cells["alone_max_cores"] else None}
            if all(row[o] is not None for o in objectives):
                rows.append(row)
        apply_confirmations(task, rows)
        for row in rows:  # the objectives read the confirmed cells
            row["latency_alone"] = row["table"].get(cells["alone"])
            row["latency_pressure"] = row["table"].get(cells["pressure"])
            if cells["alone_max_cores"]:
                row["latency_alone_max_cores"] = row["table"].get(cells["alone_max_cores"])
        entry = {"name": task["name"], "count": task.get("count", 1)}
        if task.get("note"):  # e.g. a task searched with cold caches
            entry["note"] = task["note"]
        if rows and not task.get("skipped"):
            front = pareto_front(rows, max_variants, objectives)
            # The packer runs the tuner's best (rank 0) by default where it is kept.
            reference = next((r for r in front if r["cand"].get("rank") == 0), front[0])
            if any(c.get("searched") == "cold" for c in task["candidates"]):
                # A task searched cold runs by default what its pairs, timed as that search
                # timed, show fastest alone -- never what the hot tables rank first: they time
                # the hot search's candidates the way those win.
                reference = faster_by_pairs(rows, next((r for r in rows if r["cand"].get("rank") == 0), reference),
                                            cells["alone"])
                front = [reference] + [r for r in front if r is not reference]
            else:
                reference = faster_alone_everywhere(front, reference, cells)
            front = worth_keeping(front, reference)
            differs = best_alone_differs_under_pressure(front, objectives)
            entry.update(measured=True, candidates_measured=len(rows), default=reference["id"])
        else:
            # Too short to matter, not tuned, or nothing measured: the tuner's best, as is.
            front = [{"id": c["id"], "cand": c, "table": latency_table(c),
                      "footprint": footprint_objective((c.get("footprint") or {}).get("ratio"))}
                     for c in task["candidates"][:1]]
            differs = False
            entry.update(measured=False, candidates_measured=len(rows), default=front[0]["id"] if front else None,
                         reason=task.get("skipped") or "no candidate has every objective measured")
        variants = []
        source = "characterization"
        for row in front:
            cand = row["cand"]
            latency = dict(sorted(row["table"].items(), key=lambda kv: cell_order(kv[0])))
            if not latency and cand.get("tuned_us") is not None:
                # A task left out of characterization: the tuner's own measurement, made on
                # the threads its run used (else the target's cores) on a quiet core set
                # (labelled latency_source).
                threads = cand.get("tuned_threads") or target_cores_of(char["target"])
                latency = {cell_key(threads, "none"): cand["tuned_us"]}
                source = "tuning"
            variants.append({
                "id": cand["id"],
                "trace": {"database": RECORDS, "workload": task["workload"], "record": cand["record"],
                          "sha256": cand["sha256"]},
                "latency_us": latency,
                "latency_error_us": dict(sorted(row.get("errors", {}).items(), key=lambda kv: cell_order(kv[0]))),
                # cells a pair timed in turns against the default set (variants.confirm)
                "latency_confirmed": dict(sorted(row.get("confirmed", {}).items(), key=lambda kv: cell_order(kv[0]))),
                "footprint": row.get("footprint", 1.0),
                "footprint_measured": (cand.get("footprint") or {}).get("ratio"),
                "tuned_us": cand.get("tuned_us"),
            })
        entry["variants"] = variants
        entry["best_alone_differs_under_pressure"] = bool(differs)
        if not entry["measured"] and variants:
            entry["latency_source"] = source
        tasks_out.append(entry)
    result = {
        "format": VARIANTS_FORMAT,
        "model": char["model"], "target": char["target"],
        "objectives": {"names": objectives, "cells": cells,
                       "rule": "non-dominated over the objectives, at most max_variants, "
                               "best on every objective always kept (mtcc.variants.pareto.pareto_front); "
                               "then only those faster than every variant kept before them in some cell "
                               "by more than the cells' errors, or in footprint by more than the footprints' errors "
                               "(mtcc.variants.select.worth_keeping); a cell in which a variant beat the default "
                               "is read as the default's cell x the ratio of the two timed in turns "
                               "(mtcc.variants.confirm; latency_confirmed)",
                       "min_relative_error": MIN_RELATIVE_ERROR, "footprint_step": FOOTPRINT_STEP},
        "max_variants": max_variants,
        "core_counts": char["core_counts"], "levels": char["levels"],
        "calibration": {k: char["calibration"].get(k) for k in ("source", "fingerprint", "usable", "verdict")},
        "characterization": CHARACTERIZATION,
        "tasks": tasks_out,
    }
    if write:
        dest = Path(out)
        if dest.is_dir():
            dest = dest / VARIANTS
        atomic_write_json(dest, result)
    return result


def load_variants(schedules_dir) -> dict:
    path = Path(schedules_dir)
    path = path / VARIANTS if path.is_dir() else path
    data = read_json(path, "variants file", "run `mtcc tune MODEL --out DIR --stage characterize` first")
    if not isinstance(data, dict) or "tasks" not in data:
        raise BadInput(f"{path}: not an mtcc variants file")
    return data


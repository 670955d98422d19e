"""Confirmation: every cell in which the tables say a kept variant beats its task's
default, timed again as a pair -- the default and the variant in turns, round by round,
under that cell's cores and level -- before the selection believes it.

Why: characterization times candidates one after another, seconds to minutes apart,
and a shared host drifts by more than the gains in between (resnet50 at 1 core: two
candidates alike alone, r1441 and r1442, read 1.44x and 1.00x their none cells under
`high` in one pass).  A pair timed in turns sees the same drift and the same stressor
phase, so their ratio is the comparison the selector makes.  On the committed
examples (2026-11-27, a Zen 4 VM) 72 of 168 claims did not hold as pairs; under
resnet50's `1c/high` 9 of 11.

The ratios land in characterization.json beside the cells they test (a candidate's
"confirmed": {cell: {"against": default id, "ratios": [...], "ratio": median}}); the
selection (select.apply_confirmations) then reads the variant's cell as the default's
cell x that ratio, with the ratios' spread as its error: a claim that does not hold as
a pair is no longer a claim, and the runtime's selector reads the same corrected table.

A task searched with cold caches (`mtcc tune --cold-caches`) times its pairs the way that
search timed: every operand but the input flushed before each call.  Its hot-searched
candidates beat the cold ones in the hot tables for the caches' sake, and are kept only
where they win flushed; its default starts at the cold search's best and moves to what
its pairs show fastest alone (select.faster_by_pairs), whose claims are then timed in
the next pass.
"""
from __future__ import annotations

import statistics
import time

from ..cells import LEVEL_ORDER, parse_cell
from ..progress import Progress, say
from .worker import BUILD_TIMEOUT_S, TIME_TIMEOUT_S, WorkerError

CONFIRM_ROUNDS = 10   # pairs per claim: ~1-2 s a claim at 20 ms a sample
MAX_PASSES = 3        # a refuted claim can let another variant into the selection: confirm it too


def open_claims(char: dict, max_variants: int, only=None) -> list[tuple[dict, dict, dict, str]]:
    """(task, default candidate, variant candidate, cell) for every cell in which a
    variant the selection keeps beats its task's default by more than the two cells'
    errors, and that no pair has timed yet; of the tasks named in `only` (default all)."""
    from .select import beats_in, select_variants

    selection = select_variants(char, max_variants, write=False)
    by_task = {t["name"]: t for t in char["tasks"]}
    out = []
    for entry in selection["tasks"]:
        default_id = entry.get("default")
        if not entry.get("measured") or len(entry["variants"]) < 2 or default_id is None:
            continue
        if only is not None and entry["name"] not in only:
            continue
        task = by_task[entry["name"]]
        cands = {c["id"]: c for c in task["candidates"]}
        rows = {v["id"]: {"table": v["latency_us"], "errors": v["latency_error_us"]} for v in entry["variants"]}
        for variant in entry["variants"]:
            if variant["id"] == default_id:
                continue
            done = cands[variant["id"]].get("confirmed", {})
            for cell in beats_in(rows[variant["id"]], rows[default_id]):
                if (done.get(cell) or {}).get("against") != default_id:
                    out.append((task, cands[default_id], cands[variant["id"]], cell))
    return out


def time_pair(session, key_a: str, key_b: str, level: str, rounds: int, min_repeat_ms: float,
              flush_bytes: int = 0, flush_operands: bool = False) -> list[float]:
    """b/a per round: a and b in turns -- which goes first alternates -- the level's
    stressor resumed for both and paused between rounds.  `flush_operands`: each call
    timed with its operands but the first flushed (as `mtcc tune --cold-caches` times)."""
    stressor = session.stressors.get(level)
    ratios = []
    for r in range(rounds):
        order = (key_a, key_b) if r % 2 == 0 else (key_b, key_a)
        got = {}
        if stressor is not None:
            stressor.resume()
        try:
            for key in order:
                got[key] = session.worker.request(TIME_TIMEOUT_S, cmd="time", key=key, repeat=2,
                                                  min_repeat_ms=min_repeat_ms, flush_bytes=flush_bytes,
                                                  flush_operands=flush_operands)["samples_us"]
        finally:
            if stressor is not None:
                stressor.pause()
        a, b = min(got[key_a]), min(got[key_b])  # each the lower of its two: robust_time's rule for 2
        ratios.append(round(b / a, 4))
    return ratios


def confirm_claims(char: dict, db, cal: dict, cores: list[int], *, max_variants: int, rounds: int = CONFIRM_ROUNDS,
                   min_repeat_ms: float, flush_bytes: int, stressor_cores: int | None, save,
                   only=None, progress: Progress = None) -> int:
    """Time every open claim as a pair (see the module doc), in passes until none is
    open; writes each ratio into `char` and calls `save` after each.  Returns the
    number of claims timed."""
    from .characterize import MeasuringSession

    timed = 0
    for _ in range(MAX_PASSES):
        claims = open_claims(char, max_variants, only)
        if not claims:
            break
        by_cores: dict[int, list] = {}
        for claim in claims:
            by_cores.setdefault(parse_cell(claim[3])[0], []).append(claim)
        for n, group in sorted(by_cores.items()):
            levels = sorted({parse_cell(c[3])[1] for c in group}, key=LEVEL_ORDER.index)
            say(progress, f"confirming {len(group)} claim(s) on {n} core(s) as pairs of {rounds} rounds")
            with MeasuringSession(cal, cores, n, levels, stressor_cores, with_probe=False) as session:
                for done, (task, default, variant, cell) in enumerate(group):
                    keys = {c["id"]: f"{task['name']}/{c['id']}" for c in (default, variant)}
                    # A task searched cold is compared the way it was searched (operands flushed):
                    # its hot-searched candidates' hot cells beat its cold default for the caches'
                    # sake alone.
                    cold = task["workload"] in db.cold_workloads
                    started = time.perf_counter()
                    try:
                        for cand in (default, variant):
                            session.worker.request(BUILD_TIMEOUT_S, cmd="build", key=keys[cand["id"]],
                                                   job=db.job(cand["record"]))
                        ratios = time_pair(session, keys[default["id"]], keys[variant["id"]], parse_cell(cell)[1],
                                           rounds, min_repeat_ms, flush_bytes=0 if cold else flush_bytes,
                                           flush_operands=cold)
                    except WorkerError as e:
                        say(progress, f"{task['name']}/{variant['id']} at {cell}: {e} (the claim stays unconfirmed)")
                        continue
                    finally:
                        for key in keys.values():
                            try:
                                session.worker.request(30, cmd="drop", key=key)
                            except WorkerError:
                                pass
                    ratio = statistics.median(ratios)
                    variant.setdefault("confirmed", {})[cell] = {
                        "against": default["id"], "ratio": round(ratio, 4), "ratios": ratios,
                        "caches": "operands flushed" if cold else ("cold" if flush_bytes else "hot"),
                        "wall_s": round(time.perf_counter() - started, 2)}
                    timed += 1
                    table = variant["cells"][cell]["us"] / default["cells"][cell]["us"]
                    say(progress, f"[{done + 1}/{len(group)}] {task['name']}: {variant['id']} / {default['id']} "
                                  f"at {cell}: tables {table:.3f}, as a pair {ratio:.3f}")
                    save()
    return timed

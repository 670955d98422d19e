"""Characterization: the top-K candidates of every task timed at every core count x
interference level, into characterization.json (see mtcc.variants for the method).

Split by concern:
    plan_cells         which (candidate, cores, level) cells a run must measure
    MeasuringSession   one core count: a warm worker on those cores, the levels'
                       stressors on the free cores (paused between samples), the probe
    store (module)     load, carry over, atomic save of the file
"""
from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Iterable, Sequence

import psutil

from ..errors import BadInput
from ..files import atomic_write_json
from ..interference.lookup import calibration_fingerprint, calibration_summary, resolve_calibration
from ..interference.probes import robust_time
from ..progress import Progress, say
from ..tune.database import DatabaseLines, import_options
from ..cells import LEVEL_ORDER, cell_key, default_core_counts
from .store import CACHE_METHODS, CHARACTERIZATION, DEFAULT_CACHES, FORMAT, load_previous, merge_previous
from .confirm import CONFIRM_ROUNDS, confirm_claims
from .worker import BUILD_TIMEOUT_S, TIME_TIMEOUT_S, MeasuringWorker, WorkerError, cold_flush_bytes

DEFAULT_MIN_TASK_US = 3.0


def model_tasks(model_path, db: DatabaseLines, input_shapes=None, progress: Progress = None) -> tuple[str, str, list[dict]]:
    """(model name, target description, tasks) where each task is {"name", "count",
    "workload"}: the model's tasks (as `mtcc tune` extracted them, with the target and
    layout recorded in tune.json) matched to the database's workloads.  Without a
    model: one task per workload."""
    if model_path is None:
        target = db.meta.get("target") or json.dumps(db.record_target())
        return db.meta.get("model", db.dir.parent.name), target, [
            {"name": f"workload_{i}", "count": 1, "workload": i}
            for i, line in enumerate(db.workloads) if line is not None]
    import tvm.s_tir.meta_schedule as ms

    from .. import frontend
    from ..frontend.layout import DEFAULT_LAYOUT
    from ..frontend.tasks import legalize_and_fuse
    from ..target import describe

    target = db.target()
    layout = db.meta.get("layout", DEFAULT_LAYOUT)
    say(progress, f"extracting the tasks of {model_path} ({describe(target)}, layout {layout})")
    model, mod = frontend.import_model(model_path, input_shapes, **import_options(db.meta))
    extracted = ms.relax_integration.extract_tasks(legalize_and_fuse(mod, target, layout), target)
    workload_of = db.task_workloads(extracted)
    tasks = [{"name": ext.task_name, "count": int(ext.weight), "workload": workload_of[ext.task_name]}
             for ext in extracted]
    return model.name, describe(target), tasks


# ------------------------------------------------------------------ the cells to measure
def _task_entry(task: dict, db: DatabaseLines, top_k: int, min_task_us: float) -> dict:
    """A task's entry: its top-K distinct valid records as candidates, or why it is skipped."""
    entry = {"name": task["name"], "count": task["count"], "workload": task["workload"],
             "tuned_us": None, "valid_records": 0, "distinct_valid": 0, "skipped": None, "candidates": []}
    if task["workload"] is None:
        entry["skipped"] = "not in the database (not tuned)"
        return entry
    picked, n_valid, n_distinct = db.candidates(task["workload"], top_k)
    entry.update(valid_records=n_valid, distinct_valid=n_distinct)
    if not picked:
        entry["skipped"] = "no valid record"
        return entry
    entry["tuned_us"] = round(db.record_secs(picked[0]) * 1e6, 3)
    entry["candidates"] = [
        {"id": f"r{i}", "record": i, "sha256": db.record_sha(i), "rank": rank,
         "tuned_us": round(db.record_secs(i) * 1e6, 3), "tuned_threads": db.record_threads(i),
         "build_s": None, "error": None, "cells": {}, "footprint": None}
        for rank, i in enumerate(picked)]
    if task["workload"] in db.cold_workloads:
        # Its cold search's candidates first (rank 0: the cold best), the hot search's
        # after (DatabaseLines.candidates).  Timed hot those beat the cold ones in the
        # tables and lose in the model, so this task's claims are timed as pairs with
        # operands flushed (variants.confirm), and its default is what those show fastest
        # alone (select.faster_by_pairs).
        for cand in entry["candidates"]:
            cand["searched"] = db.record_caches(cand["record"])
        entry["note"] = ("searched with cold caches (mtcc tune --cold-caches): claims and default "
                         "by pairs timed with operands flushed")
    if entry["tuned_us"] < min_task_us:
        entry["skipped"] = (f"best tuned time {entry['tuned_us']:.2f} us < {min_task_us} us: "
                            "too short for the variant choice to matter")
        entry["candidates"] = entry["candidates"][:1]
    return entry


def mark_unmeasurable(live, core_counts: Sequence[int], levels: Sequence[str], machine_cores: int) -> None:
    """A candidate holding every core leaves none for a stressor: record those cells as
    not measurable instead of inventing them."""
    for _, cand in live:
        for n in core_counts:
            for level in levels:
                if level != "none" and n >= machine_cores and cell_key(n, level) not in cand["cells"]:
                    cand["cells"][cell_key(n, level)] = {
                        "status": "not_measurable",
                        "reason": f"no free core for a stressor: the candidate holds all {machine_cores} cores"}


# What a cell costs characterization, a build per candidate and phase and the footprint
# included: bvlc_alexnet 0.73 s (570 cells and 114 footprints in 502 s, an Intel Xeon VM,
# 2026-11-28), inception_v1 about 0.5 s (a Zen 4 VM).  The slower, so a budget holds.
SECONDS_PER_CELL = 0.75


def cells_to_measure(cand: dict, core_counts: Sequence[int], levels: Sequence[str], footprints: bool) -> int:
    """Cells (and footprint) a candidate still needs: what it costs this run."""
    missing = sum(cell_key(n, lv) not in cand["cells"] for n in core_counts for lv in levels)
    return missing + (footprints and cand["footprint"] is None)


def trim_to_budget(live: list, budget_s: float, core_counts: Sequence[int], levels: Sequence[str],
                   footprints: bool) -> list:
    """The candidates of `live` [(task entry, candidate)] to measure within about
    `budget_s` (SECONDS_PER_CELL), the others dropped from their task's entry (its
    "trimmed" says how many).  Every task keeps its best record (its default's tables)
    and every candidate already measured; the rest are kept rank by rank (every task's
    second before any task's third), tasks in order of the time they hold in the model
    (best tuned µs x calls): on a model of a few hundred tasks the time goes to the
    convolutions that decide its latency, not to eight candidates of every concatenate."""
    cost = {id(c): cells_to_measure(c, core_counts, levels, footprints) for _, c in live}
    kept = {id(c) for t, c in live if c["rank"] == 0 or not cost[id(c)]}
    left = budget_s / SECONDS_PER_CELL - sum(cost[k] for k in kept)
    tasks = sorted({id(t): t for t, _ in live}.values(), key=lambda t: -(t["tuned_us"] or 0.0) * t["count"])
    for rank in range(1, max((c["rank"] for _, c in live), default=0) + 1):
        for t in tasks:
            cand = next((c for c in t["candidates"] if c["rank"] == rank), None)
            if cand is not None and id(cand) not in kept and cost[id(cand)] <= left:
                kept.add(id(cand))
                left -= cost[id(cand)]
    for t in tasks:
        trimmed = [c for c in t["candidates"] if id(c) not in kept]
        if trimmed:
            t["candidates"] = [c for c in t["candidates"] if id(c) in kept]
            t["trimmed"] = len(trimmed)
    return [(t, c) for t, c in live if id(c) in kept]


def plan_cells(live, n: int, core_counts: Sequence[int], levels: Sequence[str],
               footprints: bool) -> tuple[list, set]:
    """For the phase on `n` cores: [(task, candidate, levels still to measure)] in
    measuring order, and the ids of candidates whose footprint is still missing
    (measured only by the 1-core phase, when `footprints`)."""
    todo = [(t, c, [lv for lv in levels if cell_key(n, lv) not in c["cells"]])
            for t, c in live if not c["error"] and n in core_counts]
    todo = [(t, c, lvs) for t, c, lvs in todo if lvs]
    need_footprint = {id(c) for _, c in live if c["footprint"] is None and not c["error"]} if footprints else set()
    listed = {id(c) for _, c, _ in todo}
    todo += [(t, c, []) for t, c in live if id(c) in need_footprint and id(c) not in listed]
    return todo, need_footprint


# ------------------------------------------------------------------ one measuring session
class MeasuringSession:
    """One phase of a characterization: a warm worker pinned to the first `n` cores,
    each needed level's calibrated stressor started (and paused) on the free cores,
    and the memory probe on the second core when footprints are wanted."""

    def __init__(self, calibration: dict, cores: list[int], n: int, levels: Iterable[str],
                 stressor_cores: int | None, with_probe: bool):
        self.calibration, self.cores, self.n = calibration, cores, n
        self.free = cores[n:] if stressor_cores is None else cores[n:n + max(1, stressor_cores)]
        self.levels = [lv for lv in levels if lv != "none"]
        self.with_probe = with_probe
        self.stressors: dict[str, object] = {}
        self._procs: dict[str, list] = {}  # level -> its stressor's worker processes (psutil)
        self.worker = MeasuringWorker(cores[:n])
        self.probe = None

    def __enter__(self) -> "MeasuringSession":
        from ..interference.calibration import stressor_for_level
        from ..interference.probe_process import ProbeProcess

        try:
            for level in self.levels:
                stressor = stressor_for_level(self.calibration, level, cores=self.free)
                if stressor is not None:
                    stressor.start()
                    stressor.pause()
                    self.stressors[level] = stressor
                    self._procs[level] = [psutil.Process(pid) for pid in stressor.pids]
            self.worker.start()
            if self.with_probe:
                self.probe = ProbeProcess(self.cores[1])
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.probe is not None:
            self.probe.stop()
        self.worker.stop()
        for stressor in self.stressors.values():
            stressor.stop()
        self.stressors.clear()
        self._procs.clear()

    def _cpu_s(self, level: str) -> float:
        """CPU seconds (user + system) the level's stressor processes have used so far."""
        total = 0.0
        for proc in self._procs.get(level, []):
            try:
                t = proc.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:  # a dead stressor shows as no CPU time
                pass
        return total

    def _pinned(self, level: str) -> list[int]:
        cores = set()
        for proc in self._procs.get(level, []):
            try:
                cores.update(proc.cpu_affinity())
            except psutil.NoSuchProcess:
                pass
        return sorted(cores)

    def time_levels(self, key: str, levels: list[str], repeats: int, min_repeat_ms: float,
                    flush_bytes: int = 0) -> dict[str, dict]:
        """Per level: {"samples_us": [...]} (µs); levels take turns round by round so each
        sees the same drift of a shared machine, and a level's stressor runs only during
        its samples.  When the session runs stressors, each level also gets the evidence:

            "stressor":     {"cpu_s", "wall_s", "cores"} (levels with a stressor): CPU time
                            its processes used while resumed for this level's samples, the
                            wall time they were resumed, the cores they are pinned to;
            "paused_cpu_s": CPU time every other stressor of the session used meanwhile
                            (they are SIGSTOPped: ~0).
        """
        out: dict[str, dict] = {lv: {"samples_us": []} for lv in levels}
        cpu = {lv: 0.0 for lv in levels}
        wall = {lv: 0.0 for lv in levels}
        paused = {lv: 0.0 for lv in levels}
        for r in range(repeats):
            turn = levels[r % len(levels):] + levels[:r % len(levels)] if levels else []
            for level in turn:
                stressor = self.stressors.get(level)
                before = {lv: self._cpu_s(lv) for lv in self._procs}
                t0 = time.perf_counter()
                if stressor is not None:
                    stressor.resume()
                try:
                    got = self.worker.request(TIME_TIMEOUT_S, cmd="time", key=key, repeat=2,
                                              min_repeat_ms=min_repeat_ms, flush_bytes=flush_bytes)
                finally:
                    if stressor is not None:
                        stressor.pause()
                wall[level] += time.perf_counter() - t0
                for lv, start in before.items():
                    used = self._cpu_s(lv) - start
                    if lv == level:
                        cpu[level] += used
                    else:
                        paused[level] += used
                out[level]["samples_us"] += got["samples_us"]
        if self._procs:
            for level in levels:
                if level in self._procs:
                    out[level]["stressor"] = {"cpu_s": round(cpu[level], 3), "wall_s": round(wall[level], 3),
                                              "cores": self._pinned(level)}
                out[level]["paused_cpu_s"] = round(paused[level], 3)
        return out

    def footprint(self, key: str, pairs: int, window_s: float) -> dict:
        """How much the candidate, looping on the worker's core, slows the memory probe on
        the next core: median over interleaved alone/beside pairs."""
        ratios, alone = [], []
        for _ in range(pairs):
            a = robust_time(self.probe.samples("memory", window_s))
            self.worker.request(30, cmd="loop_start", key=key)
            try:
                b = robust_time(self.probe.samples("memory", window_s))
            finally:
                self.worker.request(TIME_TIMEOUT_S, cmd="loop_stop")
            ratios.append(round(b / a, 4))
            alone.append(round(a * 1e3, 4))
        return {"ratio": round(statistics.median(ratios), 4), "ratios": ratios,
                "probe_alone_ms": round(statistics.median(alone), 4)}


# ------------------------------------------------------------------ the stage
def characterize(model_path, schedules_dir, *, calibration=None, top_k: int = 8,
                 core_counts: Sequence[int] | None = None,
                 levels: Sequence[str] = LEVEL_ORDER, repeats: int = 5, min_repeat_ms: float = 20.0,
                 footprint_pairs: int | None = None, footprint_window_s: float = 0.05,
                 min_task_us: float = DEFAULT_MIN_TASK_US, tasks: Iterable[str] | None = None,
                 stressor_cores: int | None = None, caches: str = DEFAULT_CACHES,
                 out=None, input_shapes=None, check_machine: bool = True,
                 confirm_rounds: int = CONFIRM_ROUNDS, max_variants: int = 5,
                 budget_s: float | None = None, progress: Progress = None) -> dict:
    """Measure the top-K candidates of every task at every core count x level (see
    mtcc.variants); returns the characterization dict, also written to `out` (default
    SCHEDULES_DIR/characterization.json) after every candidate.

    calibration: a calibration dict or file; None = schedules/calibration/<cpu>.json if
      present, else a quick 30 s calibration.
    core_counts: default 1, 2, 4, ... up to the cores this process may use.
    levels: those missing from the calibration are left out ("none" always measured).
    repeats: rounds per cell; each round takes two samples of >= `min_repeat_ms`.
    tasks: restrict to these task names (default: every task).
    stressor_cores: at most this many of the free cores run the level's stressor
      (default: all of them, as during calibration: the rest of the machine is busy).
    check_machine: record vCPU sharing and load before/after (co-running numbers on a
      time-shared VM read ~2x for reasons that have nothing to do with mtcc).
    caches: "hot" -- calls back to back on the same arguments, a window at a time (their
      data stays in the private caches); "cold" -- one call per timing, twice the L2
      written before each, so the call's weights come from the shared cache or memory
      as inside a model whose other calls passed through the private caches meanwhile.
      Cells of one method are never merged with the other's.
    confirm_rounds: then every cell in which a variant the selection (at `max_variants`)
      keeps beats its task's default is timed again as a pair in turns, this many rounds
      (variants.confirm); 0 skips it.
    budget_s: measure only as many candidates as fit in about this time (trim_to_budget;
      every task's best still is, so a small budget may run over); None: all top-K.
    """
    from ..interference import machine

    started = time.time()
    schedules_dir = Path(schedules_dir)
    db = DatabaseLines(schedules_dir)
    out = Path(out) if out else schedules_dir / CHARACTERIZATION
    cores = machine.cores()
    core_counts = sorted({int(n) for n in (core_counts or default_core_counts(len(cores)))})
    if not core_counts or core_counts[0] < 1 or core_counts[-1] > len(cores):
        raise BadInput(f"core counts {core_counts}: this process may use {len(cores)} core(s)")
    if top_k < 1 or repeats < 1:
        raise BadInput("top_k and repeats must be at least 1")
    if caches not in CACHE_METHODS:
        raise BadInput(f"caches {caches!r}: one of {', '.join(CACHE_METHODS)}")
    flush_bytes = cold_flush_bytes() if caches == "cold" else 0
    footprint_pairs = footprint_pairs or repeats

    previous = load_previous(out, progress)
    if calibration is None and previous and previous.get("calibration_full"):
        cal, source = previous["calibration_full"], previous["calibration"]["source"]
    else:
        cal, source = resolve_calibration(calibration, schedules_dir, cores, progress)
    unknown = [lv for lv in levels if lv not in LEVEL_ORDER]
    if unknown:
        raise BadInput(f"unknown interference level(s) {unknown} (known: {', '.join(LEVEL_ORDER)})")
    used_levels = [lv for lv in LEVEL_ORDER if lv in levels and (lv == "none" or lv in cal["levels"])]
    dropped = [lv for lv in levels if lv not in used_levels]
    if dropped:
        say(progress, f"levels {dropped} not in the calibration ({cal.get('verdict', '')}): not measured")

    model_name, target, found = model_tasks(model_path, db, input_shapes, progress)
    wanted = set(tasks) if tasks is not None else None
    if wanted is not None and wanted - {t["name"] for t in found}:
        raise BadInput(f"no task named {', '.join(sorted(wanted - {t['name'] for t in found}))} in {model_path}")
    task_entries = [_task_entry(t, db, top_k, min_task_us) for t in found
                    if wanted is None or t["name"] in wanted]
    merge_previous(task_entries, previous, calibration_fingerprint(cal), progress, caches=caches)
    # A run restricted to some tasks keeps what earlier runs measured for the others.
    chosen = {t["name"]: t for t in task_entries}
    others = {t["name"]: t for t in (previous or {}).get("tasks", []) if t["name"] not in chosen}
    all_tasks = [chosen.get(t["name"]) or others[t["name"]] for t in found
                 if t["name"] in chosen or t["name"] in others]
    known = {t["workload"] for t in found}
    unmatched = [i for i, line in enumerate(db.workloads) if line is not None and i not in known]

    state = {
        # No paths of this machine: the file is committed (model by file name only).
        "format": FORMAT, "model": model_name, "model_file": Path(model_path).name if model_path else None,
        "target": target,
        "calibration": calibration_summary(cal, source), "calibration_full": cal,
        "machine": {"cpu_model": machine.cpu_model(), "cores": cores},
        "core_counts": core_counts, "levels": used_levels, "top_k": top_k,
        "settings": {"repeats": repeats, "min_repeat_ms": min_repeat_ms, "caches": caches,
                     "flush_bytes": flush_bytes, "stressor_cores": stressor_cores,
                     "footprint_pairs": footprint_pairs, "footprint_window_s": footprint_window_s,
                     "min_task_us": min_task_us, "statistic": "lower quartile of the samples",
                     "confirm_rounds": confirm_rounds},
        "tasks": all_tasks, "unmatched_workloads": unmatched,
        "runs": list(previous.get("runs", [])) if previous else [],
    }
    # Each run names its CPU: a run restricted to some tasks (--task) can measure them on
    # another machine than the cells it keeps, and "machine" above names the last one only.
    run = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cpu_model": machine.cpu_model(),
           "tasks": sorted(chosen) if wanted is not None else "all", "cells_measured": 0,
           "footprints_measured": 0, "load_average_before": machine.load_average()}
    if check_machine:
        run["vcpu_sharing_before"] = machine.vcpu_sharing().get("state")

    def save() -> None:
        state["runs_in_progress"] = run
        atomic_write_json(out, state)

    for t in task_entries:
        if t["skipped"]:
            say(progress, f"skip {t['name']}: {t['skipped']}")
    if unmatched:
        say(progress, f"{len(unmatched)} workload(s) in the database are not tasks of this model: ignored")
    live = [(t, c) for t in task_entries if not t["skipped"] for c in t["candidates"]]
    mark_unmeasurable(live, core_counts, used_levels, len(cores))
    if budget_s is not None:
        before = len(live)
        live = trim_to_budget(live, budget_s, core_counts, used_levels, footprints=len(cores) >= 2)
        run["budget_s"], run["candidates_trimmed"] = round(budget_s, 1), before - len(live)
        if before > len(live):
            say(progress, f"{len(live)} of {before} candidates fit the {budget_s / 60:.1f}-minute budget "
                          f"(~{SECONDS_PER_CELL} s a cell): the others are left out, the biggest tasks' kept")
    # Footprints are measured with a 1-core worker, also when 1 is not among the core counts.
    phases = sorted(set(core_counts) | ({1} if len(cores) >= 2 else set()))
    try:
        for n in phases:
            todo, need_footprint = plan_cells(live, n, core_counts, used_levels,
                                              footprints=n == 1 and len(cores) >= 2)
            if todo:
                _measure_phase(n, todo, need_footprint, cal, cores, stressor_cores, db, run, save,
                               repeats=repeats, min_repeat_ms=min_repeat_ms, flush_bytes=flush_bytes,
                               footprint_pairs=footprint_pairs,
                               footprint_window_s=footprint_window_s, progress=progress)
        if confirm_rounds:
            run["claims_confirmed"] = confirm_claims(
                state, db, cal, cores, max_variants=max_variants, rounds=confirm_rounds,
                min_repeat_ms=min_repeat_ms, flush_bytes=flush_bytes, stressor_cores=stressor_cores,
                save=save, only=set(chosen), progress=progress)
    finally:
        run["wall_s"] = round(time.time() - started, 2)
        run["load_average_after"] = machine.load_average()
        if check_machine:
            run["vcpu_sharing_after"] = machine.vcpu_sharing().get("state")
        state.pop("runs_in_progress", None)
        state["runs"].append(run)
        atomic_write_json(out, state)
    say(progress, f"characterized {len(live)} candidate(s): {run['cells_measured']} new cell(s), "
                  f"{run['footprints_measured']} footprint(s) in {run['wall_s']:.1f} s -> {out}")
    return state


def _measure_phase(n, todo, need_footprint, cal, cores, stressor_cores, db, run, save, *,
                   repeats, min_repeat_ms, flush_bytes, footprint_pairs, footprint_window_s, progress) -> None:
    """Every cell of `todo` on `n` cores, in one MeasuringSession; saves after each candidate."""
    levels = sorted({lv for _, _, lvs in todo for lv in lvs}, key=LEVEL_ORDER.index)
    session = MeasuringSession(cal, cores, n, levels, stressor_cores, with_probe=bool(need_footprint))
    say(progress, f"{n} core(s) {cores[:n]}: {len(todo)} candidate(s) to measure"
                  + (f", stressors on {session.free}" if session.levels else ""))
    phase = {"cores": n, "candidates": 0, "cells": 0, "footprints": 0}
    phase_started = time.perf_counter()
    run.setdefault("phases", []).append(phase)
    with session:
        phase["start_s"] = round(time.perf_counter() - phase_started, 2)
        for done, (task, cand, lvs) in enumerate(todo):
            key = f"{task['name']}/{cand['id']}"
            phase["candidates"] += 1
            try:
                built = session.worker.request(BUILD_TIMEOUT_S, cmd="build", key=key, job=db.job(cand["record"]))
                cand["build_s"] = built["build_s"]
                measured = session.time_levels(key, lvs, repeats, min_repeat_ms, flush_bytes)
                for level in lvs:
                    cand["cells"][cell_key(n, level)] = {"us": round(robust_time(measured[level]["samples_us"]), 4),
                                                         **measured[level]}
                    run["cells_measured"] += 1
                    phase["cells"] += 1
                if id(cand) in need_footprint:
                    cand["footprint"] = session.footprint(key, footprint_pairs, footprint_window_s)
                    run["footprints_measured"] += 1
                    phase["footprints"] += 1
                session.worker.request(30, cmd="drop", key=key)
            except WorkerError as e:
                cand["error"] = f"{n} core(s): {e}"
                say(progress, f"{key}: {cand['error']}")
            cells = ", ".join(f"{lv} {cand['cells'][cell_key(n, lv)]['us']:.1f}"
                              for lv in lvs if cell_key(n, lv) in cand["cells"])
            fp = (f", footprint {cand['footprint']['ratio']:.3f}x"
                  if id(cand) in need_footprint and cand["footprint"] else "")
            say(progress, f"[{done + 1}/{len(todo)}] {n}c {key}: {cells or '-'} us{fp}")
            phase["wall_s"] = round(time.perf_counter() - phase_started, 2)
            save()


def characterize_and_select(model_path, schedules_dir, *, max_variants: int = 5, **kwargs) -> dict:
    """The whole stage as `mtcc tune` runs it after the search: characterize (resumable),
    write variants.json, return the evidence for this model."""
    from .evidence import evidence
    from .select import select_variants

    char = characterize(model_path, schedules_dir, max_variants=max_variants, **kwargs)
    out = Path(kwargs["out"]).parent if kwargs.get("out") else Path(schedules_dir)
    select_variants(char, max_variants, out=out)
    return evidence(schedules_dir)["models"][0]

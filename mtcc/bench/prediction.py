"""Do a bundle's latency tables predict the whole model, and does the selector's choice
pay end to end?  (The variants issue, points 1, 2 and 4.)

For every interference level the bundle's blocks have cells for at N cores, measured in
one child process pinned to the first N cores, the level's calibrated stressor (mtcc's
own, from schedules/calibration/) on the core after them:

- the whole model with the default variants, end to end through the plan executor
  (every call of the plan, the inputs in place: what a tenant runs), against the sum of its blocks' cells (what the
  scheduler and the selector plan with);
- the whole model with the variants the runtime's selector (TableSelector) picks for
  (N cores, level), against the default, in the same rounds: the gain the tables
  predict against the gain measured, as the ratio of the two choices' medians in each
  round (paired, so drift of the shared machine cancels) with its spread over rounds;
- optionally (`explain`) the tables' method again, now: every call timed alone back
  to back on its own arguments for a window (as a candidate is characterized), the
  same call timed once at a time with the private caches evicted before each (cold:
  its data in the shared cache or memory, as after the model's other calls), and
  every call timed once in its place in the sequence.  Whole model over the calls
  alone says how far the method is from the model; the calls alone over the tables
  says how far the machine drifted since they were measured.

Levels and choices are interleaved within each round; medians over every timed run.  With
level none among them, each level's prediction is also given as a server makes it after
re-timing its blocks at start: the model measured at none times the tables' slowdown for
the level (`calibrated_predicted_ms`), which drift of the machine since characterization
does not touch.
"""
from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

MIN_REPEAT_S = 0.02  # a timing window of characterization (its min_repeat_ms)


def predicted_us(blocks: list[dict], cell: str) -> float | None:
    """The sum of the blocks' cells (default variants); None when a block has no such cell."""
    cells = [b["latency_us"].get(cell) for b in blocks]
    return None if any(c is None for c in cells) else sum(cells)


def selected_choice(profile, cores: int, level: str) -> dict[str, str]:
    """{task: variant id} the runtime's table selector picks at (cores, level), for the
    tasks where that is not the default."""
    from ..runtime.selector import TableSelector

    chosen = {}
    for choice in TableSelector().choose_all(profile, cores, level):
        chosen.update(choice)
    return {task: vid for task, vid in chosen.items() if vid != profile.default[task]}


def measure(bundle_path, *, cores: int = 1, rounds: int = 5, repeat: int = 10, calibration=None,
            levels=None, explain: bool = False) -> dict:
    """The report for one bundle (see the module doc), measured in a child process:
    TVM sizes its pool once per process, and the stressors must start before it pins."""
    from ..errors import BadInput
    from ..interference.lookup import find_calibration

    # This CPU's calibration among the committed ones (the checkout's schedules/calibration/,
    # or the current directory's), else any there.
    calibration = calibration or find_calibration(Path(__file__).resolve().parents[2] / "schedules")
    if calibration is None:
        raise BadInput("no calibration file: give one, or run from a checkout with schedules/calibration/")
    spec = json.dumps({"bundle": str(bundle_path), "cores": cores, "rounds": rounds, "repeat": repeat,
                       "calibration": str(calibration),
                       "levels": levels, "explain": explain})
    out = subprocess.run([sys.executable, "-m", "mtcc.bench.prediction", spec], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{bundle_path}: {(out.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def median_and_error(ratios: list[float]) -> tuple[float, float]:
    """Per-round ratios summed up: their median, and half their interquartile range as
    the error of the measurement."""
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    return statistics.median(ratios), (quartiles[2] - quartiles[0]) / 2


def _timed_runs(executor, repeat: int) -> list[float]:
    """µs of whole inferences: every call of the plan, the inputs already in place (as a
    tenant reads them from its shared-memory arena: no copy or check of Python arrays)."""
    count = len(executor)
    executor.run_range(0, count)  # warm-up after a switch of level or variants
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        executor.run_range(0, count)
        times.append((time.perf_counter() - start) * 1e6)
    return times


def _child(spec: dict) -> dict:
    import numpy as np

    import mtcc
    from ..interference.calibration import load, stressor_for_level
    from ..interference.machine import cores as machine_cores
    from ..interference.probes import robust_time
    from ..runtime.loader import pin_cores
    from ..runtime.profile import ModelProfile
    from ..variants.worker import cold_flush_bytes, cold_samples

    n = spec["cores"]
    everyone = machine_cores()
    calibration = load(spec["calibration"])
    wanted = spec.get("levels") or list(calibration["levels"])
    # Every level's stressor started (then paused) on the core after the first n before
    # this process pins itself to those n: a stressor must run on a core it may use.
    stressors = {}
    if len(everyone) > n:
        for lvl in wanted:
            stressor = stressor_for_level(calibration, lvl, cores=[everyone[n]])
            if stressor:
                stressors[lvl] = stressor.start()
                stressor.pause()
    held = contextlib.ExitStack()
    try:
        used = pin_cores(n)
        bundle = mtcc.load(spec["bundle"])
        held.enter_context(bundle.pinned(used))  # this process runs nothing else
        profile = ModelProfile.from_bundle(spec["bundle"])
        prefix = f"{n}c/"
        levels = [lvl for lvl in wanted
                  if predicted_us(bundle.blocks, prefix + lvl) is not None and (lvl == "none" or lvl in stressors)]
        choices = {lvl: selected_choice(profile, n, lvl) for lvl in levels}
        rng = np.random.default_rng(0)
        bundle.executor.set_inputs(*[rng.standard_normal(i["shape"]).astype(i["dtype"]) for i in bundle.inputs])
        default_runs = {lvl: [] for lvl in levels}
        selected_runs = {lvl: [] for lvl in levels}
        round_ratios = {lvl: [] for lvl in levels}  # selected / default, median of each round
        round_medians = {lvl: [] for lvl in levels}  # the defaults' median of each round
        executor = bundle.executor
        hot = {lvl: [[] for _ in range(len(executor))] for lvl in levels}
        in_sequence = {lvl: [[] for _ in range(len(executor))] for lvl in levels}
        cold = {lvl: [[] for _ in range(len(executor))] for lvl in levels}
        flush_bytes = cold_flush_bytes()
        for _ in range(spec["rounds"]):
            for lvl in levels:
                if lvl in stressors:
                    stressors[lvl].resume()
                    time.sleep(0.2)  # let it reach its steady state
                try:
                    bundle.reset()
                    default_now = _timed_runs(executor, spec["repeat"])
                    default_runs[lvl] += default_now
                    round_medians[lvl].append(statistics.median(default_now))
                    if choices[lvl]:
                        bundle.select(choices[lvl])
                        selected_now = _timed_runs(executor, spec["repeat"])
                        selected_runs[lvl] += selected_now
                        round_ratios[lvl].append(statistics.median(selected_now) / statistics.median(default_now))
                        bundle.reset()
                    if spec.get("explain"):
                        for k, seconds in enumerate(executor.call_times()):
                            in_sequence[lvl][k].append(seconds * 1e6)
                            number = max(1, int(MIN_REPEAT_S / max(seconds, 1e-7)))
                            hot[lvl][k] += [s * 1e6 for s in executor.time_call(k, number=number, repeat=2)]
                            # characterization's cold timing, one sample
                            cold[lvl][k].append(cold_samples(lambda n, k=k: executor.time_call(
                                k, number=1, repeat=n, flush_bytes=flush_bytes), number, 1)[0] * 1e6)
                finally:
                    if lvl in stressors:
                        stressors[lvl].pause()
    finally:
        held.close()
        for stressor in stressors.values():
            stressor.stop()

    rows = []
    for lvl in levels:
        predicted, measured = predicted_us(bundle.blocks, prefix + lvl), statistics.median(default_runs[lvl])
        row = {"cell": prefix + lvl, "predicted_ms": round(predicted / 1e3, 3), "measured_ms": round(measured / 1e3, 3),
               "measured_over_predicted": round(measured / predicted, 3),
               "spread_ms": [round(q / 1e3, 3) for q in statistics.quantiles(default_runs[lvl], n=4)[::2]],
               "runs": len(default_runs[lvl]), "switched_tasks": sorted(choices[lvl])}
        if choices[lvl]:
            predicted_selected = profile.model_us(n, lvl, choices[lvl])
            middle, error = median_and_error(round_ratios[lvl])
            row["selected"] = {
                "predicted_ms": round(predicted_selected / 1e3, 3),
                "measured_ms": round(statistics.median(selected_runs[lvl]) / 1e3, 3),
                "predicted_gain": round(1 - predicted_selected / profile.model_us(n, lvl), 4),
                # Per round, selected over default: its median, and half its interquartile
                # range as the error of the measurement.
                "measured_ratio": round(middle, 4),
                "measured_ratio_error": round(error, 4),
                # how many rounds the selected variants were the faster: a sign test's count
                "rounds_faster": sum(r < 1 for r in round_ratios[lvl]),
                "round_ratios": [round(r, 4) for r in round_ratios[lvl]],
                "rounds": len(round_ratios[lvl])}
        if spec.get("explain"):
            # Sums over the calls: each call's time as the tables take it (lower quartile
            # of its windows) and its median once in the sequence.
            alone = sum(robust_time(times) for times in hot[lvl])
            cold_alone = sum(statistics.median(times) for times in cold[lvl])
            row.update({"calls_alone_now_ms": round(alone / 1e3, 3),
                        "calls_alone_cold_now_ms": round(cold_alone / 1e3, 3),
                        "measured_over_calls_alone_cold_now": round(measured / cold_alone, 3),
                        "calls_in_sequence_now_ms": round(sum(statistics.median(t) for t in in_sequence[lvl]) / 1e3, 3),
                        "measured_over_calls_alone_now": round(measured / alone, 3),
                        "calls_alone_now_over_predicted": round(alone / predicted, 3)})
        rows.append(row)
    # What a server predicts: it re-times every block alone at start (ModelProfile.calibrate),
    # so a level's prediction is the model measured at none x the tables' slowdown for it.
    none = next((r for r in rows if r["cell"] == prefix + "none"), None)
    if none:
        for row in rows:
            calibrated = none["measured_ms"] * row["predicted_ms"] / none["predicted_ms"]
            row["calibrated_predicted_ms"] = round(calibrated, 3)
            row["measured_over_calibrated"] = round(row["measured_ms"] / calibrated, 3)
            if row is not none:
                # The same, round by round (this level's median over none's of the same
                # round): how well one run pins a level's slowdown down, the error bar
                # of the 5 % comparison.
                tables = row["predicted_ms"] / none["predicted_ms"]
                middle, error = median_and_error([level / alone / tables for level, alone in zip(
                    round_medians[row["cell"][len(prefix):]], round_medians["none"])])
                row["measured_over_calibrated_by_round"] = {"median": round(middle, 3), "error": round(error, 3)}
    return {"bundle": Path(spec["bundle"]).name, "model": bundle.manifest["model"]["name"], "cores": n,
            "calibration": Path(spec["calibration"]).name, "rows": rows}


if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.argv[1]))))

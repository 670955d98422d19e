#!/usr/bin/env python3
"""Do a bundle's latency tables predict the whole model?  (The variants issue, point 1.)

For every interference level the bundle's blocks have cells for at N cores: the model
latency the tables predict for the default variants (the sum of the blocks' cells, which
the runtime's scheduler and selector plan with), against the whole model measured end to
end through the plan executor (`bundle.run`, what the tenants run) on the first N cores,
with that level's calibrated stressor (mtcc's own, from schedules/calibration/) on the
core after them.  Levels are interleaved within each round, so drift of the shared
machine hits all alike; medians over every timed run of a level.  Then, at level none,
each task's time inside the model (calls timed one by one) over its table cell: the same
ratio for every task means the machine ran at another speed than when the tables were
measured, a ratio for some tasks only means the model's call sequence differs from the
candidate timed alone.

Usage: benchmarks/prediction.py BUNDLE... [--cores 1] [--rounds 5] [--repeat 10]
       [--calibration FILE] [--json OUT]
Prints a table and, with --json, writes one JSON object.  A benchmark: it asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def predicted_us(blocks: list[dict], cell: str) -> float | None:
    """The sum of the blocks' cells; None when a block has no such cell."""
    cells = [b["latency_us"].get(cell) for b in blocks]
    return None if any(c is None for c in cells) else sum(cells)


def measure(bundle_path: str, cores: int, rounds: int, repeat: int, calibration: str) -> dict:
    """In a child pinned to the first `cores` cores (TVM sizes its pool once per process)."""
    spec = json.dumps({"bundle": bundle_path, "cores": cores, "rounds": rounds, "repeat": repeat,
                       "calibration": calibration})
    out = subprocess.run([sys.executable, __file__, "--child", spec], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{bundle_path}: {(out.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def child(spec: dict) -> dict:
    import numpy as np

    import mtcc
    from mtcc.interference.calibration import load, stressor_for_level
    from mtcc.interference.machine import cores as machine_cores
    from mtcc.bench.calls import profile_calls
    from mtcc.runtime.loader import pin_cores

    n = spec["cores"]
    everyone = machine_cores()
    calibration = load(spec["calibration"])
    # Every level's stressor started (then paused) on the core after the first n before
    # this process pins itself to those n: a stressor must run on a core it may use.
    stressors = {}
    if len(everyone) > n:
        for lvl in calibration["levels"]:
            stressor = stressor_for_level(calibration, lvl, cores=[everyone[n]])
            if stressor:
                stressors[lvl] = stressor.start()
                stressor.pause()
    try:
        pin_cores(n)
        bundle = mtcc.load(spec["bundle"])
        prefix = f"{n}c/"
        levels = [lvl for lvl in calibration["levels"]
                  if predicted_us(bundle.blocks, prefix + lvl) is not None and (lvl == "none" or lvl in stressors)]
        rng = np.random.default_rng(0)
        feeds = {i["name"]: rng.standard_normal(i["shape"]).astype(i["dtype"]) for i in bundle.inputs}
        samples = {lvl: [] for lvl in levels}
        for _ in range(spec["rounds"]):
            for lvl in levels:
                if lvl in stressors:
                    stressors[lvl].resume()
                    time.sleep(0.2)  # let it reach its steady state
                try:
                    bundle.run_dict(feeds)  # warm-up after the switch
                    for _ in range(spec["repeat"]):
                        start = time.perf_counter()
                        bundle.run_dict(feeds)
                        samples[lvl].append((time.perf_counter() - start) * 1e6)
                finally:
                    if lvl in stressors:
                        stressors[lvl].pause()
        # Where the gap lies, at level none: each task's time inside the model (the calls
        # one by one, `mtcc profile`'s way) over its table cell.  About the same ratio for
        # every task, weights or none, says the machine ran at another speed than when it
        # was characterized; a ratio only for some says the model's call sequence (caches)
        # differs from the candidate timed alone.
        profile = profile_calls(bundle, repeat=spec["repeat"])
        cells = {t["task"]: next(v for v in t["variants"] if v["id"] == t["default"])["latency_us"]
                 for t in bundle.selector["tasks"]}
        by_task = {t["task"]: round(t["us"] / t["calls"] / cells[t["task"]][prefix + "none"], 3)
                   for t in profile["tasks"] if cells[t["task"]].get(prefix + "none")}
    finally:
        for stressor in stressors.values():
            stressor.stop()
    rows = []
    for lvl in levels:
        predicted, measured = predicted_us(bundle.blocks, prefix + lvl), statistics.median(samples[lvl])
        rows.append({"cell": prefix + lvl, "predicted_ms": round(predicted / 1e3, 3),
                     "measured_ms": round(measured / 1e3, 3), "measured_over_predicted": round(measured / predicted, 3),
                     "spread_ms": [round(q / 1e3, 3) for q in statistics.quantiles(samples[lvl], n=4)[::2]],
                     "runs": len(samples[lvl])})
    ratios = sorted(by_task.values())
    return {"bundle": Path(spec["bundle"]).name, "model": bundle.manifest["model"]["name"], "cores": n, "rows": rows,
            "in_model_over_table_by_task": by_task,
            "in_model_over_table_quartiles": [round(q, 3) for q in statistics.quantiles(ratios, n=4)] if len(ratios) > 1 else ratios}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundles", nargs="+")
    ap.add_argument("--cores", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--calibration", default=str(ROOT / "schedules" / "calibration" / "amd-epyc.json"))
    ap.add_argument("--json", dest="json_out")
    a = ap.parse_args()
    from mtcc.interference import machine

    report = {"vcpu_sharing_before": machine.vcpu_sharing(), "calibration": Path(a.calibration).name,
              "settings": {"cores": a.cores, "rounds": a.rounds, "repeat": a.repeat}, "models": []}
    for path in a.bundles:
        result = measure(path, a.cores, a.rounds, a.repeat, a.calibration)
        report["models"].append(result)
        for row in result["rows"]:
            print(f"{result['model']:12s} {row['cell']:8s} predicted {row['predicted_ms']:8.3f} ms  measured "
                  f"{row['measured_ms']:8.3f} ms (IQR {row['spread_ms'][0]:.3f}-{row['spread_ms'][1]:.3f})  "
                  f"measured/predicted {row['measured_over_predicted']:.3f}", flush=True)
        print(f"{result['model']:12s} each task inside the model / its table cell, quartiles: "
              f"{result['in_model_over_table_quartiles']}", flush=True)
    report["vcpu_sharing_after"] = machine.vcpu_sharing()
    print(f"vCPU sharing before: {report['vcpu_sharing_before'].get('state')}, "
          f"after: {report['vcpu_sharing_after'].get('state')}")
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(child(json.loads(sys.argv[2]))))
    else:
        main()

#!/usr/bin/env python3
"""A/B of policy settings in the simulator, on the tables a real `mtcc bench` run measured:
a report (`mtcc bench --json`, also .gz) made on a machine you no longer have -- a lent
16-core one, say -- replayed with the runtime's own policy objects, each system one
policy with its settings (attributes of the policy object: `spare_cores`, `slack`,
`absorb_us`, ...).

The report supplies each model's block times at every core count (measured by the
server at start: config.models.<m>.block_us_by_cores), its measured/table scale, the
targets of every grid point, the unit round trip and an idle lane's cold cost
(config.simulator_*: the run needs --simulate), the lanes and the fixed rate.  Per
target and system: the simulated highest rate with 99 % within target and, at the
report's fixed rate, p50 / p99 / mean per model -- beside the real run's rows.
Simulated figures only: a benchmark, it asserts nothing.

Usage: benchmarks/replay_report.py REPORT.json[.gz] BUNDLE... [--system block-adaptive]
       [--system block-adaptive:spare_cores=0] [--seed 0] [--duration 8]
Each --system is POLICY[:NAME=VALUE[,NAME=VALUE...]].  Prints one JSON object.
"""
from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mtcc.bench.qos import simulated_fixed_rate, simulated_rate_search  # noqa: E402
from mtcc.bench.simulate import Simulator  # noqa: E402
from mtcc.runtime.policies import make_policy  # noqa: E402
from mtcc.runtime.profile import ModelProfile  # noqa: E402
from policy_ab import apply_settings, parse_settings  # noqa: E402  (this folder's: --set NAME=VALUE,...)


def read_report(path: Path) -> dict:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        return json.load(f)


def parse_system(text: str) -> tuple[str, dict[str, float]]:
    name, _, settings = text.partition(":")
    return name, parse_settings(settings) if settings else {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path)
    ap.add_argument("bundles", nargs="+", type=Path)
    ap.add_argument("--system", action="append", dest="systems",
                    help="POLICY[:NAME=VALUE,...] (default: block-adaptive with and without spare cores, model-fcfs)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--duration", type=float, default=8.0, help="simulated seconds per trial, at least")
    ap.add_argument("--median-overhead", action="store_true",
                    help="charge every unit the median round trip, not draws from the measured quantiles")
    args = ap.parse_args()

    report = read_report(args.report)
    config = report["config"]
    if "simulator_unit_overhead_us" not in config:
        raise SystemExit(f"{args.report}: made without --simulate, so it holds no measured round trip or cold cost")
    profiles, scales = {}, {}
    for path in args.bundles:
        profile = ModelProfile.from_bundle(path)
        measured = config["models"].get(profile.name)
        if measured is None:
            raise SystemExit(f"{path}: model {profile.name!r} is not in the report ({', '.join(config['models'])})")
        profile.calibrate(measured["block_us_by_cores"])
        profiles[profile.name], scales[profile.name] = profile, measured["table_scale"]
    models = list(profiles)
    cores = report["machine"]["cores"]
    # draws from the measured round trips where the report holds them (older reports: the median)
    overhead = config.get("simulator_unit_overhead_quantiles_us")
    if overhead is None or args.median_overhead:
        overhead = config["simulator_unit_overhead_us"]
    capacity = cores / statistics.fmean(profiles[n].model_us(1) * scales[n] / 1e6 for n in models)
    systems = [parse_system(s) for s in (args.systems or ["block-adaptive", "block-adaptive:spare_cores=0", "model-fcfs"])]
    out = {"report": args.report.name, "cores": cores, "fixed_rate": config["fixed_rate"], "seed": args.seed,
           "unit_overhead_us": overhead, "cold_us": config["simulator_cold_us"],
           "targets": {}}
    for label, qos in config["qos_ms"].items():
        rows = {}
        for name, settings in systems:
            policy = make_policy(name)
            apply_settings(policy, settings)
            sim = Simulator(profiles, cores, policy, qos, scale=scales, lanes=config["lanes"],
                            unit_overhead_us=overhead, cold_us=config["simulator_cold_us"])
            search = simulated_rate_search(sim, models, qos, capacity, args.duration, args.seed)
            fixed = simulated_fixed_rate(sim, models, qos, config["fixed_rate"], args.duration, args.seed)
            key = name + (":" + ",".join(f"{k}={v:g}" for k, v in settings.items()) if settings else "")
            rows[key] = {"max_qos_rate": round(search.best, 2),
                         "at_fixed_rate": {n: {k: fixed[n][k] for k in ("p50_ms", "p99_ms", "mean_ms", "within_qos")}
                                           for n in models}}
            print(f"[{label}] {key:40s} {search.best:9.1f} req/s; at {config['fixed_rate']:g} req/s: "
                  + ", ".join(f"{n} p50 {fixed[n]['p50_ms']} p99 {fixed[n]['p99_ms']} ms" for n in models),
                  file=sys.stderr)
        real = {r["label"]: r["max_qos_rate"] for r in report["results"] if r["qos"] == label}
        real_fixed = {f"{r['label']} {r['model']}": {k: r[k] for k in ("p50_ms", "p99_ms")}
                      for r in report["results"] if r["qos"] == label and "p99_ms" in r}
        out["targets"][label] = {"qos_ms": qos, "simulated": rows, "real_max_qos_rate": real,
                                 "real_at_fixed_rate": real_fixed}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Do a bundle's latency tables predict the whole model, and does the selector's choice
pay end to end?  (The variants issue, points 1 and 2; the method: mtcc.bench.prediction.)

Per bundle and interference level, at N cores (the level's calibrated stressor on the core
after them): the whole model with the default variants, measured end to end, against the
sum of the tables' cells; the variants the runtime's selector picks for that level against
the default, predicted and measured in the same rounds; and (--explain) every call timed
alone as characterization times a candidate, and once in its place in the model.

Usage: benchmarks/prediction.py BUNDLE... [--cores 1] [--rounds 5] [--repeat 10]
       [--levels none,high] [--calibration FILE] [--explain] [--json OUT]
Prints a table and, with --json, writes one JSON object.  A benchmark: it asserts nothing.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundles", nargs="+")
    ap.add_argument("--cores", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--calibration", default=None,
                    help="default: this CPU's among schedules/calibration/, else any there (interference.lookup)")
    ap.add_argument("--levels", default=None, help="comma-separated levels (default: every calibrated one)")
    ap.add_argument("--explain", action="store_true", help="also time every call alone and in the sequence")
    ap.add_argument("--json", dest="json_out")
    a = ap.parse_args()
    from mtcc.bench.prediction import measure
    from mtcc.interference import machine

    report = {"vcpu_sharing_before": machine.vcpu_sharing(),
              "settings": {"cores": a.cores, "rounds": a.rounds, "repeat": a.repeat}, "models": []}
    for path in a.bundles:
        result = measure(path, cores=a.cores, rounds=a.rounds, repeat=a.repeat, calibration=a.calibration,
                         levels=a.levels.split(",") if a.levels else None, explain=a.explain)
        report["models"].append(result)
        report["calibration"] = result["calibration"]
        for row in result["rows"]:
            line = (f"{result['model']:12s} {row['cell']:8s} predicted {row['predicted_ms']:8.3f} ms  measured "
                    f"{row['measured_ms']:8.3f} ms (IQR {row['spread_ms'][0]:.3f}-{row['spread_ms'][1]:.3f})  "
                    f"measured/predicted {row['measured_over_predicted']:.3f}")
            if "measured_over_calibrated" in row and not row["cell"].endswith("/none"):
                line += f", over none x tables' slowdown {row['measured_over_calibrated']:.3f}"
                by_round = row["measured_over_calibrated_by_round"]
                line += f" (by round {by_round['median']:.3f} ± {by_round['error']:.3f})"
            if "calls_alone_now_ms" in row:
                line += (f"  | now: calls alone {row['calls_alone_now_ms']:.3f} ms, cold "
                         f"{row['calls_alone_cold_now_ms']:.3f} ms, in sequence "
                         f"{row['calls_in_sequence_now_ms']:.3f} ms, measured/alone "
                         f"{row['measured_over_calls_alone_now']:.3f}, alone/tables {row['calls_alone_now_over_predicted']:.3f}")
            print(line, flush=True)
            chosen = row.get("selected")
            if chosen:
                print(f"{'':12s} {'':8s} selector switches {len(row['switched_tasks'])} tasks: predicted gain "
                      f"{100 * chosen['predicted_gain']:.1f} %, measured selected/default {chosen['measured_ratio']:.3f} "
                      f"± {chosen['measured_ratio_error']:.3f} over {chosen['rounds']} rounds "
                      f"(faster in {chosen['rounds_faster']})", flush=True)
            else:
                print(f"{'':12s} {'':8s} selector keeps the default variants", flush=True)
    report["vcpu_sharing_after"] = machine.vcpu_sharing()
    print(f"vCPU sharing before: {report['vcpu_sharing_before'].get('state')}, "
          f"after: {report['vcpu_sharing_after'].get('state')}")
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Two bundles of one model, before and after a change, timed side by side in one process.

    .venv/bin/python benchmarks/bundles_ab.py OLD.mtcc NEW.mtcc                  # 1 and 2 threads
    .venv/bin/python benchmarks/bundles_ab.py OLD.mtcc NEW.mtcc --threads 2 --runs 4000 --json

For each thread count a fresh process (TVM's pool reads its thread count once) pinned to
that many cores loads both bundles and runs their call plans (`bundle.run`: inputs in,
outputs out) in turns, alternating which goes first, `--runs` times each on the same
seeded random inputs; it prints each one's median and interquartile range and the ratio
new / old of the medians.  On these shared VMs `mtcc profile` in separate processes,
one after the other, swung 0.6-1.3x between rounds for the same pair; in turns in one
process, drift hits both alike.  Each bundle runs right after the other's run, so both
start with caches the other one filled (as beside another tenant).  A benchmark: it
asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def measure(old: str, new: str, runs: int, warmup: int) -> dict:
    """In this process (pool size and affinity already set): both bundles in turns."""
    import numpy as np

    import mtcc

    bundles = {"old": mtcc.load(old), "new": mtcc.load(new)}
    if bundles["old"].inputs != bundles["new"].inputs:
        raise SystemExit(f"{old} and {new} take different inputs: not two builds of one model")
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(i["shape"]).astype(i["dtype"]) for i in bundles["old"].inputs]
    for bundle in bundles.values():
        for _ in range(warmup):
            bundle.run(*inputs)
    times = {name: [] for name in bundles}
    for k in range(runs):
        for name in (("old", "new") if k % 2 == 0 else ("new", "old")):
            start = time.perf_counter()
            bundles[name].run(*inputs)
            times[name].append(time.perf_counter() - start)
    out = {}
    for name, samples in times.items():
        q1, median, q3 = (float(v) * 1e3 for v in np.percentile(samples, [25, 50, 75]))
        out[name] = {"median_ms": round(median, 4), "iqr_ms": [round(q1, 4), round(q3, 4)]}
    out["new_over_old"] = round(out["new"]["median_ms"] / out["old"]["median_ms"], 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--threads", type=int, action="append", help="repeatable (default: 1 and 2)")
    parser.add_argument("--runs", type=int, default=2000, help="runs of each bundle per thread count")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:  # the per-thread-count process
        print(json.dumps(measure(args.old, args.new, args.runs, args.warmup)))
        return

    from pinned import run_child

    report = {"old": args.old, "new": args.new, "runs": args.runs, "results": []}
    for threads in args.threads or [1, 2]:
        result = {"threads": threads, **run_child(__file__, [args.old, args.new, "--runs", str(args.runs),
                                                              "--warmup", str(args.warmup), "--child", str(threads)],
                                                  threads)}
        report["results"].append(result)
        if not args.json:
            print(f"{threads} thread(s): old {result['old']['median_ms']:.3f} ms (IQR {result['old']['iqr_ms']}), "
                  f"new {result['new']['median_ms']:.3f} ms (IQR {result['new']['iqr_ms']}), "
                  f"new/old {result['new_over_old']:.3f}")
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()

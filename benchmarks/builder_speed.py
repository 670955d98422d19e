#!/usr/bin/env python3
"""Seconds per trial: MetaSchedule's LocalBuilder against mtcc's WarmBuilder.

Same task, same budget, same runner, same seed, one run after the other in one
process (a benchmark: it prints the ratio and asserts nothing).

    .venv/bin/python benchmarks/builder_speed.py [--model examples/models/transformer.onnx]
        [--task fused_matmul3_add1_divide1_erf_add2_multiply_multiply1] [--trials 32] [--per-iter 16]
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time

import tvm.s_tir.meta_schedule as ms

from mtcc import frontend
from mtcc.frontend import tasks
from mtcc.tune.builder import WarmBuilder
from mtcc.target import make_target
from mtcc.tune.driver import make_runner


def tune_once(task, target, builder, trials: int, per_iter: int) -> dict:
    with tempfile.TemporaryDirectory() as work:
        contexts, weights = ms.relax_integration.extracted_tasks_to_tune_contexts([task], work, seed=0)
        db = ms.database.MemoryDatabase()
        start = time.perf_counter()
        ms.tune_tasks(tasks=contexts, task_weights=[float(w) for w in weights], work_dir=work,
                      max_trials_global=trials, num_trials_per_iter=per_iter, builder=builder,
                      runner=make_runner(None), database=db, cost_model="xgb")
        wall = time.perf_counter() - start
        records = db.get_all_tuning_records()
        valid = [r for r in records if r.run_secs and float(r.run_secs[0]) < 1e9]
    return {"trials": len(records), "valid": len(valid), "wall_s": round(wall, 1),
            "seconds_per_trial": round(wall / max(1, len(records)), 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="examples/models/transformer.onnx")
    ap.add_argument("--task", default=None, help="task name (default: the one with the most FLOPs)")
    ap.add_argument("--trials", type=int, default=32)
    ap.add_argument("--per-iter", type=int, default=16)
    args = ap.parse_args()
    logging.getLogger("tvm.s_tir.meta_schedule").setLevel(logging.WARNING)

    target = make_target("x86-64-v4")
    _, mod = frontend.import_model(args.model)
    fused = tasks.legalize_and_fuse(mod, target)
    extracted = ms.relax_integration.extract_tasks(fused, target)
    if args.task:
        task = next(t for t in extracted if t.task_name == args.task)
    else:
        from tvm.s_tir.analysis import estimate_tir_flops
        task = max(extracted, key=lambda t: estimate_tir_flops(t.dispatched[0]))
    print(f"task {task.task_name}: {args.trials} trials in batches of {args.per_iter}", file=sys.stderr)

    results = {}
    warm = WarmBuilder()
    try:
        results["WarmBuilder"] = tune_once(task, target, warm, args.trials, args.per_iter)
    finally:
        warm.shutdown()
    results["LocalBuilder"] = tune_once(task, target, ms.builder.LocalBuilder(), args.trials, args.per_iter)
    ratio = results["LocalBuilder"]["seconds_per_trial"] / results["WarmBuilder"]["seconds_per_trial"]
    for name, r in results.items():
        print(f"{name:>12}: {r['trials']} trials ({r['valid']} valid) in {r['wall_s']} s = "
              f"{r['seconds_per_trial']} s/trial", file=sys.stderr)
    print(f"LocalBuilder / WarmBuilder seconds per trial: {ratio:.1f}x", file=sys.stderr)
    print(json.dumps({"task": task.task_name, "results": results, "ratio_local_over_warm": round(ratio, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

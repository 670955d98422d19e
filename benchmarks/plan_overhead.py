"""The call plan's Python call loop against the Relax VM, on the same (untuned) kernels.

    .venv/bin/python benchmarks/plan_overhead.py                       # the example transformer
    .venv/bin/python benchmarks/plan_overhead.py examples/models/squeezenet.onnx --repeats 20
    .venv/bin/python benchmarks/plan_overhead.py MODEL.onnx --mcpu x86-64-v3 --cores 2 --json

Every model is lowered without a tuning database, then run two ways over the same
PrimFuncs: the VM's `main` on TVM tensors, and `PlanExecutor.run_range(0, n)` over
preset inputs (mtcc.bundle.plan says why the calls are the same).  The two alternate
run by run; each is the best of `--repeats`.  Prints the ratio plan/VM (the goal is
<= 1.05); asserts nothing.  Timings on a shared, loaded machine are noisy: say so when
quoting them.  (Formerly tests/test_plan.py::test_overhead_vs_vm.)
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def bench_one(model: Path, mcpu: str, cores: int, repeats: int) -> dict:
    import tvm

    from mtcc import frontend
    from mtcc.bench import baselines
    from mtcc.frontend import tasks
    from mtcc.packing import plan_builder
    from mtcc.runtime.executor import PlanExecutor
    from mtcc.target import make_target
    from mtcc.tune import compile as build

    target = make_target(mcpu, cores)
    info, mod = frontend.import_model(model)
    plan, prim_funcs = plan_builder.make_plan(tasks.legalize_and_fuse(mod, target))
    ex = PlanExecutor(plan_builder.build_library(prim_funcs, target), plan)
    vm_main = build.compile_module(mod, target).session().vm["main"]
    feeds = baselines.random_inputs(info, 0)
    inputs = [feeds[i.name] for i in info.inputs]
    args = [tvm.runtime.tensor(a) for a in inputs]
    ex.set_inputs(*inputs)

    fns = {"vm": lambda: vm_main(*args), "plan": lambda: ex.run_range(0, len(ex))}
    best = {name: float("inf") for name in fns}
    for fn in fns.values():  # warm-up
        fn()
    for r in range(repeats):
        for name in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
            t = time.perf_counter()
            fns[name]()
            best[name] = min(best[name], time.perf_counter() - t)
    return {"model": info.name, "target": f"{mcpu}/{cores}c", "calls": len(ex),
            "vm_ms": round(best["vm"] * 1e3, 3), "plan_ms": round(best["plan"] * 1e3, 3),
            "ratio": round(best["plan"] / best["vm"], 3)}


def main(argv=None) -> int:
    from mtcc.target import host_portable_mcpu

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="*", type=Path,
                   help="ONNX models (default: examples/models/transformer.onnx)")
    p.add_argument("--mcpu", default=None, help="default: the newest portable level this CPU runs")
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5, help="runs per side; each side is the best of them")
    p.add_argument("--json", action="store_true", help="one JSON object per model on stdout")
    args = p.parse_args(argv)
    models = args.models or [ROOT / "examples" / "models" / "transformer.onnx"]
    missing = [m for m in models if not m.exists()]
    if missing:
        raise SystemExit(f"plan_overhead: no such model {missing[0]} (`make models` makes the examples)")
    mcpu = args.mcpu or host_portable_mcpu()
    for model in models:
        r = bench_one(model, mcpu, args.cores, args.repeats)
        if args.json:
            print(json.dumps(r))
        else:
            print(f"{r['model']} ({r['target']}, {r['calls']} calls): VM {r['vm_ms']:.2f} ms, "
                  f"plan {r['plan_ms']:.2f} ms, plan/VM {r['ratio']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

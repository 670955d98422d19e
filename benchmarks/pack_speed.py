"""Pack time, bundle size, load time, and the call-plan executor against the Relax VM.

    .venv/bin/python benchmarks/pack_speed.py examples/models/transformer.onnx=schedules/transformer/llvm-x86-64-v4
    .venv/bin/python benchmarks/pack_speed.py                 # every example model with a schedules folder
    .venv/bin/python benchmarks/pack_speed.py MODEL=DIR --repeats 200 --json

For every MODEL=SCHEDULES pair: `mtcc.pack` into a temporary folder (wall time, bundle
size), `mtcc.load` (median of a few loads), then latency of the bundle's call-plan
executor (default variants: the database's best, or variants.json's defaults) against
the Relax VM built by `mtcc.compile` from the same schedules.  Latencies are medians of
interleaved runs (VM, plan, VM, plan, ... with the order flipped every round), both in
this process on the same TVM thread pool, measured two ways:

- kernels: the VM's `main` on TVM tensors vs `run_range(0, n)` over preset inputs;
- end to end: numpy in, numpy out (`Session.run` vs `LoadedBundle.run`).

Prints the numbers; asserts nothing (the goal is plan/VM <= 1.05).  Timings on a
shared, loaded machine are noisy: say so when quoting them.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _pairs(specs: list[str]) -> list[tuple[Path, Path]]:
    if specs:
        out = []
        for spec in specs:
            model, sep, sched = spec.partition("=")
            if not sep:
                raise SystemExit(f"pack_speed: expected MODEL=SCHEDULES, got {spec!r}")
            out.append((Path(model), Path(sched)))
        return out
    found = []
    for name in ("squeezenet", "inception_v1", "resnet50", "transformer"):
        sched = ROOT / "schedules" / name / "llvm-x86-64-v4"
        if (sched / "database_tuning_record.json").exists():
            found.append((ROOT / "examples" / "models" / f"{name}.onnx", sched))
    if not found:
        raise SystemExit("pack_speed: no schedules folder found; give MODEL=SCHEDULES")
    return found


def _interleaved(fns: dict, repeats: int, warmup: int) -> dict:
    names = list(fns)
    for _ in range(warmup):
        for n in names:
            fns[n]()
    samples = {n: [] for n in names}
    for r in range(repeats):
        for n in (names if r % 2 == 0 else names[::-1]):
            t = time.perf_counter()
            fns[n]()
            samples[n].append(time.perf_counter() - t)
    return {n: statistics.median(s) * 1e3 for n, s in samples.items()}


def bench_one(model: Path, schedules: Path, repeats: int, warmup: int, tmp: Path) -> dict:
    tmp = Path(tempfile.mkdtemp(dir=tmp))
    import numpy as np
    import tvm

    import mtcc
    from mtcc import frontend
    from mtcc.bench import baselines

    # Work on a copy: a schedules folder may be appended to by a running tune, and
    # mtcc.compile's loader repairs (rewrites) a torn file in place.
    import shutil

    copy = tmp / f"{model.stem}-schedules"
    copy.mkdir()
    for name in ("database_workload.json", "database_tuning_record.json", "tune.json", "variants.json"):
        if (schedules / name).is_file():
            shutil.copyfile(schedules / name, copy / name)
    source, schedules = schedules, copy
    out = tmp / f"{model.stem}.mtcc"
    t = time.perf_counter()
    packed = mtcc.pack(model, schedules, out)
    pack_s = time.perf_counter() - t
    loads = []
    for _ in range(3):
        t = time.perf_counter()
        loaded = mtcc.load(out)
        loads.append(time.perf_counter() - t)

    info = frontend.load(model)
    feeds = baselines.random_inputs(info, 0)
    arrays = [feeds[i.name] for i in info.inputs]
    compiled = mtcc.compile(model, schedules=schedules)
    session = compiled.session()
    want = session.run(*arrays)
    got = loaded.run(*arrays)
    max_err = max(float(np.abs(g - w).max()) for g, w in zip(got, want))

    vm_main = session.vm["main"]
    vm_args = [tvm.runtime.tensor(np.ascontiguousarray(a)) for a in arrays]
    ex = loaded.executor
    ex.set_inputs(*arrays)
    n = len(ex)
    kernels = _interleaved({"vm": lambda: vm_main(*vm_args), "plan": lambda: ex.run_range(0, n)}, repeats, warmup)
    e2e = _interleaved({"vm": lambda: session.run(*arrays), "plan": lambda: loaded.run(*arrays)}, repeats, warmup)
    return {
        "model": model.stem, "schedules": str(source), "pack_s": round(pack_s, 2),
        "bundle_bytes": packed["size"], "variants": packed["variants"], "functions": packed["functions"],
        "blocks": packed["blocks"], "calls": packed["calls"], "variants_source": packed["variants_source"],
        "load_ms": round(statistics.median(loads) * 1e3, 2), "vm_compile_s": round(compiled.seconds, 2),
        "max_abs_diff_plan_vs_vm": max_err,
        "kernels_ms": {"vm": round(kernels["vm"], 3), "plan": round(kernels["plan"], 3),
                       "ratio": round(kernels["plan"] / kernels["vm"], 3)},
        "end_to_end_ms": {"vm": round(e2e["vm"], 3), "plan": round(e2e["plan"], 3),
                          "ratio": round(e2e["plan"] / e2e["vm"], 3)},
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pairs", nargs="*", metavar="MODEL=SCHEDULES")
    ap.add_argument("--repeats", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="mtcc-pack-speed-") as tmp:
        for model, sched in _pairs(args.pairs):
            print(f"[pack_speed] {model.stem}: packing with {sched}", file=sys.stderr)
            rows.append(bench_one(model, sched, args.repeats, args.warmup, Path(tmp)))
    report = {"machine": {"cores": sorted(os.sched_getaffinity(0)), "loadavg": os.getloadavg(),
                          "tvm_num_threads": os.environ.get("TVM_NUM_THREADS")},
              "repeats": args.repeats, "results": rows}
    if args.json:
        print(json.dumps(report))
        return
    print(f"{'model':<14}{'pack s':>8}{'size MB':>9}{'variants':>9}{'blocks':>7}{'load ms':>9}"
          f"{'VM ms':>9}{'plan ms':>9}{'ratio':>7}{'e2e ratio':>10}{'max|diff|':>11}")
    for r in rows:
        k, e = r["kernels_ms"], r["end_to_end_ms"]
        label = r["model"] + ("+v" if r["variants_source"] == "variants.json" else "")
        print(f"{label:<14}{r['pack_s']:>8.2f}{r['bundle_bytes'] / 1e6:>9.2f}{r['variants']:>9}{r['blocks']:>7}"
              f"{r['load_ms']:>9.1f}{k['vm']:>9.3f}{k['plan']:>9.3f}{k['ratio']:>7.3f}{e['ratio']:>10.3f}"
              f"{r['max_abs_diff_plan_vs_vm']:>11.1e}")
    print("(+v: packed with a variants.json; its defaults may differ from the VM's best records)")
    print(f"(medians of {args.repeats} interleaved runs; load average {report['machine']['loadavg'][0]:.1f} "
          f"on {len(report['machine']['cores'])} cores)")


if __name__ == "__main__":
    main()

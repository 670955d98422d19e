#!/usr/bin/env python3
"""What `make demo` runs after `mtcc inspect`: the squeezenet example (or the model
named on the command line) through the whole flow with the committed schedules, no
tuning needed:

1. compiled with TVM's default schedules and with the committed tuned schedules, each
   checked against ONNX Runtime on the same input and timed beside it on 1 core;
2. packed into one verified bundle, loaded, run, its variants listed, one task
   switched to another variant and run again (same outputs: same function);
3. what to run next.

Exit code: 0 when every output matches ONNX Runtime, 1 when one does not, 3 when this
CPU cannot run the code (the committed schedules need AVX-512).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

import mtcc
from mtcc import frontend
from mtcc.bench import baselines
from mtcc.bench.qos import example_bundle_path, example_schedules
from mtcc.runtime.loader import pin_cores
from mtcc.target import PORTABLE_MCPU, host_portable_mcpu, make_target
from mtcc.tune.compile import compile_module

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 1e-3


def median_ms(fn, repeat: int = 10) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def max_diff(got, want) -> float:
    return max(float(np.abs(g - w).max()) for g, w in zip(got, want))


def compare(console, name, path, schedules, model, mod, feeds, ort, want, mcpu) -> float:
    """Default vs tuned vs ONNX Runtime on 1 core; returns the worst difference."""
    args = [feeds[i.name] for i in model.inputs]
    builds = [("mtcc, TVM default schedules", compile_module(mod, make_target(mcpu, 1)), 3)]
    if (schedules / "database_tuning_record.json").exists():
        builds.append((f"mtcc, tuned ({schedules.relative_to(ROOT)})", mtcc.compile(path, schedules, target=mcpu), 20))
    table = Table(title=f"{name}: 1 core, median ms (each timed beside ONNX Runtime)", title_justify="left")
    for col in ("system", "compile s", "median ms", "x ONNX Runtime", "max |diff| vs ORT"):
        table.add_column(col)
    worst = 0.0
    for label, compiled, repeat in builds:
        session = compiled.session()
        err = max_diff(session.run(*args), want)
        worst = max(worst, err)
        tvm_ms = median_ms(lambda: session.run(*args), repeat=repeat)
        ort_ms = median_ms(lambda: ort.run(feeds), repeat=20)
        table.add_row(label, f"{compiled.seconds:.1f}", f"{tvm_ms:.2f}", f"{tvm_ms / ort_ms:.2f}", f"{err:.2e}")
    table.add_row("ONNX Runtime, 1 thread", "-", f"{median_ms(lambda: ort.run(feeds), repeat=20):.2f}", "1.00", "-")
    console.print(table)
    return worst


def bundle_tour(console, name, path, schedules, feeds, want, mcpu) -> tuple[float, Path]:
    """Pack, load, run, list the variants, switch one task's variant, run again."""
    bundle_path = example_bundle_path(ROOT, name, mcpu)
    bundle_path.parent.mkdir(exist_ok=True)
    packed = mtcc.pack(path, schedules, bundle_path, target=mcpu)
    bundle = mtcc.load(bundle_path)
    err = max_diff(bundle.run(feeds), want)
    console.print(f"packed {bundle_path.relative_to(ROOT)}: {packed['size'] / 1e6:.1f} MB, {packed['tasks']} tasks, "
                  f"{packed['variants']} variants, {packed['blocks']} blocks, sha256 {packed['sha256'][:16]}; "
                  f"loaded and run: max |diff| vs ONNX Runtime {err:.2e}")
    several = {task: [v.id for v in vs] for task, vs in bundle.variants.items() if len(vs) > 1}
    if several:
        task, ids = max(several.items(), key=lambda kv: len(kv[1]))
        console.print(f"{len(several)} tasks have more than one variant; e.g. {task}: {', '.join(ids)} "
                      f"(default {ids[0]}; every id: `mtcc inspect {bundle_path.relative_to(ROOT)}` "
                      f"or bundle.variants)")
        bundle.select({task: ids[-1]})
        switched = max_diff(bundle.run(feeds), want)
        console.print(f"bundle.select({{{task!r}: {ids[-1]!r}}}) -> now runs {bundle.chosen()[task]}; "
                      f"max |diff| vs ONNX Runtime {switched:.2e}")
        err = max(err, switched)
    return err, bundle_path


def main() -> int:
    console = Console(stderr=True, width=120)
    name = sys.argv[1] if len(sys.argv) > 1 else "squeezenet"
    path = ROOT / "examples" / "models" / f"{name}.onnx"
    pin_cores(1)  # before TVM's pool starts: everything below runs on one core
    model, mod = frontend.import_model(path)
    feeds = baselines.random_inputs(model, seed=0)
    ort = baselines.OnnxRuntime(model, threads=1)
    want = ort.run(feeds)
    # Schedules tuned for this CPU's level where committed; else the AVX-512 (x86-64-v4)
    # records built for the newest level it runs: same outputs, slower.
    mcpu = host_portable_mcpu()
    schedules = example_schedules(ROOT, name, mcpu)
    if schedules.name != f"llvm-{mcpu}":
        console.print(f"[yellow]this CPU has no AVX-512 and no schedules tuned for {mcpu} are committed for {name}: "
                      f"the {PORTABLE_MCPU} schedules are built for {mcpu} here (same outputs, slower than on the "
                      f"CPUs they were tuned for)[/yellow]")
    try:
        worst = compare(console, name, path, schedules, model, mod, feeds, ort, want, mcpu)
        bundle_path = None
        if (schedules / "database_tuning_record.json").exists():
            err, bundle_path = bundle_tour(console, name, path, schedules, feeds, want, mcpu)
            worst = max(worst, err)
    except mtcc.MtccError as e:
        console.print(f"[red]mtcc: error: {e}[/red]")
        return e.exit_code
    ok = worst < TOLERANCE
    console.print(("[green]every output matches ONNX Runtime[/green]" if ok else
                   f"[red]outputs differ from ONNX Runtime by {worst:.2e} (> {TOLERANCE})[/red]"))
    rel = bundle_path.relative_to(ROOT) if bundle_path else "build/MODEL.mtcc"
    console.print(f"""
[bold]Next[/bold]
  make test                                       the test suite (pytest -m "not slow": the quick part)
  .venv/bin/mtcc inspect {rel}               manifest, blocks, variants and their latency tables
  .venv/bin/mtcc run {rel} --input IN.npz --output OUT.npz --cores 1
  .venv/bin/mtcc inspect schedules/                 what the variants are worth under interference
  .venv/bin/mtcc bench --single examples/models/{name}.onnx    latency against ONNX Runtime and OpenVINO
  .venv/bin/mtcc tune MODEL.onnx --target {mcpu} --trials 1200   tune your own model (about 1-2 s a trial)""")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

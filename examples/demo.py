#!/usr/bin/env python3
"""The demo `make demo` runs: the squeezenet example compiled with TVM's default
schedules and with the committed tuned schedules (no tuning needed), each checked
against ONNX Runtime on the same input and timed beside it on 1 thread."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

import mtcc
from mtcc import baselines, build, frontend
from mtcc.target import PORTABLE_MCPU, make_target

ROOT = Path(__file__).resolve().parent.parent


def median_ms(fn, repeat: int = 10) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def main() -> int:
    console = Console(stderr=True, width=120)
    name = sys.argv[1] if len(sys.argv) > 1 else "squeezenet"
    path = ROOT / "examples" / "models" / f"{name}.onnx"
    model, mod = frontend.import_model(path)
    target = make_target(PORTABLE_MCPU, 1)
    feeds = baselines.random_inputs(model, seed=0)
    args = [feeds[i.name] for i in model.inputs]

    build.set_num_threads(1)
    ort = baselines.OnnxRuntime(model, threads=1)
    want = ort.run(feeds)
    schedules = ROOT / "schedules" / name / f"llvm-{PORTABLE_MCPU}"
    builds = [("mtcc, default schedules", build.compile_module(mod, target), 3)]
    if (schedules / "database_tuning_record.json").exists():
        builds.append((f"mtcc, tuned ({schedules.relative_to(ROOT)})",
                       mtcc.compile(path, schedules), 20))

    table = Table(title=f"{name}: 1 thread, median ms (interleaved with ONNX Runtime)")
    for col in ("system", "compile s", "median ms", "x ONNX Runtime", "max |diff| vs ORT"):
        table.add_column(col)
    worst = 0.0
    for label, compiled, repeat in builds:
        session = compiled.session()
        got = session.run(*args)
        err = max(float(np.abs(g - w).max()) for g, w in zip(got, want))
        worst = max(worst, err)
        tvm_ms = median_ms(lambda: session.run(*args), repeat=repeat)
        ort_ms = median_ms(lambda: ort.run(feeds), repeat=20)
        table.add_row(label, f"{compiled.seconds:.1f}", f"{tvm_ms:.2f}", f"{tvm_ms / ort_ms:.2f}", f"{err:.2e}")
    table.add_row("ONNX Runtime 1 thread", "-", f"{median_ms(lambda: ort.run(feeds), repeat=20):.2f}", "1.00", "-")
    console.print(table)

    if len(builds) > 1:  # the deployable form: one verified bundle, run through its call plan
        bundle_path = ROOT / "build" / f"{name}.mtcc"
        bundle_path.parent.mkdir(exist_ok=True)
        packed = mtcc.pack(path, schedules, bundle_path)
        bundle = mtcc.load(bundle_path)
        got = bundle.run(*args)
        err = max(float(np.abs(g - w).max()) for g, w in zip(got, want))
        worst = max(worst, err)
        console.print(f"packed {bundle_path.relative_to(ROOT)}: {packed['size'] / 1e6:.1f} MB, "
                      f"{packed['variants']} variants, {packed['blocks']} blocks, sha256 {packed['sha256'][:16]}; "
                      f"loaded and run: max |diff| vs ONNX Runtime {err:.2e}")
    return 0 if worst < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())

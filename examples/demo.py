#!/usr/bin/env python3
"""The demo `make demo` runs: mtcc on the squeezenet example, end to end as far as
the project goes today, checked against ONNX Runtime on the same input."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

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
    console = Console(stderr=True)
    name = sys.argv[1] if len(sys.argv) > 1 else "squeezenet"
    path = ROOT / "examples" / "models" / f"{name}.onnx"
    model, mod = frontend.import_model(path)
    target = make_target(PORTABLE_MCPU, 1)
    feeds = baselines.random_inputs(model, seed=0)
    args = [feeds[i.name] for i in model.inputs]

    build.set_num_threads(1)
    compiled = build.compile_module(mod, target)
    session = compiled.session()
    ort = baselines.OnnxRuntime(model, threads=1)
    got, want = session.run(*args), ort.run(feeds)
    err = max(float(np.abs(g - w).max()) for g, w in zip(got, want))

    table = Table(title=f"{name}: TVM (untuned, default schedules) vs ONNX Runtime, 1 thread")
    for col in ("system", "median ms", "max |diff| vs ORT"):
        table.add_column(col)
    tvm_ms = median_ms(lambda: session.run(*args), repeat=3)
    ort_ms = median_ms(lambda: ort.run(feeds), repeat=20)
    table.add_row("mtcc/TVM untuned", f"{tvm_ms:.1f}", f"{err:.2e}")
    table.add_row("ONNX Runtime", f"{ort_ms:.2f}", "-")
    console.print(table)
    console.print(f"compile {compiled.seconds:.1f} s; untuned is {tvm_ms / ort_ms:.0f}x slower than ONNX Runtime: "
                  "that is what `mtcc tune` wins back.")
    return 0 if err < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())

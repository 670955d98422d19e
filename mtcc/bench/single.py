"""`mtcc bench --single`: isolated latency of tuned models against ONNX Runtime and
OpenVINO, on the same input, same cores, interleaved in one run.  mtcc is timed twice:
through TVM's Relax VM (`mtcc`) and through the bundle's call-plan executor
(`mtcc-plan`, what `mtcc run` and the server's tenants run; packed here from the same
schedules), with the ratio between them.  The plan runs, block by block, the variants the
runtime's table selector picks for that many cores alone (level none), as a tenant
holding those cores would: a variant tuned for 1 core where the bundle has one.

One worker process per thread count, pinned to the first N cores, runs every system
in turn (mtcc, ORT, OpenVINO, mtcc, ORT, ...) so drift of a shared VM hits all of
them alike; warm-up first, then the median of `repeats` runs per system.  On more
than one thread each timed run follows a pause and one untimed run, so no system is
timed beside another's still-spinning thread pool.  The mtcc
library is compiled once here and loaded by each worker (TVM reads its thread count
when its pool starts, so a fresh process per thread count is the honest way).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import BadInput, MtccError
from ..interference import machine
from ..threads import tenant_thread_env

SYSTEMS = ("mtcc", "mtcc-plan", "onnxruntime", "openvino", "openvino-default")
SETTLE_S = 0.02  # longer than any pool's spin-wait after a run (TVM's with the tenants' limit: ~2 ms)


def _percentiles(times_s: list[float]) -> dict:
    ms = np.asarray(times_s) * 1e3
    return {"p50_ms": round(float(np.median(ms)), 4), "p90_ms": round(float(np.percentile(ms, 90)), 4),
            "p99_ms": round(float(np.percentile(ms, 99)), 4), "mean_ms": round(float(ms.mean()), 4),
            "min_ms": round(float(ms.min()), 4), "runs": int(ms.size)}


def _worker(spec: dict) -> dict:
    """Runs in a fresh process: TVM_NUM_THREADS and affinity are already set."""
    import tvm
    from tvm import relax

    from .. import frontend
    from ..runtime.placement import LanePlacement
    from ..tune.compile import flatten_outputs
    from .baselines import OnnxRuntime, OpenVino, random_inputs

    threads = spec["threads"]
    cores = sorted(os.sched_getaffinity(0))[:threads]
    # mtcc's pool (this thread's: the Relax VM and the plan executor share it) one thread
    # per core while mtcc runs; the baselines run on this thread too, so it gets its cores
    # back after each call (placement.py: why one per core)
    placement = None

    def pinned(fn):
        def run():
            with placement.holding(cores):
                return fn()
        return run

    out = []
    for item in spec["models"]:
        model = frontend.load(item["model"], item.get("input_shapes"))
        feeds = random_inputs(model, seed=0)
        args = [feeds[i.name] for i in model.inputs]
        runners = {}
        vm = relax.VirtualMachine(tvm.runtime.load_module(item["library"]), tvm.cpu())
        dev_args = [tvm.runtime.tensor(a, tvm.cpu()) for a in args]

        if placement is None:
            placement = LanePlacement()
            placement.start_pool(lambda: vm["main"](*dev_args))  # this thread's first parallel call
        runners["mtcc"] = pinned(lambda vm=vm, dev_args=dev_args: vm["main"](*dev_args))
        if item.get("bundle"):
            from ..runtime.loader import load

            loaded = load(item["bundle"])
            switched = _select_for_cores(loaded, item["bundle"], threads)
            plan_args = [feeds[i["name"]] for i in loaded.inputs]
            runners["mtcc-plan"] = pinned(lambda ex=loaded.executor, plan_args=plan_args: ex.run(*plan_args))
        ort = OnnxRuntime(model, threads)
        runners["onnxruntime"] = lambda ort=ort, feeds=feeds: ort.run(feeds)
        errors = {}
        for name, precision in (("openvino", "f32"), ("openvino-default", None)):
            if name not in spec["systems"]:
                continue
            try:
                ov = OpenVino(model, threads, precision=precision)
                runners[name] = lambda ov=ov, feeds=feeds: ov.run(feeds)
            except MtccError as e:
                errors[name] = str(e)
        runners = {k: v for k, v in runners.items() if k in spec["systems"]}

        # numerics on the benchmark input, against ONNX Runtime
        reference = ort.run(feeds)
        max_err = {}
        for name, fn in runners.items():
            values = [np.asarray(g.numpy() if hasattr(g, "numpy") else g) for g in flatten_outputs(fn())]
            max_err[name] = float(max(np.abs(v - r).max() for v, r in zip(values, reference)))

        for _ in range(spec["warmup"]):
            for fn in runners.values():
                fn()
        # Every system keeps a thread pool whose idle workers spin for a while after a
        # run (TVM ~ms, ONNX Runtime, OpenVINO's TBB): right after another system they
        # would still hold the cores.  So each turn waits for the previous system's
        # pool to go idle (untimed), runs once untimed to wake its own pool, then times
        # one run: every system is measured hot, none beside another's spinning pool.
        settle = SETTLE_S if threads > 1 else 0.0
        times = {name: [] for name in runners}
        for _ in range(spec["repeats"]):
            for name, fn in runners.items():  # interleaved: drift hits every system alike
                if settle:
                    time.sleep(settle)
                    fn()
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        for name, samples in times.items():
            out.append({"system": name, "policy": None, "model": model.name, "threads": threads,
                        **_percentiles(samples), "max_abs_err_vs_onnxruntime": max_err[name],
                        **({"variants_switched": switched} if name == "mtcc-plan" else {})})
        for name, why in errors.items():
            out.append({"system": name, "model": model.name, "threads": threads, "skipped": why})
    return {"results": out}


def _select_for_cores(loaded, bundle_path, cores: int) -> dict[str, str]:
    """Make the loaded bundle run, per block, the table selector's choice for `cores`
    alone; returns {task: variant id} where that is not the default."""
    from ..runtime.profile import ModelProfile
    from ..runtime.selector import make_selector

    profile = ModelProfile(loaded.manifest, loaded.plan.to_dict(), loaded.selector, str(bundle_path))
    switched = {}
    for block, choice in enumerate(make_selector("table").choose_all(profile, cores, "none")):
        loaded.select(choice, block=block)
        switched.update({task: vid for task, vid in choice.items() if vid != profile.default[task]})
    return switched


def _vcpu_state() -> str:
    return machine.vcpu_sharing().get("state", "unknown")


def bench_single(models: list[dict], threads=(1, 2), repeats: int = 20, warmup: int = 3,
                 systems=SYSTEMS, progress=print) -> dict:
    """models: [{"model": path, "schedules": dir or None, "input_shapes": [...]}]."""
    from .. import api
    from ..cpu import check_can_run

    if repeats < 1:
        raise BadInput("--repeats must be at least 1")
    from ..target import host_portable_mcpu
    from ..tune.database import read_meta, searched_elsewhere, searched_on

    cores = sorted(os.sched_getaffinity(0))
    threads = [t for t in threads if t <= len(cores)] or [1]
    started = time.time()
    target = host_portable_mcpu()  # the newest level this CPU runs (the schedules' own where it can)
    here = machine.description()
    with tempfile.TemporaryDirectory(prefix="mtcc-bench-") as tmp:
        items = []
        for k, m in enumerate(models):
            progress(f"compiling {m['model']} with {m.get('schedules') or 'default schedules'}")
            meta = read_meta(m["schedules"]) if m.get("schedules") else {}
            elsewhere = searched_elsewhere(meta, here)
            if elsewhere:
                progress(f"note: {m['model']}: {elsewhere}")
            compiled = api.compile(m["model"], m.get("schedules"), target=target, input_shapes=m.get("input_shapes"))
            check_can_run(compiled.target, f"bench {m['model']}")
            lib = os.path.join(tmp, f"model{k}.so")
            compiled.executable.export_library(lib)
            bundle = None
            if m.get("schedules") and "mtcc-plan" in systems:
                from ..packing import pack

                progress(f"packing {m['model']}: the call plan the runtime runs")
                bundle = os.path.join(tmp, f"model{k}.mtcc")
                pack(m["model"], m["schedules"], bundle, input_shapes=m.get("input_shapes"), target=target)
            items.append({"model": str(m["model"]), "library": lib, "bundle": bundle,
                          "input_shapes": m.get("input_shapes"),
                          "schedules": str(m["schedules"]) if m.get("schedules") else None,
                          "schedules_searched_on": searched_on(meta)})
        before = _vcpu_state()
        results = []
        for n in threads:
            progress(f"measuring on {n} thread(s), cores {cores[:n]}: warm-up {warmup}, {repeats} interleaved runs")
            spec = {"threads": n, "models": items, "repeats": repeats, "warmup": warmup, "systems": list(systems)}
            # the tenants' spin limit: TVM's default pool spins ~240 ms after a run, over
            # the next system's timed runs
            env = dict(os.environ, **tenant_thread_env(n), OMP_NUM_THREADS=str(n))
            proc = subprocess.run(
                ["taskset", "-c", ",".join(map(str, cores[:n])), sys.executable, "-m", "mtcc.bench.single",
                 "--worker", json.dumps(spec)], capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                raise MtccError(f"benchmark worker failed on {n} thread(s): "
                                f"{(proc.stderr.strip().splitlines() or ['?'])[-1]}")
            results.extend(json.loads(proc.stdout.strip().splitlines()[-1])["results"])
        after = _vcpu_state()

    ort = {(r["model"], r["threads"]): r["p50_ms"] for r in results if r["system"] == "onnxruntime"}
    for r in results:
        base = ort.get((r["model"], r["threads"]))
        if "p50_ms" in r and base:
            r["ratio_to_onnxruntime"] = round(r["p50_ms"] / base, 3)
    summary = {f"{r['model']}@{r['threads']}t": r["ratio_to_onnxruntime"]
               for r in results if r["system"] == "mtcc" and "ratio_to_onnxruntime" in r}
    vm = {(r["model"], r["threads"]): r["p50_ms"] for r in results if r["system"] == "mtcc" and "p50_ms" in r}
    plan_vs_vm = {}
    for r in results:
        if r["system"] == "mtcc-plan" and "p50_ms" in r and vm.get((r["model"], r["threads"])):
            r["ratio_to_relax_vm"] = round(r["p50_ms"] / vm[(r["model"], r["threads"])], 3)
            plan_vs_vm[f"{r['model']}@{r['threads']}t"] = r["ratio_to_relax_vm"]
    return {
        "machine": {**here, "vcpu_sharing_before": before, "vcpu_sharing_after": after},
        "config": {"mode": "single", "target": target, "threads": list(threads), "repeats": repeats, "warmup": warmup,
                   "systems": list(systems),
                   "models": [{k: i[k] for k in ("model", "schedules", "schedules_searched_on")} for i in items],
                   "seconds": round(time.time() - started, 1)},
        "results": results,
        "summary": {"mtcc_ratio_to_onnxruntime": summary, "plan_executor_ratio_to_relax_vm": plan_vs_vm},
    }


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--worker":
    result = _worker(json.loads(sys.argv[2]))
    sys.stdout.write(json.dumps(result) + "\n")

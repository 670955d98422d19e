"""Where a bundle's time goes (`mtcc profile`): every call of its plan timed through the
plan executor -- what `mtcc run`, `mtcc.load` and the server's tenants run -- on the
cores this process was given, with the variant each call ran.

Each of `repeat` inferences runs the calls one by one with a timer around each (and
says how much of its wall time fell between the calls: the executor's Python loop);
as many plain runs (no per-call timers) are interleaved with them for the whole
inference's time.  Medians throughout; seeded random inputs.
"""
from __future__ import annotations

import statistics
import time

from .baselines import random_feeds


def profile_calls(loaded, repeat: int = 20, warmup: int = 3, seed: int = 0) -> dict:
    """The report of `mtcc profile` for a LoadedBundle (variants as selected on it)."""
    executor = loaded.executor
    feeds = random_feeds(loaded.inputs, seed)
    arrays = [feeds[i["name"]] for i in loaded.inputs]
    count = len(executor)
    for _ in range(warmup):
        executor.run(*arrays)
    per_call: list[list[float]] = [[] for _ in range(count)]
    whole: list[float] = []
    between: list[float] = []  # a timed run's wall time less its calls' (same run)
    for _ in range(repeat):
        executor.set_inputs(*arrays)
        start = time.perf_counter()
        executor.run_range(0, count)
        whole.append(time.perf_counter() - start)
        start = time.perf_counter()
        times = executor.call_times()
        between.append(time.perf_counter() - start - sum(times))
        for k, seconds in enumerate(times):
            per_call[k].append(seconds)

    manifest = loaded.manifest
    flops_of = {t["name"]: float(t.get("flops") or 0.0) for t in manifest.get("tasks", [])}
    kind_of = {t["name"]: t.get("kind") for t in manifest.get("tasks", [])}
    variant_of = {(task, v.function): v.id for task, vs in loaded.variants.items() for v in vs}
    block_of = {}
    for k, b in enumerate(loaded.blocks):
        for c in range(int(b["start"]), int(b["end"])):
            block_of[c] = int(b.get("index", k))
    us = [statistics.median(times) * 1e6 for times in per_call]
    total_us = sum(us) or 1.0

    calls = []
    for k, (call, function) in enumerate(zip(loaded.plan.calls, executor.choice)):
        flops = flops_of.get(call.task, 0.0)
        calls.append({"index": k, "task": call.task, "function": function,
                      "variant": variant_of.get((call.task, function), function), "block": block_of.get(k),
                      "us": round(us[k], 2), "share": round(us[k] / total_us, 4), "flops": flops,
                      "gflops_per_s": _rate(flops, us[k])})
    tasks: dict[str, dict] = {}
    for c in calls:
        t = tasks.setdefault(c["task"], {"task": c["task"], "kind": kind_of.get(c["task"]), "calls": 0, "us": 0.0,
                                         "flops": 0.0, "variants": []})
        t["calls"] += 1
        t["us"] += c["us"]
        t["flops"] += c["flops"]
        if c["variant"] not in t["variants"]:
            t["variants"].append(c["variant"])
    for t in tasks.values():
        t["us"] = round(t["us"], 2)
        t["share"] = round(t["us"] / total_us, 4)
        t["gflops_per_s"] = _rate(t["flops"], t["us"])
    blocks = []
    for k, b in enumerate(loaded.blocks):
        start, end = int(b["start"]), int(b["end"])
        block_us = sum(us[start:end])
        blocks.append({"index": int(b.get("index", k)), "start": start, "end": end, "us": round(block_us, 2),
                       "share": round(block_us / total_us, 4)})
    whole_us = statistics.median(whole) * 1e6
    total_flops = sum(c["flops"] for c in calls)
    return {
        "bundle": str(loaded.path), "model": manifest["model"]["name"], "target": manifest["target"].get("mcpu"),
        "repeat": repeat, "warmup": warmup,
        "whole_ms": round(whole_us / 1e3, 4), "sum_of_calls_ms": round(total_us / 1e3, 4),
        "between_calls_ms": round(statistics.median(between) * 1e3, 4),
        "flops": total_flops, "gflops_per_s": _rate(total_flops, whole_us),
        "tasks": sorted(tasks.values(), key=lambda t: -t["us"]), "blocks": blocks, "calls": calls,
    }


def _rate(flops: float, us: float) -> float | None:
    return round(flops / us / 1e3, 2) if flops and us > 0 else None

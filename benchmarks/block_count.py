#!/usr/bin/env python3
"""How many layer blocks: the same models packed with 1, 2, 4, ... blocks at most (the
pack's `--max-blocks`, `--min-block-us 0` so the count is what the rule's cuts allow),
served by mtcc.Server under one policy on the same seeded Poisson load, the block
counts interleaved in every round so drift of a shared machine hits all alike, with
the same absolute latency targets for every count (factor x the whole model's isolated
latency on all cores, measured by the first server).

Per block count and model: blocks, p50/p99 ms, share within target, the conflict rate
(units granted fewer cores than planned / all units), units per request, and the
median block and boundary µs.  Prints one JSON object; asserts nothing.

Usage: benchmarks/block_count.py [--model squeezenet --model transformer] [--blocks 1 2 4 8 16]
       [--policy block] [--rate 10] [--duration 10] [--rounds 2] [--qos-factor 2] [--seed 0]
Bundles go to build/blocks/<model>-<max blocks>.mtcc (packed once, for this CPU's level).
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bundles_for(models: list[str], max_blocks: int) -> dict[str, Path]:
    """Each example model packed from its committed schedules with at most `max_blocks`."""
    import mtcc
    from mtcc.bench.qos import example_bundle_path, example_schedules
    from mtcc.target import host_portable_mcpu

    out = {}
    mcpu = host_portable_mcpu()
    for name in models:
        path = ROOT / "build" / "blocks" / f"{example_bundle_path(ROOT, name, mcpu).stem}-{max_blocks}.mtcc"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            print(f"packing {path.relative_to(ROOT)}", flush=True)
            mtcc.pack(ROOT / "examples" / "models" / f"{name}.onnx", example_schedules(ROOT, name, mcpu),
                      path, target=mcpu, max_blocks=max_blocks, min_block_us=0.0)
        out[name] = path
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="example model (repeatable; default squeezenet, transformer)")
    ap.add_argument("--blocks", type=int, nargs="+", default=[1, 2, 4, 8, 16], help="max blocks per bundle")
    ap.add_argument("--policy", default="block")
    ap.add_argument("--rate", type=float, default=10.0, help="requests per second, per model")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--qos-factor", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    import mtcc
    from mtcc.bench.baselines import random_feeds
    from mtcc.bench.load import serve_load
    from mtcc.interference import machine

    models = a.model or ["squeezenet", "transformer"]
    bundles = {k: bundles_for(models, k) for k in a.blocks}
    before = machine.vcpu_sharing().get("state")
    qos_ms, feeds, blocks = None, {}, {k: {} for k in a.blocks}
    results = {k: [] for k in a.blocks}
    for rnd in range(a.rounds):
        for k in a.blocks:
            with mtcc.Server({n: str(p) for n, p in bundles[k].items()}, policy=a.policy, qos_ms=qos_ms) as server:
                if qos_ms is None:  # the first server's isolated latencies fix every count's targets
                    qos_ms = {n: a.qos_factor * m.isolated_ms for n, m in server.models.items()}
                    feeds = {n: random_feeds(m.profile.inputs) for n, m in server.models.items()}
                blocks[k] = {n: len(m.profile.blocks) for n, m in server.models.items()}
                served = serve_load(server, a.rate, a.duration, a.seed + rnd, feeds, qos_ms)
            results[k].append({"round": rnd, **served})
    after = machine.vcpu_sharing().get("state")

    def mean(runs, model, key):
        values = [r["models"][model][key] for r in runs if r["models"][model].get(key) is not None]
        return round(statistics.fmean(values), 4) if values else None

    summary = {str(k): {n: {"blocks": blocks[k][n],
                            **{key: mean(runs, n, key) for key in ("within_qos", "p50_ms", "p99_ms", "conflict_rate",
                                                                   "block_us", "boundary_us")},
                            "units_per_request": round(sum(r["models"][n]["units"] for r in runs)
                                                       / max(1, sum(r["models"][n]["served"] for r in runs)), 3)}
                        for n in models}
               for k, runs in results.items()}
    print(json.dumps({"machine": {"cpu": machine.cpu_model(), "cores": machine.cores(),
                                  "vcpu_sharing_before": before, "vcpu_sharing_after": after},
                      "config": {"models": models, "max_blocks": a.blocks, "min_block_us": 0.0, "policy": a.policy,
                                 "rate_per_model": a.rate, "duration_s": a.duration, "rounds": a.rounds,
                                 "seed": a.seed, "qos_factor": a.qos_factor, "qos_ms": qos_ms},
                      "summary": summary, "runs": {str(k): v for k, v in results.items()}}, indent=1))


if __name__ == "__main__":
    main()

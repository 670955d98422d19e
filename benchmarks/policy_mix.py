#!/usr/bin/env python3
"""The same seeded Poisson load over a two-model mix, served by mtcc.Server under each
scheduling policy in turn (rounds interleave the policies, so drift of a shared machine
hits all alike), with the same absolute latency targets for every policy.

Per policy: p50/p99/mean ms and share within target per model, the conflict rate
(units granted fewer cores than planned / all units), units per request, and the
block-boundary cost.  Prints one JSON object; asserts nothing.

Usage: benchmarks/policy_mix.py A.mtcc B.mtcc [--rate 20] [--duration 10] [--rounds 2]
       [--policy model-fcfs --policy block ...] [--qos-factor 2] [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from mtcc.bench.baselines import random_feeds
from mtcc.bench.load import serve_load
from mtcc.interference import machine
from mtcc.runtime.policies import POLICIES


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundles", nargs="+", type=Path)
    ap.add_argument("--rate", type=float, default=20.0, help="requests per second, per model")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--policy", action="append", choices=sorted(POLICIES))
    ap.add_argument("--qos-factor", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    import mtcc

    policies = a.policy or list(POLICIES)
    before = machine.vcpu_sharing().get("state")
    qos_ms, feeds, names = None, {}, {}
    results = {p: [] for p in policies}
    for rnd in range(a.rounds):
        for policy in policies:
            with mtcc.Server([str(b) for b in a.bundles], policy=policy, qos_ms=qos_ms) as server:
                if qos_ms is None:  # the first server's isolated latencies fix every policy's targets
                    qos_ms = {n: a.qos_factor * m.isolated_ms for n, m in server.models.items()}
                    feeds = {n: random_feeds(m.profile.inputs) for n, m in server.models.items()}
                    for n, m in server.models.items():
                        names[n] = {"isolated_ms": m.isolated_ms, "by_cores": m.isolated_by_cores,
                                    "blocks": len(m.profile.blocks)}
                served = serve_load(server, a.rate, a.duration, a.seed + rnd, feeds, qos_ms)
            results[policy].append({"round": rnd, **served})
    after = machine.vcpu_sharing().get("state")
    summary = {}
    for policy, runs in results.items():
        summary[policy] = {n: {k: round(statistics.fmean(r["models"][n][k] for r in runs
                                                          if r["models"][n].get(k) is not None), 4)
                               for k in ("within_qos", "p50_ms", "p99_ms", "conflict_rate")}
                           for n in names}
    print(json.dumps({"machine": {"cpu": machine.cpu_model(), "cores": machine.cores(),
                                  "vcpu_sharing_before": before, "vcpu_sharing_after": after},
                      "config": {"bundles": [str(b) for b in a.bundles], "rate_per_model": a.rate,
                                 "duration_s": a.duration, "rounds": a.rounds, "seed": a.seed,
                                 "qos_ms": qos_ms, "models": names},
                      "summary": summary, "runs": results}, indent=1))


if __name__ == "__main__":
    main()

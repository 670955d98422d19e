#!/usr/bin/env python3
"""What the multi-tenant runtime costs, measured side by side in one run:

- one request through an idle `mtcc.Server` (one model, all cores) against
  `bundle.run` in this process on the same cores, interleaved rounds, each after the
  same idle gap and with the same TVM pool spin limit as the tenants (TVM's default
  keeps this process's workers spinning ~240 ms after a run: warm caches for
  `bundle.run` and two pools fighting over the cores): the ratio;
- a block boundary inside the tenant (stop-point check, variant selection) and a core
  grant (thread count + re-pinning), in µs and as a share of the median block;
- the scheduler round trip (unit sent -> started in the tenant, finished -> seen by
  the server), which the design pays per unit, not per block;
- where one served request's time goes (`request_us_medians`): submit -> first unit
  sent, -> started in the tenant, in the tenant, back to the server between units,
  and the rest up to `result()` returning (the last reply and the caller's wake-up).

Usage: benchmarks/runtime_costs.py BUNDLE [--rounds 10] [--per-round 5] [--gap-ms 20] [--policy block-adaptive]
Prints one JSON object.  A benchmark: it asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def vcpu_state() -> str:
    from mtcc.interference import machine

    return machine.vcpu_sharing().get("state", "unknown")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--per-round", type=int, default=5)
    ap.add_argument("--policy", default="block-adaptive")
    ap.add_argument("--gap-ms", type=float, default=20.0, help="idle time before every timed request")
    a = ap.parse_args()

    import os

    from mtcc.threads import tenant_thread_env

    # the tenants' pool settings for this process too, before its pool starts (pin_cores
    # below sets the thread count)
    os.environ.update(tenant_thread_env(len(os.sched_getaffinity(0))))

    import numpy as np

    import mtcc
    from mtcc.runtime.loader import pin_cores

    before = vcpu_state()
    cores = pin_cores(len(os.sched_getaffinity(0)))  # bundle.run's pool: one thread per core, as a lane's
    bundle = mtcc.load(a.bundle)
    rng = np.random.default_rng(0)
    feeds = {i["name"]: rng.standard_normal(i["shape"]).astype(i["dtype"]) for i in bundle.inputs}
    direct, served, parts = [], [], []
    with mtcc.Server({"m": a.bundle}, cores=cores, policy=a.policy) as server:
        for _ in range(3):  # warm both
            bundle.run(feeds)
            server.submit("m", feeds).result()
        for _ in range(a.rounds):
            for _ in range(a.per_round):
                time.sleep(a.gap_ms / 1e3)
                start = time.perf_counter()
                bundle.run(feeds)
                direct.append((time.perf_counter() - start) * 1e3)
            for _ in range(a.per_round):
                time.sleep(a.gap_ms / 1e3)
                start = time.perf_counter()
                future = server.submit("m", feeds)
                future.result()
                served.append((time.perf_counter() - start) * 1e3)
                parts.append({**future.spent_us, "after_tenant": served[-1] * 1e3 - sum(future.spent_us.values())})
        stats = server.stats()["models"]["m"]
    after = vcpu_state()
    block = stats["block_us_median"] or 0
    print(json.dumps({
        "bundle": str(a.bundle), "cores": cores, "policy": a.policy, "gap_ms": a.gap_ms,
        "spin_count": os.environ["TVM_THREAD_POOL_SPIN_COUNT"],
        "vcpu_sharing_before": before, "vcpu_sharing_after": after,
        "bundle_run_ms_median": round(statistics.median(direct), 3),
        "server_ms_median": round(statistics.median(served), 3),
        "overhead_ratio": round(statistics.median(served) / statistics.median(direct), 4),
        "block_us_median": block,
        "boundary_us_median": stats["boundary_us_median"],
        # a one-block model has no boundary to measure
        "boundary_share_of_block": (round(stats["boundary_us_median"] / block, 5)
                                    if block and stats["boundary_us_median"] is not None else None),
        "grant_us_median": stats["grant_us_median"],
        "round_trip_us_median": stats["round_trip_us_median"],
        # its halves at boundaries inside a request: the lane's wake-up, the server's
        "to_tenant_us_median": stats["to_tenant_us_median"],
        "to_server_us_median": stats["to_server_us_median"],
        "units": stats["units"], "boundaries": stats["boundaries"],
        # where one served request's time goes, µs (medians): submit -> first unit sent,
        # sent -> started in the tenant, in the tenant, back to the server between units,
        # and the rest (the last reply and the caller's wake-up: submit -> result() returned)
        "request_us_medians": {k: round(statistics.median(p[k] for p in parts), 1) for k in parts[0]} if parts else None,
    }, indent=1))


if __name__ == "__main__":
    main()

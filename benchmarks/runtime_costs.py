#!/usr/bin/env python3
"""What the multi-tenant runtime costs, measured side by side in one run:

- one request through an idle `mtcc.Server` (one model, all cores for the whole model:
  by default policy model-fcfs and a target no smaller core count meets) against
  `bundle.run` in this process on the same cores, interleaved rounds, each after the
  same idle gap and with the same TVM pool spin limit as the tenants (TVM's default
  keeps this process's workers spinning ~240 ms after a run: warm caches for
  `bundle.run` and two pools fighting over the cores): the ratio;
- a block boundary inside the tenant (stop-point check, variant selection) and a core
  grant (thread count + re-pinning), in µs and as a share of the median block;
- the scheduler round trip (unit sent -> started in the tenant, finished -> seen by
  the server), which the design pays per unit, not per block;
- the floor under it: a bare pipe round trip to another process after the same gap;
- where one served request's time goes (`request_us_medians`): submit -> first unit
  sent, -> started in the tenant, in the tenant, back to the server between units,
  and the rest up to `result()` returning (the last reply and the caller's wake-up).

Usage: benchmarks/runtime_costs.py BUNDLE [--rounds 10] [--per-round 5] [--settle 2] [--gap-ms 20] [--policy model-fcfs]

(With a block policy or a looser target the server may run blocks on fewer cores than
`bundle.run` -- its policy's choice, not an overhead -- and the ratio mixes the two.)
Prints one JSON object.  A benchmark: it asserts nothing.
"""
from __future__ import annotations

import argparse
import collections
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_NO_COUNT_MEETS_MS = 1e-3  # the policies then plan every core (the fastest) for every unit


def vcpu_state() -> str:
    from mtcc.interference import machine

    return machine.vcpu_sharing().get("state", "unknown")


def _echo(conn) -> None:
    while (msg := conn.recv()) is not None:
        conn.send(msg)


def pipe_round_trip_us(gap_ms: float, n: int = 60) -> float:
    """The floor of any two-process design here: a small message to a process blocked on
    a pipe and back, after the same idle gap (median µs).  An idle vCPU of these VMs
    takes ~0.3 ms to wake; back to back the same round trip takes ~0.08 ms."""
    import multiprocessing

    ours, theirs = multiprocessing.Pipe()
    child = multiprocessing.get_context("fork").Process(target=_echo, args=(theirs,), daemon=True)
    child.start()
    took = []
    for _ in range(n):
        time.sleep(gap_ms / 1e3)
        start = time.perf_counter()
        ours.send({"op": "run", "start": 0, "end": 43})
        ours.recv()
        took.append((time.perf_counter() - start) * 1e6)
    ours.send(None)
    child.join(5)
    return statistics.median(took)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--per-round", type=int, default=5)
    # Alternating one by one, each side ran on the other process's leftovers: bundle.run
    # after a served request took 15.3 ms against 9.9 ms after its own (squeezenet, 2
    # vCPUs), a cache effect, not an overhead.  So each round's first runs of a side are
    # not counted.
    ap.add_argument("--settle", type=int, default=2, help="runs of each side not counted after the switch")
    ap.add_argument("--policy", default="model-fcfs")
    ap.add_argument("--qos-ms", type=float, default=None,
                    help="the model's target (default: one no core count meets, so every grant is all cores)")
    ap.add_argument("--gap-ms", type=float, default=20.0, help="idle time before every timed request")
    a = ap.parse_args()

    import os

    from mtcc.threads import tenant_thread_env

    floor_us = pipe_round_trip_us(a.gap_ms)  # before TVM starts threads: forking then is safe
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
    direct, served, parts, grants = [], [], [], collections.Counter()
    qos_ms = a.qos_ms if a.qos_ms is not None else TARGET_NO_COUNT_MEETS_MS
    with mtcc.Server({"m": a.bundle}, cores=cores, policy=a.policy, qos_ms={"m": qos_ms}) as server:
        def run_here():  # its pool one thread per core, as a lane's (placement.py)
            with bundle.pinned(cores):
                bundle.run(feeds)

        for _ in range(3):  # warm both
            run_here()
            server.submit("m", feeds).result()
        for _ in range(a.rounds):
            for k in range(a.settle + a.per_round):
                time.sleep(a.gap_ms / 1e3)
                start = time.perf_counter()
                run_here()
                if k >= a.settle:
                    direct.append((time.perf_counter() - start) * 1e3)
            for k in range(a.settle + a.per_round):
                time.sleep(a.gap_ms / 1e3)
                start = time.perf_counter()
                future = server.submit("m", feeds)
                future.result()
                if k < a.settle:
                    continue
                served.append((time.perf_counter() - start) * 1e3)
                grants.update(future.grants)
                parts.append({**future.spent_us, "after_tenant": served[-1] * 1e3 - sum(future.spent_us.values())})
        stats = server.stats()["models"]["m"]
    after = vcpu_state()
    block = stats["block_us_median"] or 0
    print(json.dumps({
        "bundle": str(a.bundle), "cores": cores, "policy": a.policy, "qos_ms": qos_ms, "gap_ms": a.gap_ms,
        "rounds": a.rounds, "per_round": a.per_round, "settle": a.settle,
        "grants": {f"calls {start}-{end} on {cores} cores": n for (start, end, cores), n in sorted(grants.items())},
        "spin_count": os.environ["TVM_THREAD_POOL_SPIN_COUNT"],
        "vcpu_sharing_before": before, "vcpu_sharing_after": after,
        "bundle_run_ms_median": round(statistics.median(direct), 3),
        "server_ms_median": round(statistics.median(served), 3),
        "overhead_ratio": round(statistics.median(served) / statistics.median(direct), 4),
        # what a served request spends outside its unit's run, and the part of it any
        # two-process design pays here
        "outside_tenant_us_median": round(statistics.median(p["to_first_unit"] + p["to_tenant"] + p["to_server"]
                                                            + p["after_tenant"] for p in parts), 1),
        "pipe_round_trip_us_median": round(floor_us, 1),
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

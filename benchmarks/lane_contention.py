#!/usr/bin/env python3
"""Does a lane slow another lane of its model more as a thread of the same process than
as another process?

A tenant runs a model's lanes as threads of one process, each with its own executor and
TVM pool pinned one thread per granted core.  On a lent 16-core Xeon (2026-11-27, `mtcc
bench` light mix at 100 req/s) a squeezenet unit on 15 cores took 3.96 ms median (max
6.9) when it ran alone, and up to 42 ms (and 70 ms on 13 cores) when another lane of the
same tenant ran beside it on the remaining core; beside the other model's tenant it never
did.  This measures that directly: the victim runs the bundle on every core but the last
(this process's main thread, pinned as a lane pins), and the side runs it on the last
core, back to back, in three cases measured in alternating batches:

  alone    -- the side paused;
  thread   -- the side is a thread of this process (its own executor and pool, pinned as
              a lane is: what a second lane of the same tenant is);
  process  -- the side is another process (what a lane would be as its own process).

Each case's victim latencies (median, p90, max) and median / alone.  It also reports
whether the kernel honours thread affinity (a pinned spinning thread's CPU, sampled from
/proc): in some sandboxes (gVisor) it is only recorded.

Usage: benchmarks/lane_contention.py BUNDLE [--rounds 5] [--per-round 20] [--gap-ms 2] [--json OUT]
A benchmark: it prints a table and asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

# The side as another process: tenant_interference's neighbour, the bundle on one core,
# inferences back to back.
from tenant_interference import NEIGHBOUR as SIDE_PROCESS  # noqa: E402 - a sibling script


def affinity_honoured(core: int, samples: int = 20) -> dict:
    """Pin a spinning thread to `core` and read which CPU it is on, from /proc."""
    seen, stop = [], threading.Event()
    tid_box = []

    def spin():
        tid_box.append(threading.get_native_id())
        os.sched_setaffinity(0, {core})
        while not stop.is_set():
            pass

    t = threading.Thread(target=spin, daemon=True)
    t.start()
    time.sleep(0.05)
    for _ in range(samples):
        try:
            fields = Path(f"/proc/self/task/{tid_box[0]}/stat").read_text().rsplit(")", 1)[1].split()
            seen.append(int(fields[36]))  # field 39 of stat: the CPU it last ran on
        except (OSError, IndexError, ValueError):
            pass
        time.sleep(0.005)
    stop.set()
    t.join()
    return {"core": core, "cpus_seen": sorted(set(seen)), "honoured": bool(seen) and set(seen) == {core}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--per-round", type=int, default=20)
    ap.add_argument("--gap-ms", type=float, default=2.0, help="idle time between the victim's runs")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        sys.exit("needs 2 cores or more")
    victim_cores, side_core = cores[:-1], cores[-1]
    from mtcc.threads import tenant_thread_env

    os.environ.update(tenant_thread_env(len(cores)))  # every pool starts at the most cores, as in a tenant
    from mtcc.bench.baselines import random_feeds
    from mtcc.interference import machine
    from mtcc.runtime.executor import PlanExecutor, device_weights
    from mtcc.runtime.loader import load
    from mtcc.runtime.placement import LanePlacement

    vcpu_before = machine.vcpu_sharing().get("state")
    bundle = load(args.bundle)
    feeds = random_feeds(bundle.inputs, 1)
    arrays = [feeds[i["name"]] for i in bundle.inputs]
    weights = device_weights(bundle.plan)

    # The victim: this thread, pinned as a lane pins.
    victim = PlanExecutor(bundle.lib, bundle.plan, weights=weights)
    victim_place = LanePlacement()
    victim_place.start_pool(lambda: victim.run(*arrays))
    victim_place.apply(victim_cores)

    # The side as a thread of this process: a second lane.
    side_go, side_quit, side_ready = threading.Event(), threading.Event(), threading.Event()
    side_runs = [0]

    def side_lane():
        ex = PlanExecutor(bundle.lib, bundle.plan, weights=weights)
        place = LanePlacement()
        place.start_pool(lambda: ex.run(*arrays))
        place.apply([side_core])
        side_ready.set()
        while not side_quit.is_set():
            if side_go.wait(0.05):
                ex.run(*arrays)
                side_runs[0] += 1

    side_thread = threading.Thread(target=side_lane, daemon=True)
    side_thread.start()
    side_ready.wait()

    # The side as another process, stopped while it is not measured.
    env = {**os.environ, "TVM_NUM_THREADS": "1", "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    side_proc = subprocess.Popen([sys.executable, "-c", SIDE_PROCESS, str(args.bundle)], env=env,
                                 stdout=subprocess.PIPE, text=True,
                                 preexec_fn=lambda: os.sched_setaffinity(0, {side_core}))
    if side_proc.stdout.readline().strip() != "ready":
        sys.exit("the side process did not start")
    side_proc.send_signal(signal.SIGSTOP)

    def batch() -> list[float]:
        out = []
        for _ in range(args.per_round):
            time.sleep(args.gap_ms / 1e3)
            start = time.perf_counter()
            victim.run(*arrays)
            out.append((time.perf_counter() - start) * 1e3)
        return out

    cases = ("alone", "thread", "process")
    ms: dict[str, list[float]] = {c: [] for c in cases}
    try:
        for r in range(args.rounds):
            for case in cases[r % 3:] + cases[:r % 3]:  # rotate the order: drift hits all alike
                if case == "thread":
                    side_go.set()
                elif case == "process":
                    side_proc.send_signal(signal.SIGCONT)
                time.sleep(0.02)
                ms[case] += batch()
                side_go.clear()
                side_proc.send_signal(signal.SIGSTOP)
                time.sleep(0.02)
    finally:
        side_quit.set()
        side_proc.kill()
    affinity = affinity_honoured(side_core)
    vcpu_after = machine.vcpu_sharing().get("state")

    alone = statistics.median(ms["alone"])
    report = {"bundle": str(args.bundle), "cores": len(cores), "victim_cores": len(victim_cores),
              "side_core": side_core, "rounds": args.rounds, "per_round": args.per_round, "gap_ms": args.gap_ms,
              "affinity": affinity, "vcpu_sharing_before": vcpu_before, "vcpu_sharing_after": vcpu_after,
              "cases": {}}
    print(f"{args.bundle.name}: victim on {len(victim_cores)} cores, side on core {side_core}; "
          f"affinity honoured: {affinity['honoured']} (saw CPUs {affinity['cpus_seen']}); "
          f"vCPUs {vcpu_before} -> {vcpu_after}")
    print(f"{'side':10s} {'median ms':>10s} {'p90':>8s} {'max':>8s} {'/ alone':>8s}")
    for case in cases:
        v = sorted(ms[case])
        row = {"median_ms": round(statistics.median(v), 3), "p90_ms": round(v[int(0.9 * (len(v) - 1))], 3),
               "max_ms": round(v[-1], 3), "ratio_to_alone": round(statistics.median(v) / alone, 3), "ms": v}
        report["cases"][case] = row
        print(f"{case:10s} {row['median_ms']:10.3f} {row['p90_ms']:8.3f} {row['max_ms']:8.3f} {row['ratio_to_alone']:8.3f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    else:
        print(json.dumps({k: v for k, v in report.items() if k != "cases"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""How much real tenants slow each other: every example model beside every other one.

The victim runs in this process on the first core (1 thread, the plan executor, as a
tenant's lane runs it); the neighbour is another process on the next core running
inferences of its model back to back, as a busy tenant would.  Alone and beside are
measured in alternating batches (drift of the shared VM hits both alike); the cell is
median(beside) / median(alone).  With a third core the victim is also measured beside
two copies of the neighbour (--copies N, repeatable, picks the counts: on a many-core
server, e.g. 15 copies load the shared LLC and memory bandwidth as a full server
would).  vCPU sharing is read before and after: on a time-shared
host every co-run reads about 2x and the matrix says nothing about caches.

Usage: benchmarks/tenant_interference.py [BUNDLE...] [--rounds 6] [--per-round 5] [--copies N]... [--json OUT]
(default: the example bundles for this CPU under build/, packed from the committed
schedules when missing).  A benchmark: it prints a matrix and asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ("squeezenet", "transformer", "inception_v1", "resnet50")

# The neighbour: one model on one core, inferences back to back until killed.
NEIGHBOUR = """
import sys
from mtcc.runtime.loader import load
from mtcc.bench.baselines import random_feeds
b = load(sys.argv[1]); feeds = random_feeds(b.inputs, 1)
arrays = [feeds[i["name"]] for i in b.inputs]
b.run(*arrays); print("ready", flush=True)
while True:
    b.executor.run(*arrays)
"""


def example_bundles() -> list[Path]:
    from mtcc.bench.qos import example_bundles as packed_examples

    return list(packed_examples(EXAMPLES, progress=lambda line: print(line, file=sys.stderr))[0].values())


def start_neighbours(bundle: Path, cores: list[int]) -> list[subprocess.Popen]:
    env = {**os.environ, "TVM_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = []
    for core in cores:
        p = subprocess.Popen([sys.executable, "-c", NEIGHBOUR, str(bundle)], env=env, stdout=subprocess.PIPE,
                             text=True, preexec_fn=lambda c=core: os.sched_setaffinity(0, {c}))
        procs.append(p)
    for p in procs:
        if p.stdout.readline().strip() != "ready":
            raise SystemExit(f"neighbour {bundle} did not start")
    return procs


def stop(procs) -> None:
    for p in procs:
        p.kill()
        p.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundles", nargs="*", type=Path)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--per-round", type=int, default=5)
    ap.add_argument("--copies", type=int, action="append",
                    help="neighbour copies, one per core (repeatable; default 1, and 2 where cores allow)")
    ap.add_argument("--json", type=Path, help="also write the report here")
    a = ap.parse_args()

    from mtcc.bench.baselines import random_feeds
    from mtcc.interference import machine
    from mtcc.runtime.loader import load, pin_cores

    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        raise SystemExit("needs 2 cores: the victim's and the neighbour's")
    before = machine.vcpu_sharing().get("state")  # before pinning: the tool needs both vCPUs
    victim_core = pin_cores(1)  # this process: the first core, one thread
    others = allowed[1:]
    bundles = a.bundles or example_bundles()
    victims = {}
    for path in bundles:
        b = load(path)
        feeds = random_feeds(b.inputs, 0)
        arrays = [feeds[i["name"]] for i in b.inputs]
        for _ in range(3):
            b.executor.run(*arrays)
        victims[b.manifest["model"]["name"]] = (b, arrays, path)

    def batch(name) -> list[float]:
        b, arrays, _ = victims[name]
        out = []
        for _ in range(a.per_round):
            start = time.perf_counter()
            b.executor.run(*arrays)
            out.append((time.perf_counter() - start) * 1e3)
        return out

    counts = sorted(set(a.copies or [1, 2]))
    too_many = [c for c in counts if c < 1 or c > len(others)]
    if a.copies and too_many:
        raise SystemExit(f"--copies {too_many[0]}: between 1 and {len(others)} here (one core each, beside the victim's)")
    setups = [(n, c) for c in counts if c <= len(others) for n in victims]
    cells = []
    for victim in victims:
        for neighbour, copies in setups:
            alone, beside = [], []
            procs = []
            try:
                for _ in range(a.rounds):
                    alone += batch(victim)
                    procs = start_neighbours(victims[neighbour][2], others[:copies])
                    beside += batch(victim)
                    stop(procs)
                    procs = []
            finally:
                stop(procs)
            ratio = statistics.median(beside) / statistics.median(alone)
            cells.append({"victim": victim, "neighbour": neighbour, "copies": copies,
                          "alone_ms": round(statistics.median(alone), 3), "beside_ms": round(statistics.median(beside), 3),
                          "slowdown": round(ratio, 3)})
            print(f"{victim:13s} beside {copies} x {neighbour:13s} {ratio:5.2f}x "
                  f"({statistics.median(alone):.2f} -> {statistics.median(beside):.2f} ms)", file=sys.stderr)
    os.sched_setaffinity(0, allowed)
    after = machine.vcpu_sharing().get("state")
    report = {"machine": {"cpu": machine.cpu_model(), "cores": allowed, "victim_core": victim_core,
                          "vcpu_sharing_before": before, "vcpu_sharing_after": after},
              "config": {"rounds": a.rounds, "per_round": a.per_round, "copies": counts,
                         "bundles": [Path(v[2]).name for v in victims.values()]},
              "cells": cells}
    names = list(victims)
    for count in sorted({c["copies"] for c in cells}):
        print(f"slowdown of the row model beside {count} cop{'y' if count == 1 else 'ies'} of the column model "
              "(median beside / alone)")
        print(f"{'':14s}" + "".join(f"{n:>14s}" for n in names))
        for v in names:
            row = {c["neighbour"]: c["slowdown"] for c in cells if c["victim"] == v and c["copies"] == count}
            print(f"{v:14s}" + "".join(f"{row[n]:>13.2f}x" for n in names))
    print(f"vCPU sharing before: {before}; after: {after}")
    if a.json:
        a.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A/B of the block rule's settings on the real server: one policy with different
settings (attributes of its policy object: `slack`, `keep_core_for_tighter`,
`absorb_us`), beside `model-fcfs` as the reference, all servers open at once and
every trial interleaved round by round, on the same seeded load and the same absolute
targets (from the first server's isolated latencies).

Per trial: the worst model's share within target, per model share / p50 / p99 ms, the
conflict rate and the units per request; a summary averaged over the rounds; the
vCPU-sharing state before, after every round and after.  A benchmark: it asserts nothing.

Usage: benchmarks/policy_ab.py A.mtcc B.mtcc [--policy block] --set absorb_us=0 --set absorb_us=2000
       [--qos 2 --qos 4@1] [--rate 4 --rate 15] [--rounds 2] [--duration 4] [--min-requests 100] [--seed 0]
Each --set is one system (NAME=VALUE[,NAME=VALUE...]).  Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


def parse_settings(text: str) -> dict[str, float]:
    out = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {text!r}: expected NAME=VALUE[,NAME=VALUE...]")
        out[name.strip()] = float(value)
    return out


def apply_settings(policy, settings: dict[str, float]) -> None:
    """Set a policy object's settings (its attributes, each value in the attribute's own type)."""
    for name, value in settings.items():
        if not hasattr(policy, name):
            raise SystemExit(f"--set {name}: policy {policy.name} has no such setting")
        setattr(policy, name, type(getattr(policy, name))(value))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundles", nargs="+", type=Path)
    ap.add_argument("--policy", default="block")
    ap.add_argument("--set", dest="settings", action="append", required=True, type=parse_settings)
    ap.add_argument("--qos", action="append", help="target X or X@B (default 2 and 4@1)")
    ap.add_argument("--rate", type=float, action="append", help="requests/s, all models together (default 4, 15)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--duration", type=float, default=4.0)
    ap.add_argument("--min-requests", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    import mtcc
    from mtcc.bench.baselines import random_feeds
    from mtcc.bench.qos import parse_target, trial, trial_length
    from mtcc.interference import machine

    bundles = {mtcc.load(b).manifest["model"]["name"]: str(b) for b in a.bundles}
    systems = {"model-fcfs": ("model-fcfs", {})}
    for settings in a.settings:
        systems[f"{a.policy} " + ",".join(f"{k}={v:g}" for k, v in settings.items())] = (a.policy, settings)
    states = {"before": machine.vcpu_sharing().get("state"), "rounds": []}
    servers = {}
    try:
        for label, (policy, settings) in systems.items():
            servers[label] = server = mtcc.Server(bundles, policy=policy)
            apply_settings(server.policy, settings)
        first = servers["model-fcfs"]
        cores = len(first.cores)
        isolated = {n: m.isolated_by_cores for n, m in first.models.items()}
        targets = {t: {n: parse_target(t).ms(isolated[n], cores) for n in bundles} for t in (a.qos or ["2", "4@1"])}
        feeds = {n: random_feeds(m.profile.inputs) for n, m in first.models.items()}
        trials = []
        for rnd in range(a.rounds):
            for qos_label, qos in targets.items():
                for rate in a.rate or [4.0, 15.0]:
                    for label, server in servers.items():
                        server.set_qos(qos)
                        out = trial(server, list(bundles), rate, trial_length(rate, a.duration, a.min_requests),
                                    a.seed + 100 * rnd + int(rate), feeds, qos)
                        served = sum(1 for r in out["all_requests"] if r["latency_ms"] is not None)
                        row = {"round": rnd, "qos": qos_label, "rate": rate, "system": label, "share": out["share"],
                               "conflict_rate": out["conflict_rate"],
                               "units_per_request": round(out["units"] / max(1, served), 3),
                               "models": {n: {k: v[k] for k in ("within_qos", "p50_ms", "p99_ms")}
                                          for n, v in out["models"].items()}}
                        trials.append(row)
                        print(json.dumps(row), flush=True, file=sys.stderr)
            states["rounds"].append(machine.vcpu_sharing().get("state"))
    finally:
        for server in servers.values():
            server.close()
    states["after"] = machine.vcpu_sharing().get("state")

    summary = {}
    for row in trials:
        key = f"{row['qos']} @ {row['rate']:g} req/s"
        summary.setdefault(key, {}).setdefault(row["system"], []).append(row)
    for key, by_system in summary.items():
        for label, rows in by_system.items():
            by_system[label] = {
                "share": round(statistics.fmean(r["share"] for r in rows), 4),
                "units_per_request": round(statistics.fmean(r["units_per_request"] for r in rows), 3),
                "models": {n: {k: round(statistics.fmean(r["models"][n][k] for r in rows
                                                         if r["models"][n][k] is not None), 3)
                               for k in ("within_qos", "p50_ms", "p99_ms")} for n in rows[0]["models"]}}
    print(json.dumps({"machine": {"cpu": machine.cpu_model(), "cores": cores, "vcpu_sharing": states},
                      "config": {"bundles": bundles, "policy": a.policy, "systems": list(systems),
                                 "qos_ms": targets, "rounds": a.rounds, "duration_s": a.duration,
                                 "min_requests": a.min_requests, "seed": a.seed},
                      "summary": summary, "trials": trials}, indent=1))


if __name__ == "__main__":
    main()

"""Load against a running mtcc.Server: seeded Poisson arrivals over a mix of models,
sent at their arrival times, with every request's latency and outcome recorded.

    arrivals = poisson_arrivals({"sq": 20.0, "tf": 50.0}, duration_s=10, seed=0)
    result = drive(server, arrivals, feeds)      # {"requests": [...], "sent", "refused", ...}

A request counts from its arrival time (not from when the generator got around to
sending it), so a generator that falls behind does not flatter the server.
"""
from __future__ import annotations

import time

import numpy as np


def poisson_arrivals(rates: dict[str, float], duration_s: float, seed: int = 0) -> list[tuple[float, str]]:
    """[(seconds after start, model)] sorted by time: for each model, exponential
    inter-arrival gaps with its rate (requests per second), one seeded generator."""
    rng = np.random.default_rng(seed)
    out = []
    for model in sorted(rates):
        rate = float(rates[model])
        if rate <= 0:
            continue
        t = 0.0
        while True:
            t += float(rng.exponential(1.0 / rate))
            if t >= duration_s:
                break
            out.append((t, model))
    out.sort()
    return out


def drive(server, arrivals: list[tuple[float, str]], feeds: dict[str, dict], timeout_s: float = 300.0) -> dict:
    """Submit each arrival at its time; wait for all; per request: model, arrival,
    latency ms (None when it failed) and the error, if any."""
    from ..errors import MtccError

    start = time.monotonic()
    pending, refused = [], 0
    for at, model in arrivals:
        delay = start + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        late_ms = max(0.0, (time.monotonic() - start - at) * 1e3)  # the generator's own delay
        try:
            future = server.submit(model, feeds[model])
        except MtccError as e:  # QueueFull: a refusal is an outcome, not a crash
            pending.append((at, model, None, late_ms, str(e)))
            refused += 1
            continue
        pending.append((at, model, future, late_ms, None))
    requests = []
    for at, model, future, late_ms, error in pending:
        latency = None
        if future is not None:
            try:
                future.result(timeout=timeout_s)
                latency = round(late_ms + future.latency_ms, 3)
            except Exception as e:  # noqa: BLE001 - recorded per request
                error = f"{type(e).__name__}: {e}"
        requests.append({"model": model, "arrival_s": round(at, 6), "latency_ms": latency, "error": error})
    return {"requests": requests, "sent": len(arrivals) - refused, "refused": refused,
            "wall_s": round(time.monotonic() - start, 3)}


def summarize(requests: list[dict], qos_ms: dict[str, float]) -> dict:
    """Per model: count, p50/p99/mean ms of those served, share within its target
    (failed and refused requests count as missed)."""
    out = {}
    for model in sorted({r["model"] for r in requests}):
        mine = [r for r in requests if r["model"] == model]
        lat = sorted(r["latency_ms"] for r in mine if r["latency_ms"] is not None)
        within = sum(1 for r in mine if r["latency_ms"] is not None and r["latency_ms"] <= qos_ms[model])
        out[model] = {"requests": len(mine), "served": len(lat),
                      "p50_ms": round(float(np.percentile(lat, 50)), 3) if lat else None,
                      "p99_ms": round(float(np.percentile(lat, 99)), 3) if lat else None,
                      "mean_ms": round(float(np.mean(lat)), 3) if lat else None,
                      "within_qos": round(within / len(mine), 4) if mine else None}
    return out


def serve_load(server, rate: float, duration_s: float, seed: int, feeds: dict[str, dict],
               qos_ms: dict[str, float]) -> dict:
    """One seeded Poisson load (`rate` requests/s per model) through `server`: per model
    the latency summary plus the server's own counters (conflict rate, units, block and
    boundary µs, levels, blocks with switched variants); and the refusals."""
    run = drive(server, poisson_arrivals({n: rate for n in server.models}, duration_s, seed), feeds)
    per_model = summarize(run["requests"], qos_ms)
    for name, s in server.stats()["models"].items():
        per_model[name].update(conflict_rate=s["conflict_rate"], units=s["units"], boundaries=s["boundaries"],
                               boundary_us=s["boundary_us_median"], block_us=s["block_us_median"],
                               levels=s["levels"], switched_blocks=s["blocks_with_switched_variants"])
    return {"refused": run["refused"], "models": per_model}

"""The load generator's behaviour: rate, seed, and the metrics on hand-made traces."""
from __future__ import annotations

from mtcc.bench.load import poisson_arrivals, summarize


def test_poisson_rate_and_seed():
    a = poisson_arrivals({"x": 50.0, "y": 10.0}, duration_s=200.0, seed=3)
    assert a == poisson_arrivals({"x": 50.0, "y": 10.0}, duration_s=200.0, seed=3)
    assert a != poisson_arrivals({"x": 50.0, "y": 10.0}, duration_s=200.0, seed=4)
    counts = {m: sum(1 for _, n in a if n == m) for m in ("x", "y")}
    # Poisson counts: mean rate x duration, standard deviation its square root (5 sigma here).
    assert abs(counts["x"] - 10000) < 5 * 100 and abs(counts["y"] - 2000) < 5 * 45
    times = [t for t, _ in a]
    assert times == sorted(times) and 0 <= times[0] and times[-1] < 200.0
    assert poisson_arrivals({"x": 0.0}, 10.0) == []


def test_summarize_hand_made_trace():
    requests = [{"model": "a", "latency_ms": v, "error": None} for v in (1.0, 2.0, 3.0, 10.0)]
    requests.append({"model": "a", "latency_ms": None, "error": "QueueFull"})
    s = summarize(requests, {"a": 2.5})["a"]
    assert s["requests"] == 5 and s["served"] == 4
    assert s["within_qos"] == 0.4          # 1.0 and 2.0 of 5 (the refused one counts as missed)
    assert s["p50_ms"] == 2.5 and s["mean_ms"] == 4.0

"""Fixed probes: small kernels whose slowdown beside a neighbour measures interference.

Only ratios of their timings mean anything (alone vs beside a stressor, on the
same machine, minutes apart); never compare absolute times across machines.

- "memory": reads every cache line of a 16 MiB array once, in a fixed random
  order (a gather over a pre-made permutation).  Latency-bound, defeats the
  prefetcher, lives in the LLC when alone: exactly what a neighbour that
  pollutes the LLC or saturates memory hurts (docs/tvm-notes.md: 1.15-1.4x here).
- "compute": a 96x96 float32 matmul repeated; its 108 KiB fits in L2, so only a
  neighbour that takes the core itself (vCPU time-sharing) slows it.

This module imports only numpy: probe processes load it by path (see _worker.py).
"""
from __future__ import annotations

import time

import numpy as np

MEMORY_PROBE_BYTES = 16 << 20
COMPUTE_PROBE_N = 96
LINE = 64
PROBES = ("memory", "compute")


def make_probe(name: str, nbytes: int | None = None, seed: int = 1234):
    """A zero-argument callable that runs the probe once (a few milliseconds).
    `nbytes` overrides the memory probe's size (for experiments; levels use the default)."""
    rng = np.random.default_rng(seed)
    if name == "memory":
        nbytes = int(nbytes or MEMORY_PROBE_BYTES)
        data = np.ones(nbytes // 8, dtype=np.float64)
        index = rng.permutation(nbytes // LINE) * (LINE // 8)  # one read a line
        out = np.empty(len(index), dtype=np.float64)

        def memory():
            np.take(data, index, out=out)
        return memory
    if name == "compute":
        a = rng.standard_normal((COMPUTE_PROBE_N, COMPUTE_PROBE_N), dtype=np.float32)
        b = rng.standard_normal((COMPUTE_PROBE_N, COMPUTE_PROBE_N), dtype=np.float32)
        c = np.empty_like(a)

        def compute():
            for _ in range(100):
                np.matmul(a, b, out=c)
        return compute
    raise ValueError(f"unknown probe {name!r} (known: {', '.join(PROBES)})")


def time_probe(fn, seconds: float = 0.2, min_repeats: int = 5) -> list[float]:
    """Run `fn` for about `seconds` (at least `min_repeats` times) after one warm-up;
    returns every sample in seconds, so the caller can take a robust statistic."""
    fn()
    samples = []
    clock = time.perf_counter
    end = clock() + seconds
    while len(samples) < min_repeats or clock() < end:
        t0 = clock()
        fn()
        samples.append(clock() - t0)
    return samples


def robust_time(samples: list[float]) -> float:
    """Lower quartile.  On a shared machine other work only ever adds time, in bursts
    (preemption, a neighbour's burst, the host's vCPU time-sharing) that can fill half
    a window; a stressor's effect is continuous, so it is in the fast samples too.
    Measured here: across interleaved pairs the lower quartile's ratios spread about
    half as much as the median's."""
    ordered = sorted(samples)
    return ordered[(len(ordered) - 1) // 4]

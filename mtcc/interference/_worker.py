"""The loops that run inside stressor and probe processes.

Run as a script (`python _worker.py '<json spec>'`), not as `-m mtcc...`, so a
worker starts in a fraction of a second: it imports numpy and nothing of mtcc
(whose package may pull in TVM).  The parent talks to it over stdin/stdout:

- the worker pins itself to its core *before* importing numpy, so BLAS sees
  one CPU, and prints "ready" once its buffers are touched;
- a stressor loops until stdin is readable (a byte or EOF), so closing the
  pipe stops it; the parent dying closes the pipe too (and, when started from
  the main thread, PR_SET_PDEATHSIG kills it even while SIGSTOPped);
- a probe server answers one JSON request per stdin line with one JSON line.
"""
from __future__ import annotations

import json
import os
import select
import sys
import time
from pathlib import Path

# Run as a script: make the package importable for its one stdlib-only helper
# (importing mtcc itself pulls in nothing heavy; TVM is imported lazily).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from mtcc.lifeline import die_with_parent  # noqa: E402
LINE = 64  # bytes in a cache line on every x86 CPU this project meets


def _stop_requested(parent_pid: int) -> bool:
    readable, _, _ = select.select([sys.stdin], [], [], 0)
    return bool(readable) or os.getppid() != parent_pid


# --- stressor loops: each call does a few milliseconds of work, then we poll stdin ---

def _make_loop(np, pattern: str, nbytes: int, seed: int):
    rng = np.random.default_rng(seed)
    if pattern == "random":
        # Read-modify-write of whole cache lines in random order: keeps `nbytes` hot in
        # the shared LLC (evicting a neighbour's lines) and defeats the prefetcher.
        buf = np.ones(nbytes // 8, dtype=np.int64)
        lines = rng.permutation(nbytes // LINE) * (LINE // 8)
        chunks = np.array_split(lines, max(1, len(lines) // 32768))  # ~2 MiB a call
        state = {"i": 0}

        def loop():
            buf[chunks[state["i"] % len(chunks)]] += 1
            state["i"] += 1
        return loop
    if pattern == "stride":
        # One 8-byte write per 64-byte line: every store dirties a whole line, so the
        # line must be fetched and written back; the least work per line touched.
        buf = np.ones(nbytes // 8, dtype=np.float64)
        step = LINE // 8
        views = [buf[i::step] for i in range(step)]
        state = {"i": 0}

        def loop():
            v = views[state["i"] % step]
            v += 1.0
            state["i"] += 1
        return loop
    if pattern == "copy":
        # Several streams: a copy (memcpy) and an add over arrays far beyond the LLC, in
        # 8 MiB blocks; 3 read and 2 write streams.  Whether memcpy uses non-temporal
        # stores depends on glibc's threshold (about 3/4 of its LLC share).
        n = nbytes // 8 // 3
        a, b, c = (np.ones(n) for _ in range(3))
        block = max(1, (8 << 20) // 8)  # 8 MiB per step keeps stdin polls frequent
        state = {"off": 0}

        def loop():
            o = state["off"]
            s = slice(o, o + block)
            np.copyto(a[s], b[s])
            np.add(b[s], c[s], out=c[s])
            state["off"] = o + block if o + block < n else 0
        return loop
    if pattern == "spin":
        # Control: busy on the core, touches no memory.  Shows what a busy neighbour
        # costs by itself (vCPU time-sharing) apart from any cache or memory effect.
        def loop():
            x = 0
            for _ in range(20000):
                x += 1
        return loop
    raise ValueError(f"unknown stressor pattern {pattern!r}")


def run_stressor(spec: dict) -> None:
    import numpy as np

    loop = _make_loop(np, spec["pattern"], int(spec["bytes"]), int(spec.get("seed", 0)))
    loop()
    print("ready", flush=True)
    parent = spec["parent"]
    # duty < 1 idles in proportion to the work: a weaker level from the same pattern.
    rest = (1.0 - float(spec.get("duty", 1.0))) / float(spec.get("duty", 1.0))
    while not _stop_requested(parent):
        t0 = time.perf_counter()
        loop()
        if rest > 0:
            time.sleep((time.perf_counter() - t0) * rest)


# --- probe server -----------------------------------------------------------------

def run_probes(spec: dict) -> None:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import probes as kernels  # by path: probes.py imports only numpy

    made = {}
    print("ready", flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        key = (req["probe"], req.get("bytes"))
        if key not in made:
            made[key] = kernels.make_probe(*key)
        samples = kernels.time_probe(made[key], seconds=req.get("seconds", 0.2),
                                     min_repeats=req.get("min_repeats", 5))
        print(json.dumps({"samples": samples}), flush=True)


def main() -> None:
    spec = json.loads(sys.argv[1])
    os.sched_setaffinity(0, {int(spec["core"])})
    die_with_parent(spec["parent"], spec.get("pdeathsig", False))
    if spec.get("nice"):
        try:  # negative values need root; then the machine's other work cannot crowd us out
            os.setpriority(os.PRIO_PROCESS, 0, int(spec["nice"]))
        except OSError:
            pass
    try:
        if spec["kind"] == "stressor":
            run_stressor(spec)
        else:
            run_probes(spec)
    except (KeyboardInterrupt, BrokenPipeError):
        pass  # Ctrl-C reaches the whole process group; the parent cleans up


if __name__ == "__main__":
    # Single-threaded BLAS in this process whatever the parent set.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    main()

"""Stressors: neighbours that put a known pressure on the shared LLC or memory.

A `Stressor` runs one worker process per core it is given, each pinned there
with sched_setaffinity.  Two kinds, sized from this machine's caches:

- `CacheStressor`: a working set between the L2 and the LLC, read and written
  line by line at random, so it keeps evicting a neighbour's LLC lines;
- `StreamStressor`: arrays well beyond the LLC, copied and written in streams,
  so it consumes memory bandwidth;
- `SpinStressor` (control): busy, but touches no memory.  What it costs a
  neighbour is the price of sharing the core itself, not of sharing caches.

No worker outlives its parent: `stop()` ends them, and so do leaving a `with`
block (also by an exception or Ctrl-C), interpreter exit (atexit), and the
parent being killed (the worker sees its stdin pipe close; PR_SET_PDEATHSIG).
"""
from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

from ..errors import BadInput, EnvironmentProblem
from . import machine

WORKER = Path(__file__).with_name("_worker.py")
START_TIMEOUT_S = 30.0
_live: "weakref.WeakSet[Stressor]" = weakref.WeakSet()


def start_worker(spec: dict) -> subprocess.Popen:
    """Start `_worker.py` with `spec`, wait for its "ready" line, return the process."""
    spec = {**spec, "parent": os.getpid(),
            "pdeathsig": threading.current_thread() is threading.main_thread()}
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(WORKER), json.dumps(spec)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    # readline blocks; a timer kills a worker that never gets ready, which ends the read.
    timer = threading.Timer(START_TIMEOUT_S, proc.kill)
    timer.start()
    try:
        line = proc.stdout.readline().strip()
    finally:
        timer.cancel()
    if line != "ready":
        end_worker(proc)
        raise EnvironmentProblem(f"interference worker failed to start ({spec['kind']} on core "
                                 f"{spec['core']}): exit code {proc.returncode}")
    return proc


def end_worker(proc: subprocess.Popen, grace_s: float = 2.0) -> None:
    end_workers([proc], grace_s)


def end_workers(procs, grace_s: float = 2.0) -> None:
    """Close every worker's pipe at once (the polite stop), then SIGKILL those not gone
    when the one shared grace period ends: stopping N workers takes one grace period,
    not N (an interrupted parent must be gone quickly even on a loaded machine)."""
    for proc in procs:
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGCONT)  # a paused worker cannot read its pipe
            except ProcessLookupError:
                pass
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except (OSError, ValueError):
                pass
    deadline = time.monotonic() + grace_s
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Stressor:
    """Interface: start(cores), stop(), pause(), resume(), describe(); a context manager.

    Subclasses set `pattern` and `working_set_bytes`; `working_set_bytes` is per
    process (each core gets its own buffer, as co-located tenants would)."""

    pattern = ""
    kind = ""

    def __init__(self, working_set_bytes: int, cores=None, nice: int = 0, duty: float = 1.0):
        if working_set_bytes < 4096:
            raise BadInput(f"stressor working set too small: {working_set_bytes} bytes")
        if not 0.0 < duty <= 1.0:
            raise BadInput(f"stressor duty must be in (0, 1], not {duty}")
        self.duty = float(duty)  # fraction of the time it works; idles the rest
        self.working_set_bytes = int(working_set_bytes)
        self.cores = list(cores) if cores is not None else None
        self.nice = nice  # <0 (root only) keeps the machine's other work off our cores
        self._procs: list[subprocess.Popen] = []

    # -- life cycle --
    def start(self, cores=None) -> "Stressor":
        """Start one pinned worker per core; returns once every worker is running."""
        if self._procs:
            raise RuntimeError("stressor already started")
        cores = list(cores if cores is not None else (self.cores or []))
        if not cores:
            raise BadInput("a stressor needs at least one core to run on")
        allowed = set(machine.cores())
        if not set(cores) <= allowed:
            raise BadInput(f"stressor cores {cores} not all in this process's cores {sorted(allowed)}")
        self.cores = cores
        _live.add(self)
        try:
            for i, core in enumerate(cores):
                self._procs.append(start_worker({"kind": "stressor", "core": core, "seed": i,
                                                 "pattern": self.pattern,
                                                 "bytes": self.working_set_bytes,
                                                 "nice": self.nice, "duty": self.duty}))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        procs, self._procs = self._procs, []
        end_workers(procs)
        _live.discard(self)

    def pause(self) -> None:
        """SIGSTOP the workers: lets a measurement interleave alone/stressed runs
        without paying the start-up (buffer allocation) each time."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def _signal(self, sig) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.send_signal(sig)

    @property
    def running(self) -> bool:
        return any(p.poll() is None for p in self._procs)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    def describe(self) -> dict:
        """Parameters that reproduce this stressor (stored in the calibration file)."""
        return {"kind": self.kind, "pattern": self.pattern,
                "working_set_bytes": self.working_set_bytes,
                "working_set_mib": round(self.working_set_bytes / (1 << 20), 2),
                "duty": self.duty, "processes": len(self.cores or []), "cores": self.cores}

    def __enter__(self) -> "Stressor":
        if not self._procs:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        d = self.describe()
        return f"{type(self).__name__}({d['working_set_mib']} MiB, {d['pattern']}, cores={d['cores']})"


class CacheStressor(Stressor):
    """Working set between L2 and the LLC, random line-granular reads and writes."""

    kind = "cache"

    def __init__(self, working_set_bytes: int | None = None, cores=None, pattern: str = "random",
                 nice: int = 0, duty: float = 1.0):
        if pattern not in ("random", "stride"):
            raise BadInput(f"cache stressor pattern must be random or stride, not {pattern!r}")
        self.pattern = pattern
        super().__init__(working_set_bytes or default_cache_working_set(), cores, nice, duty)


class StreamStressor(Stressor):
    """Working set far beyond the LLC: streaming copy + add ("copy"), or one write per
    64-byte line ("stride", the strongest pattern measured on the project's VMs)."""

    kind = "stream"

    def __init__(self, working_set_bytes: int | None = None, cores=None, pattern: str = "copy",
                 nice: int = 0, duty: float = 1.0):
        if pattern not in ("copy", "stride"):
            raise BadInput(f"stream stressor pattern must be copy or stride, not {pattern!r}")
        self.pattern = pattern
        super().__init__(working_set_bytes or default_stream_working_set(), cores, nice, duty)


class SpinStressor(Stressor):
    """Control: keeps its cores busy without touching memory."""

    kind = "spin"
    pattern = "spin"

    def __init__(self, cores=None, nice: int = 0):
        super().__init__(4096, cores, nice)


def default_cache_working_set() -> int:
    """The LLC share of one core up to the whole LLC: big enough to evict a
    neighbour, small enough to stay cache-resident itself.  Capped at 64 MiB because
    a VM may report its host's LLC (480 MiB) rather than its own share."""
    return min(machine.llc_bytes(), 64 << 20)


def default_stream_working_set() -> int:
    """Four times the LLC (as reported, capped to 64..512 MiB): never cache-resident."""
    return max(64 << 20, min(4 * machine.llc_bytes(), 512 << 20))


def make_stressor(config: dict, nice: int = 0) -> Stressor:
    """Rebuild a stressor from `describe()`'s dict (as stored in a calibration)."""
    kind = config.get("kind")
    if kind == "spin":
        return SpinStressor(cores=config.get("cores"), nice=nice)
    classes = {"cache": CacheStressor, "stream": StreamStressor}
    if kind not in classes:
        raise BadInput(f"unknown stressor kind {kind!r} (cache, stream or spin)")
    return classes[kind](int(config["working_set_bytes"]), cores=config.get("cores"),
                         pattern=config.get("pattern") or ("random" if kind == "cache" else "copy"),
                         nice=nice, duty=float(config.get("duty", 1.0)))


@atexit.register
def _stop_all() -> None:
    """At exit: every live stressor's workers, stopped together."""
    procs = []
    for stressor in list(_live):
        procs.extend(stressor._procs)
        stressor._procs = []
        _live.discard(stressor)
    end_workers(procs)

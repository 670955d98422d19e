"""A probe in its own pinned process, so that the caller's threads (TVM's pool,
multithreaded BLAS) neither run beside it nor share its core."""
from __future__ import annotations

import json

from .probes import PROBES, robust_time
from .stressors import end_worker, start_worker


class ProbeProcess:
    """`with ProbeProcess(core=0) as p: p.samples("memory", seconds=0.2)`"""

    def __init__(self, core: int = 0, nice: int = 0):
        self.core = core
        self.nice = nice
        self._proc = None

    def start(self) -> "ProbeProcess":
        if self._proc is None:
            self._proc = start_worker({"kind": "probe", "core": self.core, "nice": self.nice})
        return self

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def stop(self) -> None:
        if self._proc is not None:
            end_worker(self._proc)
            self._proc = None

    def samples(self, probe: str, seconds: float = 0.2, min_repeats: int = 5,
                nbytes: int | None = None) -> list[float]:
        """Timings (s) of repeated runs of `probe` over about `seconds`."""
        if probe not in PROBES:
            raise ValueError(f"unknown probe {probe!r} (known: {', '.join(PROBES)})")
        self.start()
        self._proc.stdin.write(json.dumps({"probe": probe, "seconds": seconds,
                                           "min_repeats": min_repeats, "bytes": nbytes}) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"probe process on core {self.core} died")
        return json.loads(line)["samples"]

    def time(self, probe: str, seconds: float = 0.2) -> float:
        """Robust (lower-quartile, see probes.robust_time) time of one run, in seconds."""
        return robust_time(self.samples(probe, seconds))

    def __enter__(self) -> "ProbeProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

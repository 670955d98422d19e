"""Putting a TVM thread pool on the cores it was granted, one thread per core.

TVM's pool belongs to the thread that calls into TVM (thread-local) and starts with
TVM_NUM_THREADS threads -- the calling thread and N-1 workers -- the first time that
thread runs a parallel kernel.  It can shrink below its start size and grow back, not
beyond it; with TVM_BIND_THREADS=0 (mtcc's default) its core list is ignored.  So a
tenant starts every pool at the most cores a lane may hold, and at a grant:

  - `runtime.config_threadpool(1, n)` sets how many of the pool's threads run (~5 µs);
  - the threads that will run -- the lane thread and the pool's first n-1 workers, found
    by thread id when the pool first ran -- are re-pinned with sched_setaffinity, each
    to its own granted core, where that differs from its last one.  Re-pinning all 17
    threads of a 16-core pool at every grant took 106-115 µs on a 16-core Xeon, against
    17-28 µs for a whole block boundary.  TVM hands a parallel loop's task k to worker
    k-1 in creation order (measured: with n threads only the first n-1 workers by thread
    id gain CPU time); the idle workers keep their last cores and only spin there until
    TVM's spin limit puts them to sleep.

Why one core each rather than the whole set per thread: a pool whose threads may go
anywhere in the set ran squeezenet 1.5x slower after 20 ms idle (9.4-9.7 ms against 6.4
on 2 vCPUs of a Zen 3 VM, in one process, the caller woken by its timer): every parallel
kernel took twice its time, as if the two threads shared one vCPU.  Pinned one per core
it ran as fast as back to back; inside a tenant (woken by its pipe) both ways ran alike.
`holding()` gives a thread that runs other work between inferences (bench --single's
baselines) its own cores back after each.

Between units the lane thread waits on its pipe.  Left pinned to its last grant's core,
it woke there to start a unit granted another core, queued behind whatever ran on the
old one: in the medium mix on 2 vCPUs the transformer's unit then took 1.8-5.1 ms from
sent to started (0.25 ms median), while inception_v1 computed on that core.  Unpinning it
after each unit fixed that, but made every unit's start pin the running lane thread
again: 40-130 µs after 20 ms idle on the Zen 4 VM (130 where the kernel must move the
running thread to another core), the transformer's grant from a 6 to a 79 µs median.  So
the server pins the *sleeping* lane thread to the unit's first core before it sends the
unit (`pin_sleeping`: no running thread to move, and a repeated grant pins nothing), and
the lane wakes on a core it holds; `apply(cores, lane_core=...)` then skips that pin.
"""
from __future__ import annotations

import contextlib
import os
import threading
import time


def core_order(cores) -> tuple[int, ...]:
    """The order in which a grant's cores go to a lane's threads (apply): the lane
    thread's first, then one per pool worker."""
    return tuple(sorted(cores))


def lane_core(cores) -> int:
    """The core a grant puts the lane thread on."""
    return core_order(cores)[0]


def pin_sleeping(tid: int, core: int) -> bool:
    """Pin a lane thread, from the server, while it waits for its unit: it then wakes on
    `core` (module doc).  False if the thread is gone (its tenant died)."""
    try:
        os.sched_setaffinity(tid, (core,))
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _thread_ids() -> set[int]:
    return {int(t) for t in os.listdir("/proc/self/task")}


class LanePlacement:
    def __init__(self):
        import tvm

        self._config = tvm.get_global_func("runtime.config_threadpool")
        self.lane_tid = threading.get_native_id()
        self.worker_tids: list[int] = []
        self.cores: tuple[int, ...] = ()
        self.threads = 0
        self._pinned: dict[int, int] = {}  # thread id -> the core it is pinned to

    def start_pool(self, warm_up) -> None:
        """Run `warm_up` (a first inference) on this thread and note the pool threads it
        created; call once, on the lane thread, before any grant."""
        before = _thread_ids()
        warm_up()
        self.worker_tids = sorted(_thread_ids() - before)

    def apply(self, cores, lane_core: int | None = None) -> float:
        """Run this lane's pool on `cores`, one thread per core (the lane thread on the
        first); returns µs spent.  `lane_core`: where the server already pinned the lane
        thread (pin_sleeping), not pinned again."""
        start = time.perf_counter()
        cores = core_order(cores)
        if lane_core is not None:
            self._pinned[self.lane_tid] = lane_core
        if cores != self.cores:
            for tid, core in zip([self.lane_tid, *self.worker_tids[:len(cores) - 1]], cores):
                if self._pinned.get(tid) != core:
                    try:
                        os.sched_setaffinity(tid, (core,))
                    except ProcessLookupError:  # a worker the pool has retired
                        pass
                    self._pinned[tid] = core
            self.cores = cores
        if len(cores) != self.threads:
            self._config(1, len(cores))
            self.threads = len(cores)
        return (time.perf_counter() - start) * 1e6

    @contextlib.contextmanager
    def holding(self, cores):
        """apply(cores) for a with-block, on the lane thread; then that thread gets back
        the cores it had before (the workers stay where they are: only this pool runs them)."""
        before = os.sched_getaffinity(0)
        self.apply(cores)
        try:
            yield
        finally:
            os.sched_setaffinity(0, before)
            self._pinned.pop(self.lane_tid, None)
            self.cores = ()

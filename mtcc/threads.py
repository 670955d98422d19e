"""How many threads TVM's pool starts with, and who places them.

TVM reads TVM_NUM_THREADS once, when its pool first starts (the first parallel
kernel), so every mtcc process that runs compiled code sets it before that.

TVM also pins each pool worker to one core (TVM_BIND_THREADS, on by default) but
leaves the calling thread free.  On these VMs the scheduler then often puts the
calling thread on the core of the pinned worker; the two spin-wait for each other on
one core and a 1.4 ms transformer took 35-270 ms on 2 threads.  mtcc places whole
processes instead (sched_setaffinity on the cores a tenant holds) and lets the OS
place the threads inside that set, so binding is off unless the user sets it.
"""
from __future__ import annotations

import contextlib
import os


def default_thread_placement() -> None:
    """Binding off for this process unless the user chose: importing mtcc does this,
    so a program that loads a bundle in its own process (mtcc.load(...).run) does not
    meet the 25x slowdown above."""
    os.environ.setdefault("TVM_BIND_THREADS", "0")


def tvm_thread_env(n: int) -> dict[str, str]:
    """Environment entries for a process whose TVM pool should run `n` threads."""
    return {"TVM_NUM_THREADS": str(int(n)),
            "TVM_BIND_THREADS": os.environ.get("TVM_BIND_THREADS", "0")}


@contextlib.contextmanager
def thread_env_restored():
    """The pool variables (tvm_thread_env's keys) as they were before, once the block or
    decorated call ends: a process that sets them per run (tune.driver.tune, whose
    measuring workers inherit them) leaves no run's choice to the next (the time-budget
    recipe's 1-thread rounds, then characterization)."""
    keys = tuple(tvm_thread_env(1))
    saved = {key: os.environ.get(key) for key in keys}
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# After each parallel kernel TVM's pool workers spin (sched_yield) for
# TVM_THREAD_POOL_SPIN_COUNT rounds before they sleep: 300000 by default, measured here
# as ~240 ms of CPU burnt per worker after every inference.  In a tenant those workers
# stay on cores the server has meanwhile granted to another lane or model: on 16 cores
# with 8 lanes per model the transformer ran 2-3x slower alone (0.7 -> 2.0 ms) beside
# the idle, spinning pools.  2000 rounds (~1.6 ms) still covers the gaps between one
# request's kernels (back-to-back runs within noise of the default here).
TENANT_SPIN_COUNT = 2000


def tenant_thread_env(n: int) -> dict[str, str]:
    """tvm_thread_env for a tenant process, whose idle pool must not hold its cores."""
    return {**tvm_thread_env(n),
            "TVM_THREAD_POOL_SPIN_COUNT": os.environ.get("TVM_THREAD_POOL_SPIN_COUNT", str(TENANT_SPIN_COUNT))}


def use_threads(n: int, overwrite: bool = True) -> None:
    """Set this process's TVM pool size (before its first parallel call).  With
    overwrite=False a TVM_NUM_THREADS the user exported wins."""
    env = tvm_thread_env(n)
    if not overwrite and "TVM_NUM_THREADS" in os.environ:
        env["TVM_NUM_THREADS"] = os.environ["TVM_NUM_THREADS"]
    os.environ.update(env)

"""The benchmarks' per-thread-count process: TVM's pool reads its thread count once per
process, so each thread count a benchmark measures runs in a fresh one, pinned to that
many of this process's cores."""
from __future__ import annotations

import json
import os
import subprocess
import sys


def run_child(script: str, argv: list[str], threads: int) -> dict:
    """`script argv...` under taskset on the first `threads` cores this process may use,
    with TVM's thread settings for that many; returns the JSON object on its last line
    of stdout (SystemExit with its stderr's tail when it fails)."""
    from mtcc.threads import tvm_thread_env

    cores = sorted(os.sched_getaffinity(0))
    if threads > len(cores):
        raise SystemExit(f"--threads {threads}: this process may use {len(cores)} core(s)")
    child = subprocess.run(["taskset", "-c", ",".join(map(str, cores[:threads])), sys.executable, script, *argv],
                           env={**os.environ, **tvm_thread_env(threads)}, capture_output=True, text=True)
    if child.returncode != 0:
        raise SystemExit(child.stderr[-2000:])
    return json.loads(child.stdout.strip().splitlines()[-1])

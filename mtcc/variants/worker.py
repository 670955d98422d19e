"""The measuring worker: a process pinned to some cores that builds one tuning record
at a time and times it (TVM's time_evaluator), or loops it as a neighbour.

TVM reads its thread count once per process, so there is one warm worker per core
count.  The protocol is one JSON request per stdin line, one JSON reply per line on
the worker's original stdout (anything TVM prints goes to stderr)."""
from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Sequence

from ..errors import BadInput, EnvironmentProblem
from ..lifeline import child_env, die_with_parent
from ..threads import tvm_thread_env
from ..tune.database import DatabaseLines

BUILD_TIMEOUT_S = 300.0
TIME_TIMEOUT_S = 120.0
WORKER_START_TIMEOUT_S = 120.0
COLD_CALLS_MIN, COLD_CALLS_MAX = 10, 200  # single cold calls per sample (cold_samples)
FLUSH_OPERANDS = "cache_flush_cpu_non_first_arg"  # TVM's pre-call hook, MetaSchedule's enable_cpu_cache_flush


def cold_samples(single_calls, number: int, repeat: int) -> list[float]:
    """A cold timing: `repeat` samples, each the median of single calls with the caches
    evicted before every one -- as many as `number` (the hot timing's calls per sample),
    within COLD_CALLS_MIN..MAX.  `single_calls(n)` makes n such calls and returns their
    seconds (TVM's time_evaluator with number=1 and cache_flush_bytes)."""
    singles = min(COLD_CALLS_MAX, max(COLD_CALLS_MIN, number))
    times = list(single_calls(singles * repeat))
    return [statistics.median(times[k * singles:(k + 1) * singles]) for k in range(repeat)]


def cold_flush_bytes() -> int:
    """What a cold timing writes before each call: twice the private L2, so nothing of
    the call's data is left there (as after a model's other calls)."""
    from ..interference.machine import cache_bytes

    return 2 * cache_bytes(2, 1 << 20)


def random_arguments(func, seed: int = 0):
    """Random arguments for a PrimFunc: floats N(0,1); integers zero (they may be indices)."""
    import numpy as np
    import tvm

    rng = np.random.default_rng(seed)
    args = []
    for param in func.params:
        ty = getattr(param, "ty", None)
        if ty is None or not hasattr(ty, "shape"):
            raise BadInput(f"parameter {param} of the task is not a buffer")
        shape = [int(d) for d in ty.shape]
        dtype = str(ty.dtype)
        if dtype.startswith(("float", "bfloat")):
            data = rng.standard_normal(shape).astype(dtype)
        else:
            data = np.zeros(shape, dtype=dtype)
        args.append(tvm.runtime.tensor(data))
    return args


def scheduled_module(job: dict, *, for_timing: bool = True):
    """The IRModule of one record: the trace applied to its workload.  With
    `for_timing`, as MetaSchedule's builder measured it (layout-rewrite blocks
    removed: weights arrive pre-rewritten, as in a compiled model); without, the
    function takes its arguments in the task's own layout (for numerics checks)."""
    from tvm import s_tir
    import tvm.s_tir.meta_schedule as ms

    workload = ms.database.Workload.from_json(job["workload"])
    record = ms.database.TuningRecord.from_json(job["record"], workload)
    sch = s_tir.Schedule(workload.mod)
    record.trace.apply_to_schedule(sch, remove_postproc=False)
    mod = sch.mod
    if for_timing:
        from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

        mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod)
    return mod, record.target


def build_record(job: dict, *, for_timing: bool = True):
    """(runtime module, PrimFunc) of one record, built standalone."""
    import tvm

    mod, target = scheduled_module(job, for_timing=for_timing)
    build = getattr(getattr(tvm, "tirx", None), "build", None) or tvm.build  # tvm.build is deprecated in 0.27
    lib = build(mod, target=target)
    return lib, mod["main"]


def build_variant(schedules_dir, trace_ref: dict, *, for_timing: bool = False):
    """(runtime module, PrimFunc) of a variant from variants.json, e.g. to check
    numerics or to pack it: `trace_ref` is the variant's "trace" entry."""
    db = DatabaseLines(schedules_dir)
    return build_record(db.job(db.resolve(trace_ref)), for_timing=for_timing)


def worker_main() -> None:
    """Runs in a worker process (see MeasuringWorker): JSON requests on stdin, JSON replies on
    the original stdout; anything TVM prints goes to stderr."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    die_with_parent()
    import tvm

    dev = tvm.cpu()
    built: dict[str, dict] = {}
    looping: dict = {}

    def reply(obj) -> None:
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    reply({"ready": True, "pid": os.getpid(), "threads": os.environ.get("TVM_NUM_THREADS"),
           "cores": sorted(os.sched_getaffinity(0))})
    for line in sys.stdin:
        req = json.loads(line)
        cmd = req["cmd"]
        try:
            if cmd == "build":
                t0 = time.perf_counter()
                lib, func = build_record(req["job"], for_timing=True)
                build_s = time.perf_counter() - t0
                args = random_arguments(func)
                fn = lib[lib.entry_name or "main"] if hasattr(lib, "entry_name") else lib["main"]
                fn(*args)  # warm-up; also proves it runs
                t1 = time.perf_counter()
                fn(*args)
                once = time.perf_counter() - t1
                built[req["key"]] = {"lib": lib, "fn": fn, "args": args, "once": once}
                reply({"ok": True, "build_s": round(build_s, 3), "once_us": round(once * 1e6, 3)})
            elif cmd == "time":
                b = built[req["key"]]
                min_ms = float(req.get("min_repeat_ms", 20))
                repeat = int(req.get("repeat", 2))
                number = max(1, int(min_ms / 1e3 / max(b["once"], 1e-7)))
                name = getattr(b["lib"], "entry_name", None) or "main"
                flush = int(req.get("flush_bytes", 0))
                # as `mtcc tune --cold-caches` searched: every operand but the first flushed from
                # every cache level before each call (MetaSchedule's CPU cache flush); or the
                # private caches evicted before each call, as by a model's other calls
                cold = ({"f_preproc": FLUSH_OPERANDS} if req.get("flush_operands") else
                        {"cache_flush_bytes": flush} if flush else None)
                if cold:
                    samples = cold_samples(lambda n, b=b, name=name, cold=cold: b["lib"].time_evaluator(
                        name, dev, number=1, repeat=n, **cold)(*b["args"]).results, number, repeat)
                else:
                    evaluator = b["lib"].time_evaluator(name, dev, number=number, repeat=repeat,
                                                        min_repeat_ms=int(min_ms))
                    samples = list(evaluator(*b["args"]).results)
                reply({"ok": True, "samples_us": [round(s * 1e6, 4) for s in samples]})
            elif cmd == "loop_start":
                b = built[req["key"]]
                stop = threading.Event()
                count = [0]

                def spin(fn=b["fn"], args=b["args"]):
                    while not stop.is_set():
                        fn(*args)
                        count[0] += 1
                thread = threading.Thread(target=spin, daemon=True)
                thread.start()
                looping.update(stop=stop, thread=thread, count=count)
                reply({"ok": True})
            elif cmd == "loop_stop":
                if looping:
                    looping["stop"].set()
                    looping["thread"].join()
                calls = looping["count"][0] if looping else 0
                looping.clear()
                reply({"ok": True, "calls": calls})
            elif cmd == "drop":
                built.pop(req["key"], None)
                reply({"ok": True})
            else:
                reply({"ok": False, "error": f"unknown command {cmd!r}"})
        except Exception as e:  # noqa: BLE001 - one candidate's failure is data, not a crash
            first = (str(e).strip().splitlines() or [type(e).__name__])[-1]
            reply({"ok": False, "error": f"{type(e).__name__}: {first[:500]}"})


class WorkerError(RuntimeError):
    pass


class MeasuringWorker:
    """A measuring process pinned to `cores` with TVM_NUM_THREADS=len(cores).  Started
    once per core count and kept warm; restarted after a crash or a timeout."""

    def __init__(self, cores: Sequence[int]):
        self.cores = list(cores)
        self.proc: subprocess.Popen | None = None
        self._buf = b""
        self._log = None

    def start(self) -> "MeasuringWorker":
        env = {**os.environ, **tvm_thread_env(len(self.cores)), "OMP_NUM_THREADS": "1",
               "OPENBLAS_NUM_THREADS": "1", **child_env()}
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self._log = tempfile.TemporaryFile()
        cores = set(self.cores)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from mtcc.variants.worker import worker_main; worker_main()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, env=env,
            preexec_fn=lambda: os.sched_setaffinity(0, cores))
        _live_workers.add(self)
        hello = self._read(WORKER_START_TIMEOUT_S)
        if not hello.get("ready"):
            self.stop()
            raise EnvironmentProblem(f"measuring worker on cores {self.cores} failed to start")
        return self

    def _log_tail(self) -> str:
        if self._log is None:
            return ""
        try:
            self._log.seek(0)
            lines = self._log.read().decode(errors="replace").strip().splitlines()
            return lines[-1][:300] if lines else ""
        except (OSError, ValueError):
            return ""

    def _read(self, timeout: float) -> dict:
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                raise WorkerError(f"timed out after {timeout:.0f} s")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    code = self.proc.wait()
                    tail = self._log_tail()
                    self.stop()
                    raise WorkerError(f"worker died (exit code {code}){': ' + tail if tail else ''}")
                self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return json.loads(line)

    def request(self, timeout: float, **msg) -> dict:
        if self.proc is None:
            self.start()
        try:
            self.proc.stdin.write((json.dumps(msg) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.stop()
            raise WorkerError("worker died") from None
        reply = self._read(timeout)
        if not reply.get("ok"):
            raise WorkerError(reply.get("error", "failed"))
        return reply

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        self._buf = b""
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                with contextlib.suppress(OSError, ValueError):
                    stream.close()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None
        _live_workers.discard(self)

    def __enter__(self) -> "MeasuringWorker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


_live_workers: "set[MeasuringWorker]" = set()


def _stop_workers() -> None:
    for worker in list(_live_workers):
        worker.stop()



atexit.register(_stop_workers)

"""Characterization and the Pareto filter: from one tuning database to a few variants per task.

The paper's second finding (DESIGN.md): among the candidates the tuner already
measured, some lose little alone and much less under pressure from neighbours.
This module measures them and keeps the ones worth keeping.

    char = characterize("model.onnx", "schedules/model/llvm-x86-64-v4")  # -> characterization.json
    var = select_variants(char)                                          # -> variants.json
    ev = evidence("schedules/model/llvm-x86-64-v4")                      # the numbers for the note

Characterization (`characterize`)
---------------------------------
For every task of the model found in the database, the `top_k` fastest *distinct*
valid records (distinct trace JSON; failed records skipped) are each applied to
their workload and built as a standalone function, then timed with TVM's
`time_evaluator` on random arguments at every core count x interference level:

- the candidate runs in a worker process pinned to the first n cores with
  TVM_NUM_THREADS=n (one warm worker per core count: TVM reads the thread count
  once per process), the level's calibrated stressor on the remaining cores;
- on a machine with C cores nothing can run beside a candidate that holds all C,
  so the cells (C cores, level != none) are recorded as not measurable, not
  invented;
- levels take turns round by round for each candidate (the stressors stay
  started and are SIGSTOPped between rounds), so each sees the same drift of a
  shared machine; a cell's value is the lower quartile of its samples (each
  sample the mean of calls filling >= `min_repeat_ms`), for the reason given in
  interference.probes.robust_time;
- footprint: the calibration's memory probe runs on the second core, alone and
  beside the candidate looping on the first, in interleaved pairs; footprint is
  the median ratio (1.0 = harmless neighbour).

Tasks whose best tuned time is under `min_task_us` are not characterized (their
variant choice cannot matter); the result says so.  Results are written after
every candidate, atomically (temp file + os.replace); a rerun measures only the
missing (candidate, cores, level) cells.  When the calibration's levels change,
the pressure cells are dropped and measured again; "none" cells and footprints
are kept.

The Pareto filter (`select_variants`)
-------------------------------------
Per task, over candidates with a complete set of objectives (all lower is better):

- latency_alone:    latency at P cores, level none;
- latency_pressure: latency at P cores, at the strongest level measured
  ("high" where the calibration has it);
- footprint:        the probe's slowdown beside the candidate (below 1 reads as 1,
  rounded to 0.01: noise must not keep a variant);
- latency_alone_max_cores: latency at the machine's C cores, level none, when
  C != P (on a 2-core machine P = 1 and C = 2).

P is the largest core count at which the strongest level is measurable, so the
first two compare the same core count and their difference is interference
alone, not thread scaling.  The fourth objective keeps the best variant for a
tenant holding the whole machine (pareto_front always keeps the best on every
objective).  At most `max_variants` (default 5, as in the paper) per task.
`best_alone_differs_under_pressure` compares the first two objectives.
"""
from __future__ import annotations

import atexit
import contextlib
import hashlib
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
from typing import Callable, Iterable, Sequence

from .errors import BadInput, EnvironmentProblem
from .threads import tvm_thread_env

FORMAT = "mtcc-characterization/1"
VARIANTS_FORMAT = "mtcc-variants/1"
CHARACTERIZATION = "characterization.json"
VARIANTS = "variants.json"
WORKLOADS = "database_workload.json"   # same names as tuning.py (MetaSchedule's own)
RECORDS = "database_tuning_record.json"
META = "tune.json"
FAILED_SECS = 1e9                      # MetaSchedule stores failed candidates with run_secs 1e10
LEVEL_ORDER = ("none", "low", "mid", "high")
DEFAULT_MIN_TASK_US = 3.0
BUILD_TIMEOUT_S = 300.0
TIME_TIMEOUT_S = 120.0
WORKER_START_TIMEOUT_S = 120.0

Progress = Callable[[str], None]


def _say(progress: Progress | None, message: str) -> None:
    if progress:
        progress(message)


def cell_key(cores: int, level: str) -> str:
    """Name of a latency-table cell: "2c/none", "1c/high"."""
    return f"{int(cores)}c/{level}"


def parse_cell(key: str) -> tuple[int, str]:
    cores, _, level = key.partition("/")
    return int(cores.rstrip("c")), level


# ------------------------------------------------------------------ the database
def _read_json_lines(path: Path) -> list:
    """Every line of a MetaSchedule JSON-lines file, parsed; a torn or empty line reads
    as None so that line numbers (the indices variants refer to) stay those of the file."""
    if not path.exists():
        return []
    out = []
    for line in path.read_bytes().split(b"\n"):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append(None)
    return out


def _sha(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def _mean(run_secs) -> float:
    values = [float(s) for s in (run_secs or [])]
    return sum(values) / len(values) if values else float("inf")


class Database:
    """A schedules folder's records read straight from MetaSchedule's files, so that a
    record is named by its line numbers (workload index, record index), stable while
    the files are only appended to (MetaSchedule never rewrites them)."""

    def __init__(self, schedules_dir: str | os.PathLike):
        self.dir = Path(schedules_dir)
        if not (self.dir / WORKLOADS).exists() or not (self.dir / RECORDS).exists():
            raise BadInput(f"{self.dir}: not a schedules folder (needs {WORKLOADS} and {RECORDS})")
        self.workloads = _read_json_lines(self.dir / WORKLOADS)
        self.records = _read_json_lines(self.dir / RECORDS)
        self.meta = json.loads((self.dir / META).read_text()) if (self.dir / META).exists() else {}

    def workload_hash(self, index: int) -> str | None:
        line = self.workloads[index] if 0 <= index < len(self.workloads) else None
        return str(line[0]) if line else None

    def records_of(self, workload: int) -> list[int]:
        return [i for i, r in enumerate(self.records) if r is not None and r[0] == workload]

    def record_secs(self, index: int) -> float:
        return _mean(self.records[index][1][1])

    def record_sha(self, index: int) -> str:
        return _sha(self.records[index][1][0])

    def target(self) -> dict | None:
        for rec in self.records:
            if rec is not None:
                return rec[1][2]
        return None

    def candidates(self, workload: int, top_k: int) -> tuple[list[int], int, int]:
        """(record indices of the top_k fastest distinct valid records, fastest first;
        how many valid records; how many distinct valid ones)."""
        valid = [i for i in self.records_of(workload) if self.record_secs(i) < FAILED_SECS]
        valid.sort(key=lambda i: (self.record_secs(i), i))
        seen, distinct = set(), []
        for i in valid:
            sha = self.record_sha(i)
            if sha not in seen:
                seen.add(sha)
                distinct.append(i)
        return distinct[:top_k], len(valid), len(distinct)

    def resolve(self, ref: dict) -> int:
        """Record index of a trace reference {"workload", "record", "sha256"}; checks the
        trace's hash and, when the line moved (a repaired file), finds it by hash."""
        index = int(ref["record"])
        sha = ref.get("sha256")
        if 0 <= index < len(self.records) and self.records[index] is not None and (
                sha is None or self.record_sha(index) == sha):
            return index
        for i, rec in enumerate(self.records):
            if rec is not None and rec[0] == ref.get("workload") and self.record_sha(i) == sha:
                return i
        raise BadInput(f"{self.dir / RECORDS}: no record matches variant reference {ref}")

    def job(self, index: int) -> dict:
        """What a worker needs to rebuild a record: the workload line and the record."""
        rec = self.records[index]
        return {"workload": self.workloads[rec[0]], "record": rec[1]}


# ------------------------------------------------------------------ tasks of the model
def model_tasks(model_path, db: Database, input_shapes=None, progress: Progress | None = None) -> tuple[str, str, list[dict]]:
    """(model name, target description, tasks) where each task is {"name", "count",
    "workload"}: the model's tasks (as `mtcc tune` extracted them, with the target and
    layout recorded in tune.json) matched to the database's workloads by the
    structural hash MetaSchedule stores.  Without a model: one task per workload."""
    if model_path is None:
        target = db.meta.get("target") or json.dumps(db.target())
        return db.meta.get("model", db.dir.parent.name), target, [
            {"name": f"workload_{i}", "count": 1, "workload": i}
            for i, line in enumerate(db.workloads) if line is not None]
    import tvm.s_tir.meta_schedule as ms
    import tvm_ffi

    from . import frontend
    from .layout import DEFAULT_LAYOUT
    from .target import describe, parse_target
    from .tasks import legalize_and_fuse

    if db.meta.get("target"):
        target = parse_target(db.meta["target"])
    elif db.target():
        import tvm

        target = tvm.target.Target(db.target())
    else:
        raise BadInput(f"{db.dir}: no target in {META} and no records to read it from")
    layout = db.meta.get("layout", DEFAULT_LAYOUT)
    _say(progress, f"extracting the tasks of {model_path} ({describe(target)}, layout {layout})")
    model, mod = frontend.import_model(model_path, input_shapes)
    fused = legalize_and_fuse(mod, target, layout)
    extracted = ms.relax_integration.extract_tasks(fused, target)
    index_of = {db.workload_hash(i): i for i in range(len(db.workloads)) if db.workloads[i] is not None}
    tasks = []
    for ext in extracted:
        h = str(tvm_ffi.structural_hash(ext.dispatched[0]))
        tasks.append({"name": ext.task_name, "count": int(ext.weight), "workload": index_of.get(h)})
    return model.name, describe(target), tasks


# ------------------------------------------------------------------ calibration
def _calibration_dirs(schedules_dir: Path) -> list[Path]:
    dirs = [schedules_dir / "calibration", schedules_dir.parent.parent / "calibration",
            Path.cwd() / "schedules" / "calibration"]
    out = []
    for d in dirs:
        d = d.resolve()
        if d not in out:
            out.append(d)
    return out


def find_calibration(schedules_dir: str | os.PathLike) -> Path | None:
    """This machine's calibration file (schedules/calibration/<cpu>.json) or, failing
    that, any calibration file found near the schedules folder."""
    from .interference.machine import cpu_slug

    dirs = [d for d in _calibration_dirs(Path(schedules_dir)) if d.is_dir()]
    for d in dirs:
        if (d / f"{cpu_slug()}.json").exists():
            return d / f"{cpu_slug()}.json"
    for d in dirs:
        found = sorted(d.glob("*.json"))
        if found:
            return found[0]
    return None


def _one_core_calibration() -> dict:
    return {"format": "mtcc-calibration/1", "usable": False,
            "verdict": "one core: nothing can run beside a candidate, no interference levels",
            "levels": {"none": {"setting": None, "stressor": None, "memory_slowdown": 1.0}}}


def resolve_calibration(calibration, schedules_dir: Path, cores: list[int],
                        progress: Progress | None = None) -> tuple[dict, str]:
    """(calibration dict, where it came from)."""
    from .interference import calibration as cal_mod

    if isinstance(calibration, dict):
        if "levels" not in calibration:
            raise BadInput("calibration dict has no 'levels'")
        return calibration, "given"
    if calibration is not None:
        return cal_mod.load(calibration), str(calibration)
    found = find_calibration(schedules_dir)
    if found is not None:
        _say(progress, f"calibration: {found}")
        return cal_mod.load(found), str(found)
    if len(cores) < 2:
        return _one_core_calibration(), "one core"
    _say(progress, "no calibration file found: running a quick calibration (30 s)")
    return cal_mod.calibrate(cores=cores, seconds_budget=30, progress=progress), "quick calibration"


def _calibration_fingerprint(cal: dict) -> str:
    """What the level cells depend on: each level's stressor parameters (not where it ran)."""
    levels = {}
    for name, level in cal["levels"].items():
        config = dict(level.get("stressor") or {})
        config.pop("cores", None)
        config.pop("processes", None)
        levels[name] = config
    return _sha(levels)


def _calibration_summary(cal: dict, source: str) -> dict:
    return {"source": source, "fingerprint": _calibration_fingerprint(cal),
            "usable": cal.get("usable"), "verdict": cal.get("verdict"),
            "cpu_model": (cal.get("machine") or {}).get("cpu_model"),
            "levels": {name: {"setting": lv.get("setting"), "stressor": lv.get("stressor"),
                              "memory_slowdown": lv.get("memory_slowdown")}
                       for name, lv in cal["levels"].items()}}


def default_core_counts(n: int) -> list[int]:
    """1, 2, 4, ... up to n, and n itself."""
    counts, c = [], 1
    while c < n:
        counts.append(c)
        c *= 2
    return counts + [n]


# ------------------------------------------------------------------ the measuring worker
def _tensor_args(func, seed: int = 0):
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
    db = Database(schedules_dir)
    return build_record(db.job(db.resolve(trace_ref)), for_timing=for_timing)


def _worker_main() -> None:
    """Runs in a worker process (see _Worker): JSON requests on stdin, JSON replies on
    the original stdout; anything TVM prints goes to stderr."""
    import ctypes
    import signal

    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    parent = int(os.environ.get("MTCC_PARENT_PID", "0"))
    if os.environ.get("MTCC_PDEATHSIG") == "1":
        try:
            ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if parent and os.getppid() != parent:
        os._exit(0)
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
                args = _tensor_args(func)
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
                number = max(1, int(min_ms / 1e3 / max(b["once"], 1e-7)))
                name = getattr(b["lib"], "entry_name", None) or "main"
                evaluator = b["lib"].time_evaluator(name, dev, number=number, repeat=int(req.get("repeat", 2)),
                                                    min_repeat_ms=int(min_ms))
                result = evaluator(*b["args"])
                reply({"ok": True, "samples_us": [round(s * 1e6, 4) for s in result.results]})
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


class _Worker:
    """A measuring process pinned to `cores` with TVM_NUM_THREADS=len(cores).  Started
    once per core count and kept warm; restarted after a crash or a timeout."""

    def __init__(self, cores: Sequence[int]):
        self.cores = list(cores)
        self.proc: subprocess.Popen | None = None
        self._buf = b""
        self._log = None

    def start(self) -> "_Worker":
        env = {**os.environ, **tvm_thread_env(len(self.cores)), "OMP_NUM_THREADS": "1",
               "OPENBLAS_NUM_THREADS": "1", "MTCC_PARENT_PID": str(os.getpid()),
               "MTCC_PDEATHSIG": "1" if threading.current_thread() is threading.main_thread() else "0"}
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self._log = tempfile.TemporaryFile()
        cores = set(self.cores)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from mtcc.variants import _worker_main; _worker_main()"],
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

    def __enter__(self) -> "_Worker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


_live_workers: "set[_Worker]" = set()


def _stop_workers() -> None:
    for worker in list(_live_workers):
        worker.stop()


atexit.register(_stop_workers)


# ------------------------------------------------------------------ the characterization file
def _atomic_write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def _load_previous(out: Path, progress: Progress | None) -> dict | None:
    if not out.exists():
        return None
    try:
        data = json.loads(out.read_text())
    except (OSError, ValueError):
        _say(progress, f"{out}: unreadable, starting over")
        return None
    if data.get("format") != FORMAT:
        _say(progress, f"{out}: not a characterization ({data.get('format')}), starting over")
        return None
    return data


def _robust(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[(len(ordered) - 1) // 4]


def _merge_previous(tasks: list[dict], previous: dict | None, fingerprint: str,
                    progress: Progress | None) -> None:
    """Carry over measured cells of candidates that are still the same record."""
    if not previous:
        return
    same_levels = previous.get("calibration", {}).get("fingerprint") == fingerprint
    if not same_levels:
        _say(progress, "the calibration's levels changed since the last run: pressure cells are measured again")
    old = {t["name"]: t for t in previous.get("tasks", [])}
    for task in tasks:
        before = old.get(task["name"])
        if not before:
            continue
        by_record = {(c["record"], c["sha256"]): c for c in before.get("candidates", [])}
        for cand in task["candidates"]:
            prev = by_record.get((cand["record"], cand["sha256"]))
            if not prev:
                continue
            for key, cell in prev.get("cells", {}).items():
                if same_levels or parse_cell(key)[1] == "none":
                    cand["cells"][key] = cell
            for field in ("footprint", "build_s"):  # not "error": a rerun tries a failed build again
                if prev.get(field) is not None:
                    cand[field] = prev[field]


def characterize(model_path, schedules_dir, *, calibration=None, top_k: int = 8,
                 core_counts: Sequence[int] | None = None,
                 levels: Sequence[str] = LEVEL_ORDER, repeats: int = 5, min_repeat_ms: float = 20.0,
                 footprint_pairs: int | None = None, footprint_window_s: float = 0.05,
                 min_task_us: float = DEFAULT_MIN_TASK_US, tasks: Iterable[str] | None = None,
                 stressor_cores: int | None = None,
                 out=None, input_shapes=None, check_machine: bool = True,
                 progress: Progress | None = None) -> dict:
    """Measure the top-K candidates of every task at every core count x level (see the
    module doc); returns the characterization dict, also written to `out` (default
    SCHEDULES_DIR/characterization.json) after every candidate.

    calibration: a calibration dict or file; None = schedules/calibration/<cpu>.json if
      present, else a quick 30 s calibration.
    core_counts: default 1, 2, 4, ... up to the cores this process may use.
    levels: those missing from the calibration are left out ("none" always measured).
    repeats: rounds per cell; each round takes two samples of >= `min_repeat_ms`.
    tasks: restrict to these task names (default: every task).
    stressor_cores: at most this many of the free cores run the level's stressor
      (default: all of them, as during calibration: the rest of the machine is busy).
    check_machine: record vCPU sharing and load before/after (TVM-NOTES: co-running
      numbers on a time-shared VM read ~2x for reasons that have nothing to do with mtcc).
    """
    from .interference import machine
    from .interference.calibration import stressor_for_level
    from .interference.probe_process import ProbeProcess

    started = time.time()
    schedules_dir = Path(schedules_dir)
    db = Database(schedules_dir)
    out = Path(out) if out else schedules_dir / CHARACTERIZATION
    cores = machine.cores()
    if core_counts is None:
        core_counts = default_core_counts(len(cores))
    core_counts = sorted({int(n) for n in core_counts})
    if not core_counts or core_counts[0] < 1 or core_counts[-1] > len(cores):
        raise BadInput(f"core counts {core_counts}: this process may use {len(cores)} core(s)")
    if top_k < 1 or repeats < 1:
        raise BadInput("top_k and repeats must be at least 1")
    footprint_pairs = footprint_pairs or repeats

    previous = _load_previous(out, progress)
    if calibration is None and previous and previous.get("calibration_full"):
        cal, source = previous["calibration_full"], previous["calibration"]["source"]
    else:
        cal, source = resolve_calibration(calibration, schedules_dir, cores, progress)
    unknown = [lv for lv in levels if lv not in LEVEL_ORDER]
    if unknown:
        raise BadInput(f"unknown interference level(s) {unknown} (known: {', '.join(LEVEL_ORDER)})")
    used_levels = [lv for lv in LEVEL_ORDER if lv in levels and (lv == "none" or lv in cal["levels"])]
    dropped = [lv for lv in levels if lv not in used_levels]
    if dropped:
        _say(progress, f"levels {dropped} not in the calibration ({cal.get('verdict', '')}): not measured")
    fingerprint = _calibration_fingerprint(cal)

    model_name, target, found = model_tasks(model_path, db, input_shapes, progress)
    wanted = set(tasks) if tasks is not None else None
    if wanted is not None:
        missing = wanted - {t["name"] for t in found}
        if missing:
            raise BadInput(f"no task named {', '.join(sorted(missing))} in {model_path}")
    task_entries = []
    for t in found:
        if wanted is not None and t["name"] not in wanted:
            continue
        entry = {"name": t["name"], "count": t["count"], "workload": t["workload"],
                 "tuned_us": None, "valid_records": 0, "distinct_valid": 0,
                 "skipped": None, "candidates": []}
        if t["workload"] is None:
            entry["skipped"] = "not in the database (not tuned)"
        else:
            picked, n_valid, n_distinct = db.candidates(t["workload"], top_k)
            entry.update(valid_records=n_valid, distinct_valid=n_distinct)
            if not picked:
                entry["skipped"] = "no valid record"
            else:
                entry["tuned_us"] = round(db.record_secs(picked[0]) * 1e6, 3)
                entry["candidates"] = [
                    {"id": f"r{i}", "record": i, "sha256": db.record_sha(i), "rank": rank,
                     "tuned_us": round(db.record_secs(i) * 1e6, 3), "build_s": None, "error": None,
                     "cells": {}, "footprint": None}
                    for rank, i in enumerate(picked)]
                if entry["tuned_us"] < min_task_us:
                    entry["skipped"] = (f"best tuned time {entry['tuned_us']:.2f} us < {min_task_us} us: "
                                        "too short for the variant choice to matter")
                    entry["candidates"] = entry["candidates"][:1]
        task_entries.append(entry)
    _merge_previous(task_entries, previous, fingerprint, progress)
    # A run restricted to some tasks keeps what earlier runs measured for the others.
    chosen = {t["name"] for t in task_entries}
    others = {t["name"]: t for t in (previous or {}).get("tasks", []) if t["name"] not in chosen}
    all_tasks = [next(e for e in task_entries if e["name"] == t["name"]) if t["name"] in chosen
                 else others[t["name"]] for t in found if t["name"] in chosen or t["name"] in others]
    known = {t["workload"] for t in found}
    unmatched = [i for i, line in enumerate(db.workloads) if line is not None and i not in known]

    state = {
        "format": FORMAT, "model": model_name, "model_path": str(model_path) if model_path else None,
        "target": target, "schedules": str(schedules_dir),
        "calibration": _calibration_summary(cal, source), "calibration_full": cal,
        "machine": {"cpu_model": machine.cpu_model(), "cores": cores},
        "core_counts": core_counts, "levels": used_levels, "top_k": top_k,
        "settings": {"repeats": repeats, "min_repeat_ms": min_repeat_ms, "stressor_cores": stressor_cores,
                     "footprint_pairs": footprint_pairs, "footprint_window_s": footprint_window_s,
                     "min_task_us": min_task_us, "statistic": "lower quartile of the samples"},
        "tasks": all_tasks, "unmatched_workloads": unmatched,
        "runs": list(previous.get("runs", [])) if previous else [],
    }
    run = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cells_measured": 0,
           "footprints_measured": 0, "load_average_before": machine.load_average()}
    if check_machine:
        run["vcpu_sharing_before"] = machine.vcpu_sharing().get("state")

    def save() -> None:
        state["runs_in_progress"] = run
        _atomic_write(out, state)

    for t in task_entries:
        if t["skipped"]:
            _say(progress, f"skip {t['name']}: {t['skipped']}")
    if unmatched:
        _say(progress, f"{len(unmatched)} workload(s) in the database are not tasks of this model: ignored")
    live = [(t, c) for t in task_entries if not t["skipped"] for c in t["candidates"]]
    # Cells no machine of this size can measure: a candidate holding every core leaves none for a stressor.
    for t, c in live:
        for n in core_counts:
            for lv in used_levels:
                if lv != "none" and n >= len(cores) and cell_key(n, lv) not in c["cells"]:
                    c["cells"][cell_key(n, lv)] = {
                        "status": "not_measurable",
                        "reason": f"no free core for a stressor: the candidate holds all {len(cores)} cores"}

    stressors: dict[str, object] = {}
    # Footprints are measured with a 1-core worker, also when 1 is not among the core counts.
    phases = sorted(set(core_counts) | ({1} if len(cores) >= 2 else set()))
    try:
        for n in phases:
            todo = [(t, c, [lv for lv in used_levels if cell_key(n, lv) not in c["cells"]])
                    for t, c in live if not c["error"] and n in core_counts]
            todo = [(t, c, lvs) for t, c, lvs in todo if lvs]
            need_footprint = (n == 1 and len(cores) >= 2 and
                              any(c["footprint"] is None and not c["error"] for _, c in live))
            if not todo and not need_footprint:
                continue
            worker_cores = cores[:n]
            free = cores[n:] if stressor_cores is None else cores[n:n + max(1, stressor_cores)]
            needed_levels = sorted({lv for _, _, lvs in todo for lv in lvs if lv != "none"},
                                   key=LEVEL_ORDER.index)
            _say(progress, f"{n} core(s) {worker_cores}: {len(todo)} candidate(s) to measure"
                           + (f", stressors on {free}" if needed_levels else ""))
            phase = {"cores": n, "candidates": 0, "cells": 0, "footprints": 0}
            phase_started = time.perf_counter()
            run.setdefault("phases", []).append(phase)
            for lv in needed_levels:
                s = stressor_for_level(cal, lv, cores=free)
                if s is not None:
                    s.start()
                    s.pause()
                    stressors[lv] = s
            with _Worker(worker_cores) as worker:
                phase["start_s"] = round(time.perf_counter() - phase_started, 2)
                if n == 1 and len(cores) >= 2:
                    fp_todo = {id(c) for _, c in live if c["footprint"] is None and not c["error"]}
                else:
                    fp_todo = set()
                order = todo + [(t, c, []) for t, c in live if id(c) in fp_todo
                                and not any(c is c2 for _, c2, _ in todo)]
                probe = ProbeProcess(cores[1]) if fp_todo else None
                try:
                    for done, (t, c, lvs) in enumerate(order):
                        key = f"{t['name']}/{c['id']}"
                        phase["candidates"] += 1
                        try:
                            built = worker.request(BUILD_TIMEOUT_S, cmd="build", key=key,
                                                   job=db.job(c["record"]))
                            c["build_s"] = built["build_s"]
                            samples = {lv: [] for lv in lvs}
                            for r in range(repeats):
                                rot = lvs[r % len(lvs):] + lvs[:r % len(lvs)] if lvs else []
                                for lv in rot:
                                    s = stressors.get(lv)
                                    if s is not None:
                                        s.resume()
                                    try:
                                        got = worker.request(TIME_TIMEOUT_S, cmd="time", key=key,
                                                             repeat=2, min_repeat_ms=min_repeat_ms)
                                    finally:
                                        if s is not None:
                                            s.pause()
                                    samples[lv] += got["samples_us"]
                            for lv in lvs:
                                c["cells"][cell_key(n, lv)] = {"us": round(_robust(samples[lv]), 4),
                                                               "samples_us": samples[lv]}
                                run["cells_measured"] += 1
                                phase["cells"] += 1
                            if id(c) in fp_todo:
                                c["footprint"] = _footprint(worker, probe, key, footprint_pairs,
                                                            footprint_window_s)
                                run["footprints_measured"] += 1
                                phase["footprints"] += 1
                            worker.request(30, cmd="drop", key=key)
                        except WorkerError as e:
                            c["error"] = f"{n} core(s): {e}"
                            _say(progress, f"{key}: {c['error']}")
                        cells = ", ".join(f"{lv} {c['cells'][cell_key(n, lv)]['us']:.1f}"
                                          for lv in lvs if cell_key(n, lv) in c["cells"])
                        fp = f", footprint {c['footprint']['ratio']:.3f}x" if (
                            id(c) in fp_todo and c["footprint"]) else ""
                        _say(progress, f"[{done + 1}/{len(order)}] {n}c {key}: {cells or '-'} us{fp}")
                        phase["wall_s"] = round(time.perf_counter() - phase_started, 2)
                        save()
                finally:
                    if probe is not None:
                        probe.stop()
            for s in stressors.values():
                s.stop()
            stressors.clear()
    finally:
        for s in stressors.values():
            s.stop()
        run["wall_s"] = round(time.time() - started, 2)
        run["load_average_after"] = machine.load_average()
        if check_machine:
            run["vcpu_sharing_after"] = machine.vcpu_sharing().get("state")
        state.pop("runs_in_progress", None)
        state["runs"].append(run)
        _atomic_write(out, state)
    _say(progress, f"characterized {len(live)} candidate(s): {run['cells_measured']} new cell(s), "
                   f"{run['footprints_measured']} footprint(s) in {run['wall_s']:.1f} s -> {out}")
    return state


def _footprint(worker: _Worker, probe, key: str, pairs: int, window_s: float) -> dict:
    """How much the candidate, looping on the worker's core, slows the memory probe on
    the next core: median over interleaved alone/beside pairs."""
    ratios, alone = [], []
    for _ in range(pairs):
        a = _robust(probe.samples("memory", window_s))
        worker.request(30, cmd="loop_start", key=key)
        try:
            b = _robust(probe.samples("memory", window_s))
        finally:
            worker.request(TIME_TIMEOUT_S, cmd="loop_stop")
        ratios.append(round(b / a, 4))
        alone.append(round(a * 1e3, 4))
    return {"ratio": round(statistics.median(ratios), 4), "ratios": ratios,
            "probe_alone_ms": round(statistics.median(alone), 4)}


# ------------------------------------------------------------------ the Pareto filter
def _load_characterization(characterization) -> dict:
    if isinstance(characterization, dict):
        return characterization
    path = Path(characterization)
    if path.is_dir():
        path = path / CHARACTERIZATION
    data = _read_json(path, "characterization")
    if data.get("format") != FORMAT:
        raise BadInput(f"{path}: not an mtcc characterization (expected format {FORMAT})")
    return data


def objective_cells(characterization: dict) -> dict:
    """Which cells the objectives read (see the module doc): {"alone", "pressure",
    "alone_max_cores" (or None), "pressure_level", "pressure_cores"}."""
    counts = sorted(characterization["core_counts"])
    levels = [lv for lv in LEVEL_ORDER if lv in characterization["levels"]]
    machine_cores = len(characterization.get("machine", {}).get("cores") or [counts[-1]])
    top = levels[-1] if levels else "none"
    if top == "none":
        p = counts[-1]
    else:
        measurable = [n for n in counts if n < machine_cores]
        p = measurable[-1] if measurable else counts[-1]
        if not measurable:
            top = "none"
    return {"alone": cell_key(p, "none"), "pressure": cell_key(p, top),
            "alone_max_cores": cell_key(counts[-1], "none") if counts[-1] != p else None,
            "pressure_level": top, "pressure_cores": p}


def _latency_table(cand: dict) -> dict[str, float]:
    return {k: v["us"] for k, v in cand.get("cells", {}).items() if isinstance(v, dict) and "us" in v}


def _footprint_objective(ratio) -> float:
    """A neighbour cannot make the probe faster: ratios below 1 are noise and read as 1.
    Two decimals: differences under 1 % are within any machine's noise and must not
    keep a variant on their own.  Unmeasured (one core) reads as 1."""
    return 1.0 if ratio is None else round(max(1.0, float(ratio)), 2)


def _cell_order(key: str) -> tuple[int, int]:
    cores, level = parse_cell(key)
    return cores, LEVEL_ORDER.index(level) if level in LEVEL_ORDER else len(LEVEL_ORDER)


def _target_cores(target: str) -> int:
    import re

    found = re.search(r"num-cores[=\"': ]+(\d+)", str(target))
    return int(found.group(1)) if found else 1


def select_variants(characterization, max_variants: int = 5, *, out=None, write: bool = True) -> dict:
    """The Pareto set of every task (see the module doc), as variants.json's dict;
    written to `out` (default: the characterization's schedules folder) when `write`."""
    from .pareto import best_alone_differs_under_pressure, pareto_front

    char = _load_characterization(characterization)
    cells = objective_cells(char)
    objectives = ["latency_alone", "latency_pressure", "footprint"]
    if cells["alone_max_cores"]:
        objectives.append("latency_alone_max_cores")
    tasks_out = []
    for task in char["tasks"]:
        rows = []
        for cand in task["candidates"]:
            table = _latency_table(cand)
            fp = cand.get("footprint") or {}
            row = {"id": cand["id"], "cand": cand, "table": table,
                   "latency_alone": table.get(cells["alone"]),
                   "latency_pressure": table.get(cells["pressure"]),
                   "footprint": _footprint_objective(fp.get("ratio")),
                   "latency_alone_max_cores": table.get(cells["alone_max_cores"]) if cells["alone_max_cores"] else None}
            if all(row[o] is not None for o in objectives):
                rows.append(row)
        entry = {"name": task["name"], "count": task.get("count", 1)}
        if rows and not task.get("skipped"):
            front = pareto_front(rows, max_variants, objectives)
            differs = best_alone_differs_under_pressure(front, objectives)
            entry.update(measured=True, candidates_measured=len(rows))
        else:
            # Too short to matter, not tuned, or nothing measured: the tuner's best, as is.
            front = [{"id": c["id"], "cand": c, "table": _latency_table(c),
                      "footprint": _footprint_objective((c.get("footprint") or {}).get("ratio"))}
                     for c in task["candidates"][:1]]
            differs = False
            entry.update(measured=False, candidates_measured=len(rows),
                         reason=task.get("skipped") or "no candidate has every objective measured")
        variants = []
        source = "characterization"
        for row in front:
            cand = row["cand"]
            latency = dict(sorted(row["table"].items(), key=lambda kv: _cell_order(kv[0])))
            if not latency and cand.get("tuned_us") is not None:
                # A task too short to characterize: the tuner's own measurement, made with
                # the target's thread count on a quiet core set (labelled latency_source).
                latency = {cell_key(_target_cores(char["target"]), "none"): cand["tuned_us"]}
                source = "tuning"
            variants.append({
                "id": cand["id"],
                "trace": {"database": RECORDS, "workload": task["workload"], "record": cand["record"],
                          "sha256": cand["sha256"]},
                "latency_us": latency,
                "footprint": row.get("footprint", 1.0),
                "footprint_measured": (cand.get("footprint") or {}).get("ratio"),
                "tuned_us": cand.get("tuned_us"),
            })
        entry["variants"] = variants
        entry["best_alone_differs_under_pressure"] = bool(differs)
        if not entry["measured"] and variants:
            entry["latency_source"] = source
        tasks_out.append(entry)
    result = {
        "format": VARIANTS_FORMAT,
        "model": char["model"], "target": char["target"],
        "objectives": {"names": objectives, "cells": cells,
                       "rule": "non-dominated over the objectives, at most max_variants, "
                               "best on every objective always kept (mtcc.pareto.pareto_front)"},
        "max_variants": max_variants,
        "core_counts": char["core_counts"], "levels": char["levels"],
        "calibration": {k: char["calibration"].get(k) for k in ("source", "fingerprint", "usable", "verdict")},
        "characterization": CHARACTERIZATION,
        "tasks": tasks_out,
    }
    if write:
        dest = Path(out) if out else Path(char["schedules"]) / VARIANTS
        if dest.is_dir():
            dest = dest / VARIANTS
        _atomic_write(dest, result)
    return result


def _read_json(path: Path, what: str):
    """A stage's JSON file, or BadInput naming it (missing: say how to make it)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise BadInput(f"{path}: no {what} (run `mtcc tune --stage characterize` first)") from None
    except (OSError, ValueError) as e:
        raise BadInput(f"{path}: unreadable {what} ({e})") from None


def load_variants(schedules_dir) -> dict:
    path = Path(schedules_dir)
    path = path / VARIANTS if path.is_dir() else path
    data = _read_json(path, "variants file")
    if not isinstance(data, dict) or "tasks" not in data:
        raise BadInput(f"{path}: not an mtcc variants file")
    return data


# ------------------------------------------------------------------ evidence
def _model_evidence(var: dict, source: str) -> dict:
    cells = var.get("objectives", {}).get("cells", {})
    alone_key, pressure_key = cells.get("alone"), cells.get("pressure")
    tasks = var["tasks"]
    multi = [t["name"] for t in tasks if len(t["variants"]) > 1]
    differs = [t["name"] for t in tasks if t.get("best_alone_differs_under_pressure")]
    sums = {"alone_best_alone": 0.0, "alone_best_pressure": 0.0,
            "pressure_best_alone": 0.0, "pressure_best_pressure": 0.0}
    unmeasured = []
    for t in tasks:
        vs = [v for v in t["variants"] if v["latency_us"]]
        if not vs:
            unmeasured.append(t["name"])
            continue

        def lat(v, key):
            # A cell a variant lacks (a skipped task's tuner time) reads as its alone time.
            table = v["latency_us"]
            return table.get(key) or table.get(alone_key) or min(table.values())

        count = t.get("count", 1)
        best_alone = min(vs, key=lambda v: (lat(v, alone_key), lat(v, pressure_key)))
        best_pressure = min(vs, key=lambda v: (lat(v, pressure_key), lat(v, alone_key)))
        sums["alone_best_alone"] += count * lat(best_alone, alone_key)
        sums["alone_best_pressure"] += count * lat(best_pressure, alone_key)
        sums["pressure_best_alone"] += count * lat(best_alone, pressure_key)
        sums["pressure_best_pressure"] += count * lat(best_pressure, pressure_key)
    ratio = (sums["pressure_best_alone"] / sums["pressure_best_pressure"]
             if sums["pressure_best_pressure"] else None)
    cost = sums["alone_best_pressure"] / sums["alone_best_alone"] if sums["alone_best_alone"] else None
    return {
        "model": var.get("model"), "target": var.get("target"), "source": source,
        "tasks": len(tasks), "tasks_measured": sum(1 for t in tasks if t.get("measured")),
        "tasks_multi_variant": len(multi), "tasks_best_alone_differs": len(differs),
        "multi_variant": multi, "best_alone_differs": differs,
        "alone_cell": alone_key, "pressure_cell": pressure_key,
        "pressure_level": cells.get("pressure_level"),
        "calibration_usable": var.get("calibration", {}).get("usable"),
        "model_us": {k: round(v, 3) for k, v in sums.items()},
        # > 1: under pressure, the best-under-pressure variants beat the best-alone ones by this factor.
        "pressure_ratio_best_alone_over_best_pressure": round(ratio, 4) if ratio else None,
        # >= 1: what the best-under-pressure variants cost when the machine is quiet.
        "alone_ratio_best_pressure_over_best_alone": round(cost, 4) if cost else None,
        "tasks_without_latency": unmeasured,
    }


def evidence(schedules_dir) -> dict:
    """Per model: tasks with more than one variant, tasks whose fastest-alone variant is
    not the fastest under pressure, and the model-level latency under pressure (sum over
    tasks of call count x latency at the pressure cell) with the best-under-pressure
    variants against the best-alone ones.  `schedules_dir` is one model's folder (with
    variants.json) or a folder above several (searched recursively)."""
    root = Path(schedules_dir)
    if (root / VARIANTS).exists():
        files = [root / VARIANTS]
    elif root.is_file():
        files = [root]
    else:
        files = sorted(root.rglob(VARIANTS))
    if not files:
        raise BadInput(f"{root}: no {VARIANTS} here or below (run `mtcc tune --stage characterize`)")
    return {"models": [_model_evidence(load_variants(f), str(f.parent)) for f in files]}


def evidence_rows(ev: dict) -> tuple[list[str], list[list[str]]]:
    """(column titles, rows of text) for a rich Table, one row per model."""
    cols = ["model", "target", "tasks", ">1 variant", "best alone != best under pressure",
            "pressure cell", "model under pressure: best-alone / best-pressure",
            "quiet cost of best-pressure"]
    rows = []
    for m in ev["models"]:
        r = m["pressure_ratio_best_alone_over_best_pressure"]
        c = m["alone_ratio_best_pressure_over_best_alone"]
        rows.append([str(m["model"]), str(m["target"]),
                     f"{m['tasks_measured']}/{m['tasks']} measured",
                     str(m["tasks_multi_variant"]), str(m["tasks_best_alone_differs"]),
                     str(m["pressure_cell"]),
                     f"{r:.3f}x" if r else "-", f"{c:.3f}x" if c else "-"])
    return cols, rows


def variant_rows(var: dict) -> tuple[list[str], list[list[str]]]:
    """(column titles, rows) for a per-task table of a variants.json dict."""
    cells = var.get("objectives", {}).get("cells", {})
    keys = [cells.get("alone"), cells.get("pressure")]
    if cells.get("alone_max_cores"):
        keys.append(cells["alone_max_cores"])
    keys = [k for k in dict.fromkeys(keys) if k]
    cols = ["task", "calls", "variant"] + [f"{k} us" for k in keys] + ["footprint", "note"]
    rows = []
    for t in var["tasks"]:
        for i, v in enumerate(t["variants"]):
            note = ""
            if i == 0:
                note = ("alone != pressure" if t.get("best_alone_differs_under_pressure")
                        else ("" if t.get("measured") else t.get("reason", "not measured")))
            rows.append([t["name"] if i == 0 else "", str(t.get("count", 1)) if i == 0 else "", v["id"]]
                        + [f"{v['latency_us'][k]:.1f}" if k in v["latency_us"] else "-" for k in keys]
                        + [f"{v['footprint']:.3f}", note])
    return cols, rows


def characterize_and_select(model_path, schedules_dir, *, max_variants: int = 5, **kwargs) -> dict:
    """The whole stage as `mtcc tune` runs it after the search: characterize (resumable),
    write variants.json, return the evidence for this model."""
    char = characterize(model_path, schedules_dir, **kwargs)
    select_variants(char, max_variants)
    return evidence(schedules_dir)["models"][0]

"""`mtcc tune`: MetaSchedule search over every task of a model, into a resumable database.

The database is MetaSchedule's own JSON format (database_workload.json and
database_tuning_record.json, one JSON line per entry) so TVM's tools read it.
Every measured candidate is kept, not only the best: the variants stage needs the
top-K per task.  Nothing is lost on a crash: MetaSchedule appends one line per
measured candidate; on start a torn last line (from SIGKILL mid-write) is cut and
duplicate lines dropped, and the trial budget counts the records already there.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import frontend
from ..errors import BadInput
from ..interference import machine
from ..progress import Progress as TextProgress, say
from ..frontend import tasks as task_mod
from ..frontend.layout import DEFAULT_LAYOUT
from ..target import describe, target_cores, target_mcpu, target_name
from ..threads import thread_env_restored, use_threads
from . import refine as refine_tasks
from .database import (COLD, FAILED_SECS, FOLD_BATCH_NORM, IMPORT_OPTIONS, META, RECORDS, check_folder, holds_records,
                       import_options, mean_secs, open_for_tuning, open_readonly, read_meta, record_lines)



def default_out(model_name: str, target) -> Path:
    return Path("schedules") / model_name / target_name(target)


# ------------------------------------------------------------------ database
def records_by_task(db, contexts) -> list[list]:
    """All tuning records (failed ones included) of each task's workload."""
    by_workload: dict[int, list] = {}
    for rec in db.get_all_tuning_records():
        by_workload.setdefault(rec.workload.__hash__(), []).append(rec)
    out = []
    for ctx in contexts:
        if db.has_workload(ctx.mod):
            wl = db.commit_workload(ctx.mod)  # returns the existing workload, writes nothing
            out.append(by_workload.get(wl.__hash__(), []))
        else:
            out.append([])
    return out


# ------------------------------------------------------------------ progress
@dataclass
class TaskProgress:
    name: str
    flops: float
    count: int
    trials: int = 0
    best_secs: float = float("inf")

    @property
    def gflops(self) -> float:
        return self.flops / self.best_secs / 1e9 if self.best_secs < FAILED_SECS and self.flops else 0.0


@dataclass
class Progress:
    """What the tune has done so far; fed by a MeasureCallback after every batch."""

    tasks: list[TaskProgress]
    budget: int
    existing: int
    started: float = field(default_factory=time.perf_counter)
    new_trials: int = 0
    listeners: list = field(default_factory=list)
    ends_by: float | None = None  # perf_counter() of a deadline, if the run has one

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def eta(self) -> float | None:
        remaining = max(0, self.budget - self.existing - self.new_trials)
        if not self.new_trials:
            return None
        eta = remaining * self.elapsed / self.new_trials
        return eta if self.ends_by is None else max(0.0, min(eta, self.ends_by - time.perf_counter()))

    def record(self, task_id: int, run_secs: list[float | None]) -> None:
        task = self.tasks[task_id]
        task.trials += len(run_secs)
        self.new_trials += len(run_secs)
        for secs in run_secs:
            if secs is not None and secs < task.best_secs:
                task.best_secs = secs
        for listener in self.listeners:
            listener(self)


def _progress_callback(progress: Progress):
    from tvm.ir.utils import derived_object
    from tvm.s_tir.meta_schedule.measure_callback import PyMeasureCallback

    @derived_object
    class ProgressCallback(PyMeasureCallback):
        def apply(self, task_scheduler, task_id, measure_candidates, builder_results, runner_results):
            secs = []
            for built, ran in zip(builder_results, runner_results):
                if built.error_msg is None and ran.error_msg is None and ran.run_secs:
                    values = [float(s) for s in ran.run_secs]
                    secs.append(sum(values) / len(values))
                else:
                    secs.append(None)
            progress.record(task_id, secs)

    return ProgressCallback()


# ------------------------------------------------------------------ runners
@dataclass
class RpcSpec:
    host: str
    port: int
    key: str

    @staticmethod
    def parse(tracker: str, key: str | None) -> "RpcSpec":
        host, _, port = tracker.rpartition(":")
        if not host or not port.isdigit():
            raise BadInput(f"--rpc-tracker {tracker!r}: expected HOST:PORT")
        if not key:
            raise BadInput("--rpc-key is required with --rpc-tracker")
        return RpcSpec(host, int(port), key)


def _evaluator(cold_caches: bool = False):
    from tvm.s_tir.meta_schedule.runner import EvaluatorConfig

    if cold_caches:
        # Every argument but the first (the input, which the layer before just wrote)
        # flushed from the caches before each single run: weights and residual come from
        # memory, as inside the model.  resnet50's six slowest convolutions in place,
        # searched this way at 1 thread: the whole model 0.945-0.977x on 1 core, 0.927-0.947x on 2.
        return EvaluatorConfig(number=1, repeat=10, min_repeat_ms=0, enable_cpu_cache_flush=True)
    # 3 runs of at least 50 ms each: stable enough on a noisy VM without dominating tune time
    return EvaluatorConfig(number=3, repeat=1, min_repeat_ms=50, enable_cpu_cache_flush=False)


def make_runner(rpc: RpcSpec | None, cold_caches: bool = False):
    from tvm.s_tir.meta_schedule.runner import LocalRunner, RPCConfig, RPCRunner

    if rpc is None:
        return LocalRunner(evaluator_config=_evaluator(cold_caches))
    config = RPCConfig(tracker_host=rpc.host, tracker_port=rpc.port, tracker_key=rpc.key,
                       session_priority=1, session_timeout_sec=120)
    return RPCRunner(rpc_config=config, evaluator_config=_evaluator(cold_caches), max_workers=1)


def check_tracker(rpc: RpcSpec, timeout: float = 5.0) -> None:
    """Fail early, with one line, if the tracker or a server for the key is missing.

    TVM 0.27's tracker summary is {"queue_info": {key: {"free", "pending"}},
    "server_info": [{"key": "server:<key>", "addr": ...}]}.  A queue entry alone proves
    nothing (a client's request for a key creates one), so a key counts only when a
    server registered under it or its queue has a free slot."""
    import socket

    import tvm.rpc
    from ..errors import EnvironmentProblem

    where = f"--rpc-tracker {rpc.host}:{rpc.port}"
    try:
        # TVM's client retries a refused connection for 60 s; probe once first.
        socket.create_connection((rpc.host, rpc.port), timeout=timeout).close()
        summary = tvm.rpc.connect_tracker(rpc.host, rpc.port).summary()
    except Exception as e:  # noqa: BLE001
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise EnvironmentProblem(f"{where}: cannot reach the tracker ({reason})") from None
    summary = summary if isinstance(summary, dict) else {}
    servers = {str(s.get("key", "")).removeprefix("server:") for s in summary.get("server_info", [])
               if isinstance(s, dict)}
    free = {k for k, q in summary.get("queue_info", {}).items() if isinstance(q, dict) and q.get("free", 0) > 0}
    keys = servers | free
    if rpc.key not in keys:
        raise EnvironmentProblem(f"--rpc-key {rpc.key}: no server registered under this key at "
                                 f"{rpc.host}:{rpc.port} (keys: {', '.join(sorted(keys)) or 'none'})")


# ------------------------------------------------------------------ tune
@dataclass
class TuneResult:
    model: str
    target: str
    out: str
    layout: str
    trials_requested: int
    trials_existing: int
    trials_new: int
    trials_total: int  # the folder's records after the run, every task's (--refine/--task tune a few)
    wall_s: float
    tasks: list[dict]
    refined: list[str] | None = None  # the tasks --refine picked
    flush_costs: dict | None = None   # --cold-caches --refine: {task: {"hot_us", "flushed_us"}} it ranked by
    stopped_at_deadline: bool = False

    def as_dict(self) -> dict:
        est = sum(t["best_us"] * t["count"] for t in self.tasks if t["best_us"] is not None)
        return {
            "model": self.model, "target": self.target, "out": self.out, "layout": self.layout,
            "trials_requested": self.trials_requested, "trials_existing": self.trials_existing,
            "trials_new": self.trials_new, "trials_total": self.trials_total,
            "wall_s": round(self.wall_s, 2),
            "seconds_per_trial": round(self.wall_s / self.trials_new, 3) if self.trials_new else None,
            "tasks_tuned": sum(1 for t in self.tasks if t["best_us"] is not None),
            "estimated_latency_ms": round(est / 1e3, 4),
            "tasks": self.tasks,
            **({"refined": self.refined} if self.refined is not None else {}),
            **({"flush_costs": self.flush_costs} if self.flush_costs is not None else {}),
            **({"stopped_at_deadline": True} if self.stopped_at_deadline else {}),
        }


def _select_tasks(extracted, names, model_name: str):
    """The tasks named (all when `names` is empty); an unknown name is refused."""
    if not names:
        return extracted
    known = [t.task_name for t in extracted]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise BadInput(f"--task {unknown[0]}: {model_name} has no such tunable task "
                       f"(tasks: {', '.join(known)})")
    return [t for t in extracted if t.task_name in set(names)]


def default_trials(graph, names: set[str] | None = None) -> int:
    """A budget that lets the search work on the tasks that hold the time: 64 per
    compute-heavy task, 16 per data-movement task (of the tasks in `names`, if given)."""
    chosen = [t for t in graph.tasks if names is None or t.name in names]
    heavy = sum(1 for t in chosen if t.flops > 1e6)
    return 64 * heavy + 16 * (len(chosen) - heavy)


# MetaSchedule's evolutionary search draws and evolves this many schedules before every
# batch it sends for measurement (its default 512).  On inception_v1's convolutions on
# these 2 vCPUs that costs 15-31 s a batch (7 s to draw, 6 s a generation), against
# 1-3 s to build and time the batch: the search, not the measuring, sets the wall time.
DEFAULT_POPULATION = 512


class _TimeUp(Exception):
    """Raised by the deadline callback to end MetaSchedule's loop; caught in tune()."""


def _deadline_callback(deadline: float, fired: list):
    """A MeasureCallback that ends the search once time.monotonic() passes `deadline`.
    It runs after MetaSchedule's own callbacks, so the batch it sees is already in the
    database.  Before it ends the search it joins every other task's batch still in
    flight (TaskScheduler.join_running_task runs their callbacks, this one included,
    which then lets them through): MetaSchedule joins no batch before every task has had
    its first, so a deadline inside that round used to drop every batch but the first
    one joined (inception_v2, 61 tasks: 8 trials kept of a round of ~480).  The search
    ends at most one batch per task past its deadline."""
    from tvm.ir.utils import derived_object
    from tvm.s_tir.meta_schedule.measure_callback import PyMeasureCallback

    @derived_object
    class DeadlineCallback(PyMeasureCallback):
        def apply(self, task_scheduler, task_id, measure_candidates, builder_results, runner_results):
            if fired or time.monotonic() < deadline:
                return  # before the deadline, or a batch joined below
            fired.append(True)
            for other, record in enumerate(task_scheduler.tasks_):
                if other != task_id and record.runner_futures is not None:
                    task_scheduler.join_running_task(other)
            raise _TimeUp()

    return DeadlineCallback()


def _per_iter(remaining: int, num_tasks: int, cap: int) -> int:
    """MetaSchedule's gradient scheduler first gives every task one batch in turn, so a
    batch must be small enough for the budget to reach every task."""
    return max(4, min(cap, remaining // max(1, 2 * num_tasks)))


@thread_env_restored()  # use_threads below sets them for this run's measuring workers only
def tune(model_path, *, target, trials: int | None = None, out: str | Path | None = None,
         input_shapes=None, layout: str = DEFAULT_LAYOUT, rpc: RpcSpec | None = None,
         trials_per_iter: int = 32, seed: int = 0, listeners=(), command: str | None = None,
         only_tasks=None, fold_batch_norm: bool | None = None, measure_threads: int | None = None,
         refine: int | None = None, cold_caches: bool = False, notes: TextProgress = None,
         deadline: float | None = None, population: int = DEFAULT_POPULATION,
         first_round: int | None = None, cost_model=None) -> TuneResult:
    """Tune every task of the model (or the tasks named in `only_tasks`) until the
    database holds `trials` records for them in all.  `fold_batch_norm` (None: on for a
    new folder, as recorded for one that holds records) is recorded in tune.json with the
    import's other options (tune.database.IMPORT_OPTIONS).  `measure_threads`: the
    threads every candidate is timed on (default: the target's cores, or TVM_NUM_THREADS
    where exported); a run on other threads than the folder's others adds candidates
    tiled for that many cores, which characterization ranks among their own
    (DatabaseLines.candidates).  `refine`: tune only that many tasks, those with the most
    time to win by the records so far (tune.refine); `trials` then counts their records
    (default: what they hold plus refine.TRIALS_PER_TASK each).  `cold_caches`: time
    every candidate with its weights and other operands flushed from the caches (see
    _evaluator); the folder then applies these tasks' cold search, and characterization
    ranks their cold candidates first and picks their default and claims by pairs timed
    that way (tune.database.DatabaseLines.candidates, variants.confirm).  With `refine`,
    the tasks picked are those that lose most time with their operands flushed, timed
    alone first (refine.tasks_to_search_cold).  `notes`: a line printer for that.
    `deadline` (time.monotonic()): stop the search at the first batch measured after it
    (the result says `stopped_at_deadline`).  `population`: schedules the evolutionary
    search draws per batch (DEFAULT_POPULATION).  `first_round` (without `trials`): search
    only the tasks without records, each one batch of that many (the recipe's first
    round; a task whose space is small ends with fewer).  `cost_model`: the MetaSchedule
    cost model to search with and to train on this run's trials (default: a fresh
    XGBoost model, which ranks candidates at random until it holds 100 samples); the
    recipe carries one from round to round (recipe.CostModels), and tune.json records
    how many samples it held when the run started."""
    import tvm.s_tir.meta_schedule as ms

    from .builder import WarmBuilder

    out = Path(out) if out else default_out(Path(model_path).stem, target)  # Model.name is the file's stem
    options = _import_choice(out, fold_batch_norm)
    model, mod = frontend.import_model(model_path, input_shapes, **options)
    fused = task_mod.legalize_and_fuse(mod, target, layout)
    graph = task_mod.extract(mod, target, layout)
    db = open_for_tuning(out)
    _quiet_metaschedule()

    # Tune contexts are made only when there is something to tune: making one imports
    # tensor intrinsics (every target's, 20-30 s here, unless register_x86_intrinsics_only
    # ran first), which a resume that already has its budget, or a bad --rpc-tracker, need
    # not wait for.
    extracted = [t for t in ms.relax_integration.extract_tasks(fused, target)
                 if not t.mod.attrs.get("tirx.is_scheduled", False)]  # as the contexts skip them
    all_views = [_TaskView(t.task_name, t.dispatched[0]) for t in extracted]
    all_weights = [t.weight for t in extracted]
    flops = {t.name: t.flops for t in graph.tasks}
    kinds = {t.name: t.kind for t in graph.tasks}
    refined, flush_costs = None, None
    if refine is not None:
        if only_tasks:
            raise BadInput("--refine picks the tasks itself: give it or --task, not both")
        summary = _task_summary(db, all_views, all_weights, flops, kinds)
        if cold_caches:
            _measure_flush_costs(out, extracted, summary, notes)
            flush_costs = {t["name"]: {"hot_us": t["hot_us"], "flushed_us": t["flushed_us"]}
                           for t in summary if "hot_us" in t}
            refined = refine_tasks.tasks_to_search_cold(summary, refine)
            if not refined:
                raise BadInput(f"--refine --cold-caches: no task of {out} runs {refine_tasks.COLD_MIN_RATIO}x "
                               "slower with its operands flushed (or none is tuned yet, or all were searched cold)")
        else:
            refined = refine_tasks.tasks_to_refine(summary, refine)
            if not refined:
                raise BadInput(f"--refine: no task of {out} is below its kind's reference GFLOP/s "
                               "(or none is tuned yet)")
        only_tasks, trials = [t["name"] for t in refined], refine_tasks.refine_budget(refined, trials)
    extracted = _select_tasks(extracted, only_tasks, model.name)
    contexts = [_TaskView(t.task_name, t.dispatched[0]) for t in extracted]
    existing = records_by_task(db, contexts)
    per_task_round = bool(first_round) and trials is None
    if per_task_round:
        new = [i for i, recs in enumerate(existing) if not recs]
        extracted, contexts, existing = ([seq[i] for i in new] for seq in (extracted, contexts, existing))
    weights = [t.weight for t in extracted]
    progress = Progress(
        tasks=[TaskProgress(c.task_name, flops.get(c.task_name, 0.0), int(w), trials=len(r),
                            best_secs=min((mean_secs(x.run_secs) for x in r), default=float("inf")))
               for c, w, r in zip(contexts, weights, existing)],
        budget=(trials if trials is not None
                else first_round * len(contexts) if per_task_round
                else default_trials(graph, {c.task_name for c in contexts})),
        existing=sum(len(r) for r in existing),
        listeners=list(listeners),
        ends_by=None if deadline is None else time.perf_counter() + deadline - time.monotonic(),
    )
    remaining = progress.budget - progress.existing
    # TVM sizes its pool once per process, from TVM_NUM_THREADS (else half the logical
    # CPUs on x86): the measuring workers inherit this, so candidates run on as many
    # threads as the target has cores unless the caller chose otherwise.
    use_threads(measure_threads or target_cores(target), overwrite=measure_threads is not None)
    start = time.perf_counter()
    time_up: list = []  # the deadline callback appends when it ends the search
    if deadline is not None and time.monotonic() >= deadline:
        remaining = 0
    noted = remaining > 0
    first_record = record_lines(out)
    if remaining > 0:
        if rpc is not None:
            check_tracker(rpc)
        log_dir = out / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        _note_run_started(out, model, target, layout, options, command, cold_caches, population,
                          carried_samples(cost_model))
        strategy = ms.search_strategy.EvolutionarySearch(population_size=population)
        register_x86_intrinsics_only()
        contexts, _ = ms.relax_integration.extracted_tasks_to_tune_contexts(extracted, str(log_dir),
                                                                             strategy=strategy, seed=seed)
        builder = WarmBuilder()
        runner = make_runner(rpc, cold_caches)
        callbacks = [_progress_callback(progress)]
        if not any(existing):  # a fresh folder: the first progress line comes late
            say(notes, f"first round: a batch for each of {len(contexts)} tasks; MetaSchedule reports "
                       "none back before every task has had its batch")
        if deadline is not None:
            callbacks.append(_deadline_callback(deadline, time_up))
        try:
            ms.tune_tasks(
                tasks=contexts, task_weights=[float(w) for w in weights], work_dir=str(log_dir),
                max_trials_global=remaining,
                # MetaSchedule's default: the global budget; in a first round a task stops
                # at its batch instead of taking the trials the small tasks left.
                max_trials_per_task=first_round if per_task_round else None,
                num_trials_per_iter=(first_round if per_task_round
                                     else _per_iter(remaining, len(contexts), trials_per_iter)),
                builder=builder, runner=runner, database=db,
                cost_model=cost_model if cost_model is not None else "xgb",
                measure_callbacks=ms.measure_callback.MeasureCallback.create("default")
                + callbacks,
                task_scheduler="gradient",
            )
        except Exception:
            if not time_up:
                raise
        finally:
            builder.shutdown()
    wall = time.perf_counter() - start

    result = TuneResult(
        model=model.name, target=describe(target), out=str(out), layout=layout,
        trials_requested=progress.budget, trials_existing=progress.existing,
        trials_new=progress.new_trials, trials_total=record_lines(out), wall_s=wall,
        tasks=_task_summary(db, all_views, all_weights, flops, kinds),
        refined=[t["name"] for t in refined] if refined is not None else None,
        flush_costs=flush_costs, stopped_at_deadline=bool(time_up),
    )
    _write_meta(out, model, target, layout, options, result, command, noted, (first_record, result.trials_total),
                population)  # the run's records end where the folder's do
    return result


@dataclass
class _TaskView:
    """A task's name and workload module, as its TuneContext would hold them."""

    task_name: str
    mod: object


def _task_summary(db, contexts, weights, flops, kinds) -> list[dict]:
    rows = []
    for ctx, weight, recs in zip(contexts, weights, records_by_task(db, contexts)):
        valid = [mean_secs(r.run_secs) for r in recs if mean_secs(r.run_secs) < FAILED_SECS]
        best = min(valid) if valid else None
        f = flops.get(ctx.task_name, 0.0)
        rows.append({
            "name": ctx.task_name, "kind": kinds.get(ctx.task_name), "count": int(weight),
            "trials": len(recs), "valid": len(valid),
            "best_us": round(best * 1e6, 3) if best else None,
            "gflops": round(f / best / 1e9, 2) if best and f else None,
        })
    return rows


def _measure_flush_costs(out: Path, extracted, summary: list[dict], notes: TextProgress = None) -> None:
    """Time each compute task's best hot record alone on one core, hot and with every
    operand but the input flushed (variants.worker, as characterization times), into its
    summary row ("hot_us", "flushed_us"): what `--cold-caches --refine K` ranks by.  Tasks
    already searched cold are left out."""
    import statistics

    from ..variants.worker import MeasuringWorker  # the measuring process characterization uses
    from .database import DatabaseLines

    lines = DatabaseLines(out)
    workloads = lines.task_workloads(extracted)
    todo = []
    for row in summary:
        workload = workloads.get(row["name"])
        if not row.get("gflops") or workload is None or workload in lines.cold_workloads:
            continue
        valid = lines.valid_records(workload)
        if valid:
            todo.append((row, min(valid, key=lines.record_secs)))
    with MeasuringWorker(sorted(os.sched_getaffinity(0))[:1]).start() as worker:
        for done, (row, record) in enumerate(todo):
            worker.request(300, cmd="build", key=row["name"], job=lines.job(record))
            hot, flushed = [], []
            for _ in range(3):  # in turns, so drift hits both
                hot += worker.request(120, cmd="time", key=row["name"], repeat=2, min_repeat_ms=20)["samples_us"]
                flushed += worker.request(120, cmd="time", key=row["name"], repeat=2, min_repeat_ms=20,
                                          flush_operands=True)["samples_us"]
            worker.request(30, cmd="drop", key=row["name"])
            row.update(hot_us=round(statistics.median(hot), 3), flushed_us=round(statistics.median(flushed), 3))
            say(notes, f"timed hot and flushed [{done + 1}/{len(todo)}] {row['name']}: "
                       f"{row['flushed_us'] / row['hot_us']:.2f}x slower flushed "
                       f"({row['hot_us']:.1f} -> {row['flushed_us']:.1f} us, {row['count']} call(s))")


def _import_choice(out: Path, fold_asked: bool | None) -> dict[str, bool]:
    """How to import the model for `out` (import_model's options): a folder that holds
    records keeps the import its workloads came from (asking for another fold is an error:
    its records would not apply); a new one gets every option on unless asked not to fold."""
    if not holds_records(out):
        options = dict.fromkeys(IMPORT_OPTIONS, True)
        if fold_asked is not None:
            options[FOLD_BATCH_NORM] = bool(fold_asked)
        return options
    recorded = import_options(read_meta(out))
    if fold_asked is not None and bool(fold_asked) != recorded[FOLD_BATCH_NORM]:
        flag = "--fold-batch-norm" if fold_asked else "--no-fold-batch-norm"
        raise BadInput(f"{flag}: {out} was tuned {'with' if recorded[FOLD_BATCH_NORM] else 'without'} batch norm "
                       "folded; its records apply only to that import (choose another --out)")
    return recorded


def _base_meta(out: Path, model, target, layout: str, options: dict[str, bool]) -> dict:
    meta_path = out / META
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {"runs": []}
    meta.update({"model": model.name, "model_sha256": model.sha256, "target": describe(target),
                 "mcpu": target_mcpu(target), "num_cores": target_cores(target), "layout": layout,
                 **options})
    return meta


def _save_meta(out: Path, meta: dict) -> None:
    tmp = (out / META).with_suffix(".tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, out / META)


def carried_samples(cost_model) -> int | None:
    """The trials a cost model handed to a run has already learned from (None: the run
    makes its own)."""
    return None if cost_model is None else int(getattr(cost_model, "data_size", 0))


def _new_run(meta: dict, command: str | None, cold_caches: bool = False,
             population: int = DEFAULT_POPULATION, cost_model_samples: int | None = None) -> dict:
    """Append this run's entry; any run still "running" was killed before it ended."""
    for run in meta["runs"]:
        if run.get("status") == "running":
            run["status"] = "interrupted"
    run = {"command": command, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "status": "running",
           "machine": machine.description(),
           "measure_threads": int(os.environ.get("TVM_NUM_THREADS", "0")) or None}
    if cold_caches:
        run["caches"] = COLD  # the records' times are not comparable with the others'
    if population != DEFAULT_POPULATION:
        run["population"] = population
    if cost_model_samples is not None:  # a cost model carried from earlier runs (the recipe's)
        run["cost_model_samples"] = cost_model_samples
    meta["runs"].append(run)
    return run


def _note_run_started(out: Path, model, target, layout: str, options: dict[str, bool], command: str | None,
                      cold_caches: bool = False, population: int = DEFAULT_POPULATION,
                      cost_model_samples: int | None = None) -> None:
    """Record the run before its first trial, so a run that is killed is still listed
    (its command, date and machine) and the next run can say it was interrupted."""
    meta = _base_meta(out, model, target, layout, options)
    _new_run(meta, command, cold_caches, population, cost_model_samples)
    _save_meta(out, meta)


def _write_meta(out: Path, model, target, layout: str, options: dict[str, bool], result: TuneResult, command: str | None,
                noted: bool, records: tuple[int, int], population: int = DEFAULT_POPULATION) -> None:
    """How these schedules were made, next to them: completes the run this process
    noted at its start (`noted`), or adds one for a run that had nothing to tune.
    `records`: the run's lines of the records file [first, end), so each record's
    thread count is known (DatabaseLines.record_threads)."""
    meta = _base_meta(out, model, target, layout, options)
    meta.update({
        "trials_total": result.trials_total,
        "estimated_latency_ms": result.as_dict()["estimated_latency_ms"],
        "tasks": result.tasks,
    })
    run = meta["runs"][-1] if noted else _new_run(meta, command, population=population)
    run.update({"status": "stopped at its deadline" if result.stopped_at_deadline else "finished",
                "trials_new": result.trials_new, "wall_s": round(result.wall_s, 1),
                "records": list(records)})
    _save_meta(out, meta)


def register_x86_intrinsics_only() -> None:
    """Make a TuneContext's start cheap: its constructor imports tvm.s_tir.tensor_intrin,
    whose package registers the tensor intrinsics of every target TVM knows -- 22 s in a
    fresh process on these VMs, 16 of them CUDA's -- and every tune process paid it.  The
    schedule rules of an x86 target name only the x86 ones (dot_16x4_vnni and
    dot_16x4_avx512: the only intrinsic names libtvm_compiler holds for x86), so the
    package is entered without running its __init__ and only its x86 module imported;
    the constructor's import then finds the package in sys.modules.  Any other of its
    modules can still be imported by name later.  No-op once the package is imported."""
    import importlib
    import importlib.util
    import sys

    name = "tvm.s_tir.tensor_intrin"
    if name not in sys.modules:
        package = importlib.util.module_from_spec(importlib.util.find_spec(name))  # __init__ not run
        sys.modules[name] = package
        try:
            importlib.import_module(name + ".x86")  # registers its intrinsics with TVM
        except BaseException:
            del sys.modules[name]  # leave the real import to whoever comes next
            raise


def _quiet_metaschedule() -> None:
    """MetaSchedule logs every batch to the console; mtcc shows its own progress and
    leaves MetaSchedule's detail in the logs/ folder."""
    logging.getLogger("tvm.s_tir.meta_schedule").setLevel(logging.WARNING)


def describe_schedules(schedules: str | Path) -> dict:
    """What a schedules folder holds (for `mtcc inspect DIR`): how it was made and the
    best record per task, from tune.json and the database itself (read, never written)."""
    path = Path(schedules)
    db = open_readonly(path)
    meta = read_meta(path)
    records = db.get_all_tuning_records()
    return {
        "schedules": str(path),
        "model": meta.get("model"),
        "target": meta.get("target"),
        "layout": meta.get("layout"),
        "records": len(records),
        "valid_records": sum(1 for r in records if mean_secs(r.run_secs) < FAILED_SECS),
        "estimated_latency_ms": meta.get("estimated_latency_ms"),
        "tasks": meta.get("tasks", []),
        "runs": meta.get("runs", []),
    }

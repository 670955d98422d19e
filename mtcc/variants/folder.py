"""A finished schedules folder, read once for packing: per task, the variants to build
with their records, scheduled functions and latency tables.

The packer asks this reader about each task and gets a resolved answer; it never
goes back to the database files itself (the flow stays one-way: tune -> variants ->
pack).  Everything is read from one byte-for-byte copy of the folder's files, so
packing never writes into the folder (it may be read-only in CI, or still being
appended to by a tuning run) and both views of the database hold the same records.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BadInput
from ..progress import Progress, say
from ..tune.database import DatabaseLines, applying_copy, check_folder, copy_folder
from ..cells import cell_key
from .select import VARIANTS, default_records, load_variants
from .worker import scheduled_module

SEARCH_DEFAULT_AMONG = 8  # records searched for the one MetaScheduleApplyDatabase applied


@dataclass
class ResolvedVariant:
    id: str
    func: object            # the scheduled PrimFunc (layout rewrites kept: same arguments as the plan's)
    trace: dict | None      # {"database", "workload", "record", "sha256"}
    latency_us: dict        # {"<cores>c/<level>": µs}
    footprint: float | None
    tuned_us: float | None
    untuned: bool = False
    latency_error_us: dict = field(default_factory=dict)  # the cells' error bars (variants.json)


@dataclass
class ResolvedTask:
    name: str
    variants: list[ResolvedVariant] = field(default_factory=list)
    best_alone_differs_under_pressure: bool = False
    listed: bool = False     # from variants.json (else: the database's applied best only)


def _rounded(table) -> dict:
    return {str(k): round(float(v), 3) for k, v in sorted((table or {}).items()) if isinstance(v, (int, float))}


class SchedulesFolder:
    """Open with `with SchedulesFolder(dir) as folder:`; `.database` is MetaSchedule's
    view (to apply the best records), `.task(...)` resolves one task's variants.
    `target` (default: the one the folder was tuned for) is what the code is built for."""

    def __init__(self, schedules_dir, progress: Progress = None, target=None):
        self.dir = check_folder(Path(schedules_dir))
        self.progress = progress
        self._tmp = tempfile.TemporaryDirectory(prefix="mtcc-schedules-")
        raw = copy_folder(self.dir, Path(self._tmp.name) / "raw")
        self.lines = DatabaseLines(raw)
        # MetaSchedule's copy: a torn last line cut, every task applying its default
        # alone (applying_copy); line numbers are raw's
        clean = applying_copy(raw, Path(self._tmp.name) / "clean", self.lines,
                              default_records(self.dir, self.lines))
        import tvm.s_tir.meta_schedule as ms

        self.database = ms.database.JSONDatabase(work_dir=str(clean), module_equality="structural")
        self.meta = self.lines.meta
        from ..frontend.layout import DEFAULT_LAYOUT
        from ..target import parse_target, target_cores

        self.tuned_target = self.lines.target()
        # Another target (e.g. x86-64-v3 for a CPU without AVX-512) gets the same records
        # applied: correct code, but tuned for other vector widths, so slower.
        self.target = (self.tuned_target if target is None else
                       parse_target(target, target_cores(self.tuned_target)) if isinstance(target, str) else target)

        self.layout = self.meta.get("layout", DEFAULT_LAYOUT)
        # Database times were measured on this many threads (tune.json), which can be fewer
        # than the target's cores: their cell is named after what was measured.
        self.measured_threads = self.lines.main_threads or target_cores(self.target)
        self.variants_file = self.dir / VARIANTS
        self.listed = {}
        if self.variants_file.exists():
            doc = load_variants(self.variants_file)
            self.listed = {t["name"]: t for t in doc.get("tasks", []) if t.get("variants")}
        self.source = "variants.json" if self.listed else "database"

    def __enter__(self) -> "SchedulesFolder":
        return self

    def __exit__(self, *exc) -> None:
        self._tmp.cleanup()

    @property
    def records(self) -> int:
        return len([r for r in self.lines.records if r is not None])

    @property
    def reference_cell(self) -> str:
        return cell_key(self.measured_threads, "none")

    def warn_unknown_tasks(self, model_tasks) -> None:
        unknown = sorted(set(self.listed) - set(model_tasks))
        if unknown:
            say(self.progress, f"warning: {self.variants_file} lists tasks this model does not call: "
                               f"{', '.join(unknown)}")

    def _func(self, index: int):
        mod, _ = scheduled_module(self.lines.job(index), for_timing=False)
        return mod["main"]

    def task(self, name: str, workload: int | None, applied, model: str) -> ResolvedTask:
        """The variants of task `name` (its database workload line `workload`); `applied`
        is the function MetaScheduleApplyDatabase put in the plan (the tuner's best)."""
        entry = self.listed.get(name)
        if entry:
            return self._listed_task(name, entry, workload, model)
        return self._best_only(name, workload, applied)

    def _listed_task(self, name, entry, workload, model) -> ResolvedTask:
        task = ResolvedTask(name, listed=True,
                            best_alone_differs_under_pressure=bool(entry.get("best_alone_differs_under_pressure")))
        for k, v in enumerate(entry["variants"]):
            ref, vid = v.get("trace"), str(v.get("id", f"v{k}"))
            if not isinstance(ref, dict):
                raise BadInput(f"{self.variants_file}: task {name} variant {vid!r} has no trace reference")
            try:
                index = self.lines.resolve(ref)
            except (BadInput, KeyError, TypeError, ValueError):
                raise BadInput(f"{self.variants_file}: task {name} variant {vid!r}: no record in "
                               f"{self.dir} matches its trace reference {ref}") from None
            if self.lines.records[index][0] != workload:
                raise BadInput(
                    f"{self.variants_file}: task {name} variant {vid!r} was measured on another "
                    f"workload than this model's task of that name (the model or mtcc's lowering "
                    f"changed since); run `mtcc tune {model} --out {self.dir} --stage characterize` again")
            task.variants.append(ResolvedVariant(
                id=vid, func=self._func(index), trace=self.lines.trace_ref(index),
                latency_us=_rounded(v.get("latency_us")), footprint=v.get("footprint"),
                tuned_us=round(self.lines.record_secs(index) * 1e6, 3),
                latency_error_us=_rounded(v.get("latency_error_us"))))
        ids = [v.id for v in task.variants]
        if len(set(ids)) != len(ids):
            raise BadInput(f"{self.variants_file}: task {name} lists the same variant id twice")
        return task

    def _best_only(self, name, workload, applied) -> ResolvedTask:
        """No variants.json entry: one variant, v0, the applied best, with the database's
        time as its table (when its record can be found among the fastest)."""
        from ..frontend.tasks import same_schedule

        index = None
        if workload is not None:
            for cand in self.lines.candidates(workload, SEARCH_DEFAULT_AMONG)[0]:
                if same_schedule(self._func(cand), applied):
                    index = cand
                    break
        if index is None:
            untuned = workload is None or not self.lines.candidates(workload, 1)[0]
            return ResolvedTask(name, [ResolvedVariant("v0", applied, None, {}, None, None, untuned=untuned)])
        us = round(self.lines.record_secs(index) * 1e6, 3)
        cell = cell_key(self.lines.record_threads(index) or self.measured_threads, "none")
        return ResolvedTask(name, [ResolvedVariant("v0", applied, self.lines.trace_ref(index),
                                                   {cell: us}, None, us)])

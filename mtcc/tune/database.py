"""A schedules folder's tuning database: MetaSchedule's own JSON files, read two ways.

    schedules/<model>/<target>/
        database_workload.json       one workload (task IR) per line   (MetaSchedule's)
        database_tuning_record.json  one measured candidate per line   (MetaSchedule's)
        tune.json                    how the folder was made (mtcc)

- `open_for_tuning(dir)`: MetaSchedule's JSONDatabase over the folder itself, after
  repairing a crash's damage in place (a torn last line, duplicates).  Only tuning
  writes into a schedules folder.
- `open_readonly(dir)`: the same database over a repaired *copy*, for compiling and
  packing: reading a folder never rewrites committed files.  In that copy a task keeps
  one record, its default in variants.json, where the caller passes them; a task searched
  with cold caches (`mtcc tune --cold-caches`) without one, its cold search's best
  (`applying_copy`).
- `DatabaseLines(dir)`: the raw lines, so that a record is named by its line numbers
  (workload index, record index), stable while MetaSchedule only appends.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from functools import cached_property
from pathlib import Path

from ..errors import BadInput
from ..files import read_json_lines, short_sha

WORKLOADS = "database_workload.json"
RECORDS = "database_tuning_record.json"
META = "tune.json"
FILES = (WORKLOADS, RECORDS, META)
FAILED_SECS = 1e9  # MetaSchedule stores failed candidates with run_secs 1e10
COLD = "cold"      # a run's "caches" in tune.json: candidates timed with the caches flushed


def mean_secs(run_secs) -> float:
    """Mean of a record's run times; inf for none (a failed or unmeasured candidate)."""
    values = [float(s) for s in (run_secs if run_secs is not None else [])]
    return sum(values) / len(values) if values else float("inf")


def check_folder(path: Path) -> Path:
    path = Path(path)
    if not (path / WORKLOADS).is_file() or not (path / RECORDS).is_file():
        raise BadInput(f"{path}: not a schedules folder (needs {WORKLOADS} and {RECORDS})")
    return path


def holds_records(folder) -> bool:
    """Whether a schedules folder already holds tuning records (a non-empty database)."""
    records = Path(folder) / RECORDS
    return records.exists() and records.stat().st_size > 0


def read_meta(schedules) -> dict:
    meta = Path(schedules) / META
    return json.loads(meta.read_text()) if meta.exists() else {}


def cpu_label(machine: dict) -> str:
    """A machine's CPU as tune.json records it: the model name, and LLVM's name where the
    run recorded it (runs before 2026-11-28 did not)."""
    name = machine.get("cpu") or "an unknown CPU"
    return f"{name} ({machine['llvm_cpu']})" if machine.get("llvm_cpu") else name


def searched_on(meta: dict) -> list[str]:
    """The CPUs a folder's runs searched on (tune.json), each once, oldest first."""
    return list(dict.fromkeys(cpu_label(run["machine"]) for run in meta.get("runs", []) if run.get("machine")))


def searched_elsewhere(meta: dict, here: dict) -> str | None:
    """A note when no run of the folder searched on this kind of CPU (`here`:
    interference.machine.description()).  Schedules are per CPU: the Zen 4-tuned examples
    ran 1.27-1.53x the best f32 peer on an Intel Xeon, 1.0-1.1x on the Zen 4 itself.
    A run that recorded LLVM's CPU name is compared by it, an older one by model name."""
    machines = [run["machine"] for run in meta.get("runs", []) if run.get("machine")]
    if not machines or any(m.get("llvm_cpu") == here.get("llvm_cpu") if m.get("llvm_cpu")
                           else m.get("cpu") == here.get("cpu") for m in machines):
        return None
    return (f"these schedules were searched on {' and '.join(searched_on(meta))}, not on this CPU "
            f"({cpu_label(here)}): the code computes the same but may run well behind what a search "
            "here finds (`mtcc tune MODEL --time-budget MINUTES` tunes on this machine)")


def layout_of(schedules) -> str:
    from ..frontend.layout import DEFAULT_LAYOUT

    return read_meta(schedules).get("layout", DEFAULT_LAYOUT)


# tune.json's keys for how the model was imported (frontend.import_model's options of the
# same names): batch norm folded into the convolutions, convolutions' output channels
# padded to the layout's block, and per-channel constants made 4-d (a batch norm with no
# convolution before it among them).  The workloads differ, so every stage that imports the
# model for a folder's records imports it the way the folder says; a folder without a key
# was tuned before that option existed, without it.
FOLD_BATCH_NORM = "fold_batch_norm"
PAD_OUTPUT_CHANNELS = "pad_output_channels"
PER_CHANNEL_CONSTANTS = "per_channel_constants"
IMPORT_OPTIONS = (FOLD_BATCH_NORM, PAD_OUTPUT_CHANNELS, PER_CHANNEL_CONSTANTS)


def import_options(meta: dict) -> dict[str, bool]:
    """The import a folder's records came from, as keyword arguments of import_model."""
    return {key: bool(meta.get(key, False)) for key in IMPORT_OPTIONS}


def measure_threads(meta: dict) -> int | None:
    """Threads the records of runs that did not note their lines were timed on (the
    latest such run that says; tune.json of folders tuned before runs noted them)."""
    runs = meta.get("runs", [])
    return next((r.get("measure_threads") for r in reversed(runs) if r.get("measure_threads") and "records" not in r),
                None) or next((r.get("measure_threads") for r in reversed(runs) if r.get("measure_threads")), None)


def record_lines(folder: Path) -> int:
    """Lines in a folder's records file: where the next run's records start."""
    path = Path(folder) / RECORDS
    if not path.exists():
        return 0
    with open(path, "rb") as f:
        return sum(1 for _ in f)


# ------------------------------------------------------------------ repair
def _clean_lines(path: Path) -> tuple[int, int]:
    """Cut a torn trailing line and drop exact duplicates, in place (atomic rename).
    Returns (lines kept, lines dropped)."""
    if not path.exists():
        return 0, 0
    raw = path.read_bytes()
    kept, seen, dropped = [], set(), 0
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        try:
            json.loads(line)
        except ValueError:
            dropped += 1  # torn write: only the last line can be, but be safe
            continue
        if line in seen:
            dropped += 1
            continue
        seen.add(line)
        kept.append(line)
    clean = b"".join(line + b"\n" for line in kept)
    if clean != raw:
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(clean)
        os.replace(tmp, path)
    return len(kept), dropped


def repair(out: Path) -> int:
    """Make the database loadable after a crash; returns how many lines were dropped."""
    return _clean_lines(Path(out) / WORKLOADS)[1] + _clean_lines(Path(out) / RECORDS)[1]


# ------------------------------------------------------------------ MetaSchedule's view
def open_for_tuning(out: Path):
    """MetaSchedule's JSONDatabase over `out` itself (created if new, repaired if a
    crash damaged it): the one place mtcc writes into a schedules folder."""
    import tvm.s_tir.meta_schedule as ms

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    repair(out)
    return ms.database.JSONDatabase(work_dir=str(out), module_equality="structural")


def copy_folder(schedules: Path, dest: Path) -> Path:
    """The database files of `schedules` copied byte for byte into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        if (schedules / name).is_file():
            shutil.copyfile(schedules / name, dest / name)
    return dest


def has_cold_run(schedules) -> bool:
    """Whether tune.json lists a run searched with cold caches (`mtcc tune --cold-caches`)."""
    return any(run.get("caches") == COLD for run in read_meta(schedules).get("runs", []))


def applying_copy(schedules: Path, dest: Path, lines: "DatabaseLines | None" = None,
                  defaults: dict[int, int] | None = None) -> Path:
    """A copy of the folder's database for MetaSchedule to apply: repaired, every task
    that `defaults` ({workload: record}: variants.json's, variants.select.default_records)
    names applying that record alone, and a task searched with cold caches without one
    applying its cold search's best (its hot records left out).  MetaSchedule applies a
    workload's fastest record by its tuning time, whatever the threads or caches it was
    timed with: a 2-thread record's time beats a 1-thread record's, and a hot one a cold
    one, though either may lose inside the model on the cores it runs on -- and the
    bundle's call plan runs variants.json's defaults, so the Relax VM and mtcc.compile run
    them too.  `lines`: the folder's, when the caller has them already (they are parsed
    only when something is dropped)."""
    copy = copy_folder(schedules, dest)
    drop = set()
    cold = has_cold_run(copy)
    if defaults or cold:
        lines = lines or DatabaseLines(copy)
        keep = dict(defaults or {})
        for workload in (lines.cold_workloads if cold else ()):
            keep.setdefault(workload, None)  # no default named: its cold records only
        drop = {i for i, rec in enumerate(lines.records) if rec is not None and rec[0] in keep
                and (i != keep[rec[0]] if keep[rec[0]] is not None else lines.record_caches(i) != COLD)}
    if drop:
        path = copy / RECORDS
        lines_kept = [line for i, line in enumerate(x for x in path.read_bytes().split(b"\n") if x.strip())
                      if i not in drop]  # indexed as read_json_lines does: blank lines skipped
        path.write_bytes(b"".join(line + b"\n" for line in lines_kept))
    repair(copy)
    return copy


def open_readonly(schedules, defaults: dict[int, int] | None = None,
                  lines: "DatabaseLines | None" = None) -> object:
    """MetaSchedule's JSONDatabase of a schedules folder, for compiling: it reads a
    copy (applying_copy, with `defaults` and the folder's `lines` where the caller has
    them; JSONDatabase loads every line when it is made), so the folder -- committed,
    read-only in CI, or still being appended to by a tune -- is never written."""
    import tvm.s_tir.meta_schedule as ms

    schedules = check_folder(Path(schedules))
    with tempfile.TemporaryDirectory(prefix="mtcc-db-") as tmp:
        copy = applying_copy(schedules, Path(tmp), lines, defaults)
        return ms.database.JSONDatabase(work_dir=str(copy), module_equality="structural")


# ------------------------------------------------------------------ the raw lines
class DatabaseLines:
    """The workload and record lines of a schedules folder, indexed by line number, as
    variants.json refers to them ({"workload": i, "record": j, "sha256": ...})."""

    def __init__(self, schedules_dir):
        self.dir = check_folder(Path(schedules_dir))
        self.workloads = read_json_lines(self.dir / WORKLOADS)
        self.records = read_json_lines(self.dir / RECORDS)
        self.meta = read_meta(self.dir)

    def workload_hash(self, index: int) -> str | None:
        line = self.workloads[index] if 0 <= index < len(self.workloads) else None
        return str(line[0]) if line else None

    def workload_index(self) -> dict[str, int]:
        """Structural hash (as MetaSchedule stores it) -> workload line."""
        return {self.workload_hash(i): i for i in range(len(self.workloads)) if self.workloads[i] is not None}

    def _run_of(self, index: int) -> dict:
        """The tune.json run whose record lines hold record `index` ({} for none: runs
        before tune.json noted their lines)."""
        for run in self.meta.get("runs", []):
            first, end = run.get("records") or (0, 0)
            if first <= index < end:
                return run
        return {}

    def record_threads(self, index: int) -> int | None:
        """Threads record `index` was timed on: its run's (tune.json notes each run's
        lines), else measure_threads of the folder."""
        threads = self._run_of(index).get("measure_threads")
        return int(threads) if threads else measure_threads(self.meta)

    def record_caches(self, index: int) -> str:
        """How record `index` was timed: its run's "caches" (cold for `--cold-caches`),
        else hot."""
        return self._run_of(index).get("caches", "hot")

    @cached_property
    def cold_workloads(self) -> set[int]:
        """Workloads with a valid record from a cold-cache search: they compile from it."""
        return {r[0] for i, r in enumerate(self.records)
                if r is not None and mean_secs(r[1][1]) < FAILED_SECS and self.record_caches(i) == COLD}

    @cached_property
    def main_threads(self) -> int | None:
        """The threads of the folder's main search (_main_group of all its records)."""
        return self._main_group(Counter(self.record_threads(i) for i, r in enumerate(self.records) if r is not None))

    def _main_group(self, counts: Counter) -> int | None:
        """Of {threads: records}, the threads of the main search: the target's cores
        (tune.json's num_cores) where records were timed on them, else the threads most
        records were timed on.  Not the majority alone: two 1-thread passes for a few
        tasks (`--refine`) can outnumber the whole search's records, and every other task
        would then rank its own search as the side group."""
        counts = Counter({threads: n for threads, n in counts.items() if threads is not None})
        if self.meta.get("num_cores") in counts:
            return int(self.meta["num_cores"])
        return max(counts, key=lambda t: (counts[t], t)) if counts else measure_threads(self.meta)

    def records_of(self, workload: int) -> list[int]:
        return [i for i, r in enumerate(self.records) if r is not None and r[0] == workload]

    def record_secs(self, index: int) -> float:
        return mean_secs(self.records[index][1][1])

    def valid_records(self, workload: int) -> list[int]:
        """The workload's records that built and ran (not MetaSchedule's failure time)."""
        return [i for i in self.records_of(workload) if self.record_secs(i) < FAILED_SECS]

    def record_sha(self, index: int) -> str:
        return short_sha(self.records[index][1][0])

    def record_target(self) -> dict | None:
        for rec in self.records:
            if rec is not None:
                return rec[1][2]
        return None

    def candidates(self, workload: int, top_k: int) -> tuple[list[int], int, int]:
        """(record indices of the top_k fastest distinct valid records, fastest first;
        how many valid records; how many distinct valid ones).  Records timed on other
        thread counts than the main search's (main_threads: a search at 1 thread beside
        one at all cores) are ranked among their own, and their fastest max(1, top_k // 4) come after: times taken on
        1 thread never beat those taken on 2, yet the code tiled for 1 core can be the
        fastest there (resnet50: a convolution 1.2x faster in the 1-core tables).
        A task searched with cold caches ranks its cold search's top_k first (its best is
        what compiles: applying_copy), whatever their threads, and the candidates its hot
        records would give come after: cold times always read higher, yet a hot-searched
        schedule can still be the faster one beside a neighbour (a pressure variant; its
        claims are timed cold, see variants.confirm)."""
        valid = self.valid_records(workload)
        valid.sort(key=lambda i: (self.record_secs(i), i))
        if workload in self.cold_workloads:
            # cold first, so a schedule both searches found is its cold record
            is_cold = {i for i in valid if self.record_caches(i) == COLD}
            distinct = self._distinct([i for i in valid if i in is_cold] + [i for i in valid if i not in is_cold])
            cold = [i for i in distinct if i in is_cold]
            return cold[:top_k] + self._by_threads([i for i in distinct if i not in is_cold], top_k), \
                len(valid), len(distinct)
        distinct = self._distinct(valid)
        return self._by_threads(distinct, top_k), len(valid), len(distinct)

    def _by_threads(self, distinct: list[int], top_k: int) -> list[int]:
        """The top_k of the main search's threads, then each other thread count's fastest
        max(1, top_k // 4) (see candidates).  The main search is the workload's own
        (_main_group of its records): a search at the target's cores for one task, in a
        folder whose other tasks were searched on 1 thread only, leaves theirs their main."""
        groups: dict = {}
        for i in distinct:
            groups.setdefault(self.record_threads(i), []).append(i)
        main = self._main_group(Counter({threads: len(group) for threads, group in groups.items()}))
        picked = groups.pop(main, [])[:top_k]
        for threads in sorted(groups, key=lambda t: (t is None, t or 0)):
            picked += groups[threads][:max(1, top_k // 4)]
        return picked

    def _distinct(self, indices: list[int]) -> list[int]:
        """The first record of each schedule (trace hash), in the given order."""
        seen, out = set(), []
        for i in indices:
            sha = self.record_sha(i)
            if sha not in seen:
                seen.add(sha)
                out.append(i)
        return out

    def trace_ref(self, index: int) -> dict:
        """How variants.json and a bundle's selector name a record."""
        return {"database": RECORDS, "workload": int(self.records[index][0]), "record": int(index),
                "sha256": self.record_sha(index)}

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

    def target(self):
        """The TVM target the folder was tuned for: tune.json's, else the records',
        else the portable default."""
        from ..target import PORTABLE_MCPU, make_target, parse_target

        if self.meta.get("target"):
            return parse_target(self.meta["target"])
        if self.record_target():
            import tvm

            return tvm.target.Target(self.record_target())
        return make_target(PORTABLE_MCPU)

    def task_workloads(self, extracted) -> dict[str, int | None]:
        """Task name -> workload line, for MetaSchedule's extracted tasks of a model
        (matched by the structural hash MetaSchedule stores with each workload)."""
        import tvm_ffi

        index = self.workload_index()
        return {ext.task_name: index.get(str(tvm_ffi.structural_hash(ext.dispatched[0]))) for ext in extracted}

"""`mtcc pack` and `mtcc.load`: a model, its schedules and every kept variant in one
bundle file, and the verified way back from that file to running code.

Packing (`pack`):

1. The model is imported and lowered exactly as tuning did (the schedules folder's
   target and layout from its tune.json); the database's best record of every task
   is applied (MetaScheduleApplyDatabase, as `mtcc.compile` does) and the call plan
   is made from that module (`plan.make_plan`, the VM's own memory plan).
2. Variants.  With `variants.json` in the schedules folder every listed variant of
   every task is rebuilt from its record (trace applied to its workload, layout
   rewrites kept in the function, so every variant takes the same arguments).  Names:
   the variant structurally equal to the applied best keeps the plan's function
   name (e.g. `fused_matmul_add`); every other variant k of task T (k = its position
   in variants.json) becomes its own PrimFunc `T__v<k>`.  If no listed variant is the
   applied best, the task's calls are pointed at its first variant, so every
   function in the library is a listed variant.  Without variants.json each task has
   one variant, `v0` = the applied best, with a latency table `{"<C>c/none": best
   tuned µs}` from the database (C = the target's cores).
3. The plan is cut into layer blocks (`mtcc.blocks`), all functions are built into
   ONE shared library, and the bundle is written (`mtcc.bundle`): lib/model.so,
   plan.json, selector.json, weights/<name>.npy (one .npy per constant), manifest.

Everything that goes into the file is a function of the inputs (model bytes,
database records, variants.json, TVM, the linking g++): no times, paths or host
names, so packing twice gives identical bytes.  The toolchain is recorded in the
manifest because the .so bytes depend on it (docs/bundle-format.md).

Loading (`load`): `bundle.open_bundle` verifies the whole file first (format, every
sha256, TVM version, CPU features); only then is the library extracted to a private
temporary folder, loaded and deleted, and the plan executor built.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from . import bundle as B
from .errors import BadInput, EnvironmentProblem
from .threads import use_threads

SELECTOR_FORMAT = "mtcc-selector/1"
PLAN_MEMBER = "plan.json"
SELECTOR_MEMBER = "selector.json"
WEIGHTS_DIR = "weights"
VARIANT_SEP = "__v"

Progress = Callable[[str], None]


def _say(progress: Progress | None, message: str) -> None:
    if progress:
        progress(message)


def toolchain() -> dict:
    """The compiler TVM links the library with (first line of `$CXX --version`)."""
    cxx = os.environ.get("CXX", "g++")
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30)
        first = out.stdout.strip().splitlines()[0] if out.stdout.strip() else "unknown"
    except (OSError, subprocess.SubprocessError):
        first = "unknown"
    return {"cxx": os.path.basename(cxx), "version": first}


# ------------------------------------------------------------------ packing
def _func_key(func):
    import tvm_ffi

    return tvm_ffi.structural_hash(func.without_attr("global_symbol"))


def _same_schedule(a, b) -> bool:
    import tvm_ffi

    def norm(f):
        return f.without_attr("global_symbol").with_attr("tirx.is_scheduled", True)

    return bool(tvm_ffi.structural_equal(norm(a), norm(b)))


def _snapshot(schedules: Path, tmp: str):
    """(line reader, MetaSchedule JSONDatabase) over one copy of the folder's files, so
    that packing never writes into the schedules folder (it may be read-only in CI, or
    still being appended to by a tuning run) and both views hold the same records.
    The line reader sees the exact bytes (record indices are the file's line numbers);
    MetaSchedule's copy has a torn last line cut."""
    import tvm.s_tir.meta_schedule as ms

    from . import tuning
    from .variants import Database

    if not (schedules / tuning.WORKLOADS).is_file() or not (schedules / tuning.RECORDS).is_file():
        Database(schedules)  # raises the usual BadInput
    raw, clean = Path(tmp) / "raw", Path(tmp) / "ms"
    raw.mkdir()
    clean.mkdir()
    for name in (tuning.WORKLOADS, tuning.RECORDS, tuning.META):
        if (schedules / name).is_file():
            data = (schedules / name).read_bytes()
            (raw / name).write_bytes(data)
            (clean / name).write_bytes(data)
    tuning.repair(clean)
    return Database(raw), ms.database.JSONDatabase(work_dir=str(clean), module_equality="structural")


def _schedules_target(schedules: Path, db_lines):
    from .target import PORTABLE_MCPU, make_target, parse_target

    meta = db_lines.meta
    if meta.get("target"):
        return parse_target(meta["target"])
    rec_target = db_lines.target()
    if rec_target:
        import tvm

        return tvm.target.Target(rec_target)
    return make_target(PORTABLE_MCPU)


def _trace_ref(db_lines, index: int) -> dict:
    from .variants import RECORDS

    return {"database": RECORDS, "workload": int(db_lines.records[index][0]), "record": int(index),
            "sha256": db_lines.record_sha(index)}


def _scheduled_func(db_lines, index: int):
    from .variants import scheduled_module

    mod, _ = scheduled_module(db_lines.job(index), for_timing=False)
    return mod["main"]


def _round_table(table: Mapping) -> dict:
    return {str(k): round(float(v), 3) for k, v in sorted(table.items()) if isinstance(v, (int, float))}


def pack(model, schedules, out, *, input_shapes=None, max_blocks: int | None = None,
         progress: Progress | None = None) -> dict:
    """Packs `model` (ONNX) with the records of `schedules` into the bundle `out`.
    Returns {"path", "size", "sha256", "variants", "tasks", "functions", "blocks",
    "calls", "seconds", "variants_source"}.  BadInput for a bad model or folder."""
    from . import blocks as blocks_mod

    start = time.perf_counter()
    schedules, out = Path(schedules), Path(out)
    max_blocks = blocks_mod.DEFAULT_MAX_BLOCKS if max_blocks is None else int(max_blocks)
    if max_blocks < 1:
        raise BadInput(f"--max-blocks {max_blocks}: must be at least 1")
    if not out.parent.exists():
        raise BadInput(f"-o {out}: folder {out.parent} does not exist")
    with tempfile.TemporaryDirectory(prefix="mtcc-pack-db-") as tmp:
        db_lines, db = _snapshot(schedules, tmp)
        return _pack(model, schedules, out, db_lines, db, input_shapes=input_shapes, max_blocks=max_blocks,
                     progress=progress, start=start)


def _pack(model, schedules: Path, out: Path, db_lines, db, *, input_shapes, max_blocks: int,
          progress: Progress | None, start: float) -> dict:
    import tvm
    import tvm.s_tir.meta_schedule as ms
    import tvm_ffi
    from tvm import relax
    from tvm.s_tir.analysis import estimate_tir_flops

    from . import blocks as blocks_mod
    from . import frontend, tasks as tasks_mod
    from . import plan as P
    from .target import describe, target_cores
    from .variants import load_variants, VARIANTS

    target = _schedules_target(schedules, db_lines)
    layout = db_lines.meta.get("layout", tasks_mod.DEFAULT_LAYOUT)
    cores = target_cores(target)
    # Database times were measured on `measure_threads` threads (tune.json), which can be
    # fewer than the target's cores: name their cell after what was measured.
    measured = next((r.get("measure_threads") for r in reversed(db_lines.meta.get("runs", []))
                     if r.get("measure_threads")), None) or cores

    _say(progress, f"importing {model}")
    model_info, mod = frontend.import_model(model, input_shapes)
    tuned_for = db_lines.meta.get("model_sha256")
    if tuned_for and tuned_for != model_info.sha256:
        _say(progress, f"warning: {schedules} was tuned for another version of the model "
                       f"(sha256 {tuned_for[:12]}...); tasks without a matching record stay untuned")
    _say(progress, f"lowering for {describe(target)} ({layout}) and applying the best records")
    fused = tasks_mod.legalize_and_fuse(mod, target, layout)
    with target, tvm.transform.PassContext(opt_level=3), db:
        applied = relax.transform.MetaScheduleApplyDatabase(enable_warning=False)(fused)

    # Tasks as MetaSchedule (and so the database and variants.json) names them.
    extracted = ms.relax_integration.extract_tasks(fused, target)
    workload_of_hash = {db_lines.workload_hash(i): i for i in range(len(db_lines.workloads))
                        if db_lines.workloads[i] is not None}
    task_info, task_of_key = {}, {}
    for ext in extracted:
        func = ext.dispatched[0]["main"]
        try:
            flops = float(estimate_tir_flops(ext.dispatched[0]))
        except Exception:  # noqa: BLE001 - data movement has no FLOPs to count
            flops = 0.0
        ins, outs = tasks_mod._buffer_infos(func)
        task_info[ext.task_name] = {
            "name": ext.task_name, "kind": tasks_mod._kind(tasks_mod._split_ops(ext.task_name)),
            "flops": flops, "weight": int(ext.weight), "inputs": ins, "outputs": outs,
            "workload": workload_of_hash.get(str(tvm_ffi.structural_hash(ext.dispatched[0]))),
        }
        task_of_key.setdefault(_func_key(func), ext.task_name)
    task_of = {}
    for gv, func in fused.functions_items():
        if isinstance(func, tvm.tirx.PrimFunc) and _func_key(func) in task_of_key:
            task_of[gv.name_hint] = task_of_key[_func_key(func)]

    try:
        plan, prim_funcs = P.make_plan(applied, task_of)
    except ValueError as e:
        raise BadInput(f"{model}: {e}") from None
    funcs = dict(prim_funcs.functions_items())
    by_name = {gv.name_hint: gv for gv in funcs}
    plan_tasks = plan.tasks  # task -> functions, call order

    variants_file = schedules / VARIANTS
    listed = {}
    if variants_file.exists():
        vdoc = load_variants(variants_file)
        listed = {t["name"]: t for t in vdoc.get("tasks", []) if t.get("variants")}
        unknown = sorted(set(listed) - set(plan_tasks))
        if unknown:
            _say(progress, f"warning: {variants_file} lists tasks this model does not call: {', '.join(unknown)}")
    source = "variants.json" if listed else "database"

    selector_tasks = []
    n_built = 0
    for task, fnames in plan_tasks.items():
        base = fnames[0]
        info = task_info.get(task, {"workload": None})
        entry = listed.get(task)
        variants = []
        if entry:
            for k, v in enumerate(entry["variants"]):
                ref = v.get("trace")
                if not isinstance(ref, dict):
                    raise BadInput(f"{variants_file}: task {task} variant {v.get('id')!r} has no trace reference")
                try:
                    index = db_lines.resolve(ref)
                except (BadInput, KeyError, TypeError, ValueError):
                    raise BadInput(f"{variants_file}: task {task} variant {v.get('id')!r}: no record in "
                                   f"{schedules} matches its trace reference {ref}") from None
                if db_lines.records[index][0] != info.get("workload"):
                    raise BadInput(
                        f"{variants_file}: task {task} variant {v.get('id')!r} was measured on another "
                        f"workload than this model's task of that name (the model or mtcc's lowering "
                        f"changed since); run `mtcc tune {model} --out {schedules} --stage characterize` again")
                func = _scheduled_func(db_lines, index)
                name = base if _same_schedule(func, funcs[by_name[base]]) else f"{task}{VARIANT_SEP}{k}"
                if name != base:
                    gv = tvm.ir.GlobalVar(name)
                    funcs[gv] = func.with_attr("global_symbol", name).with_attr("tirx.is_scheduled", True)
                    by_name[name] = gv
                    n_built += 1
                variants.append({
                    "id": str(v.get("id", f"v{k}")), "function": name, "trace": _trace_ref(db_lines, index),
                    "latency_us": _round_table(v.get("latency_us") or {}), "footprint": v.get("footprint"),
                    "tuned_us": round(db_lines.record_secs(index) * 1e6, 3),
                })
            ids = [v["id"] for v in variants]
            if len(set(ids)) != len(ids):
                raise BadInput(f"{variants_file}: task {task} lists the same variant id twice")
            defaults = [v for v in variants if v["function"] == base]
            if defaults:
                default = defaults[0]
            else:  # the applied best is not a kept variant: run the first variant by default
                default = variants[0]
                for c in plan.calls:
                    if c.task == task:
                        c.function = default["function"]
                for fn in fnames:
                    funcs.pop(by_name.pop(fn))
            differs = bool(entry.get("best_alone_differs_under_pressure", False))
        else:
            wl = info.get("workload")
            index = None
            if wl is not None:
                for cand in db_lines.candidates(wl, 8)[0]:
                    if _same_schedule(_scheduled_func(db_lines, cand), funcs[by_name[base]]):
                        index = cand
                        break
            if index is None:
                variant = {"id": "v0", "function": base, "trace": None, "latency_us": {}, "footprint": None,
                           "tuned_us": None, "untuned": wl is None or not db_lines.candidates(wl, 1)[0]}
            else:
                us = round(db_lines.record_secs(index) * 1e6, 3)
                variant = {"id": "v0", "function": base, "trace": _trace_ref(db_lines, index),
                           "latency_us": {f"{measured}c/none": us}, "footprint": None, "tuned_us": us}
            variants, default, differs = [variant], variant, False
        selector_tasks.append({"task": task, "calls": sum(c.task == task for c in plan.calls),
                               "default": default["id"], "variants": variants,
                               "best_alone_differs_under_pressure": differs})

    # Blocks, from the default variant's table of every call.
    table_of = {t["task"]: next(v for v in t["variants"] if v["id"] == t["default"]) for t in selector_tasks}
    costs = [blocks_mod.CallCost(task=c.task, table=table_of[c.task]["latency_us"],
                                 cost_us=blocks_mod.reference_cost(table_of[c.task]["latency_us"], cores,
                                                                   table_of[c.task]["tuned_us"]))
             for c in plan.calls]
    blocks = blocks_mod.make_blocks(costs, cores, max_blocks)

    _say(progress, f"building one library: {len(funcs)} functions ({n_built} extra variants)")
    lib = P.build_library(tvm.IRModule(funcs), target)
    with tempfile.TemporaryDirectory(prefix="mtcc-pack-") as tmp:
        so = Path(tmp) / "model.so"
        lib.export_library(str(so))
        lib_bytes = so.read_bytes()

    members = {B.LIBRARY: lib_bytes, PLAN_MEMBER: B.canonical_json(plan.to_dict())}
    for name, arr in plan.weights.items():
        members[f"{WEIGHTS_DIR}/{name}.npy"] = B.npy_bytes(arr)
    selector = {"format": SELECTOR_FORMAT, "source": source, "cores": cores,
                "reference_cell": f"{measured}c/none", "tasks": selector_tasks}
    members[SELECTOR_MEMBER] = B.canonical_json(selector)

    task_rows = []
    for task in plan_tasks:
        info = dict(task_info.get(task, {"name": task, "kind": "other", "flops": 0.0, "weight": 0,
                                         "inputs": [], "outputs": []}))
        info.pop("workload", None)
        info["weight"] = sum(c.task == task for c in plan.calls)
        info["functions"] = plan_tasks[task]
        task_rows.append(info)
    manifest = B.make_manifest(
        model_name=model_info.name, model_sha256=model_info.sha256, target=target,
        inputs=[i.as_dict() for i in model_info.inputs], outputs=[o.as_dict() for o in model_info.outputs],
        blocks=blocks,
        variants=[{"task": t["task"], "default": t["default"],
                   "variants": [{k: v[k] for k in ("id", "function", "latency_us", "footprint", "tuned_us")}
                                for v in t["variants"]]} for t in selector_tasks],
        tasks=task_rows, total_flops=sum(t["flops"] * t["weight"] for t in task_rows),
        layout=layout, toolchain=toolchain(),
        plan={"member": PLAN_MEMBER, "calls": len(plan.calls), "functions": len(funcs),
              "memory_bytes": plan.memory()},
        selector=SELECTOR_MEMBER, blocks_rule=blocks_mod.RULE, variants_source=source,
        schedules={"model_sha256": tuned_for, "records": len([r for r in db_lines.records if r is not None])},
    )
    written = B.write_bundle(out, manifest, members)
    n_variants = sum(len(t["variants"]) for t in selector_tasks)
    return {**written, "variants": n_variants, "tasks": len(selector_tasks), "functions": len(funcs),
            "blocks": len(blocks), "calls": len(plan.calls), "variants_source": source,
            "seconds": round(time.perf_counter() - start, 2)}


# ------------------------------------------------------------------ loading
def pin_cores(n: int | None) -> list[int]:
    """Run this process on the first `n` cores it may use and make TVM's pool that many
    threads.  Call before TVM's thread pool starts (the first parallel call):
    TVM_NUM_THREADS is read once per process.  Returns the cores used."""
    allowed = sorted(os.sched_getaffinity(0))
    if n is None:
        return allowed
    if n < 1 or n > len(allowed):
        raise BadInput(f"--cores {n}: this process may use {len(allowed)} core(s) ({allowed})")
    chosen = allowed[:n]
    os.sched_setaffinity(0, chosen)
    use_threads(n)
    return chosen


@dataclass
class Variant:
    task: str
    id: str
    function: str
    latency_us: dict
    footprint: float | None


class LoadedBundle:
    """A verified bundle, loaded: `.run(*arrays)` or `.run({name: array})` -> outputs.

        b = mtcc.load("model.mtcc")
        y, = b.run(x)
        b.variants            # {task: [Variant, ...]}, the default first
        b.blocks              # manifest blocks: [{"start", "end", "tasks", "latency_us", ...}]
        b.select({"fused_matmul_add": "r37"})          # by variant id, all calls of the task
        b.select({"fused_matmul_add": "r37"}, block=2) # only the calls of block 2
    """

    def __init__(self, bundle: B.Bundle, lib, plan, selector: dict):
        from .plan import PlanExecutor

        self.path = bundle.path
        self.manifest = bundle.manifest
        self.plan = plan
        self.selector = selector
        self.lib = lib
        self.executor = PlanExecutor(lib, plan)
        self.inputs = list(self.manifest["inputs"])
        self.outputs = list(self.manifest["outputs"])
        self.blocks = list(self.manifest["blocks"])
        self.variants: dict[str, list[Variant]] = {}
        self.defaults: dict[str, str] = {}
        for t in selector["tasks"]:
            vs = [Variant(t["task"], v["id"], v["function"], v.get("latency_us") or {}, v.get("footprint"))
                  for v in t["variants"]]
            vs.sort(key=lambda v: v.id != t["default"])
            self.variants[t["task"]] = vs
            self.defaults[t["task"]] = t["default"]
        for vs in self.variants.values():  # every variant must be callable, or refuse now
            for v in vs:
                self.executor._func(v.function)

    # -- variants --------------------------------------------------------------------
    def function_of(self, task: str, variant: str) -> str:
        if task not in self.variants:
            raise BadInput(f"{self.path}: no task {task!r} (tasks: {', '.join(self.variants)})")
        for v in self.variants[task]:
            if variant in (v.id, v.function):
                return v.function
        ids = ", ".join(v.id for v in self.variants[task])
        raise BadInput(f"{self.path}: task {task} has no variant {variant!r} (variants: {ids})")

    def select(self, choice: Mapping[str, str], block: int | None = None) -> None:
        """Variant id (or function name) per task, for every call or the calls of one block."""
        fns = {task: self.function_of(task, vid) for task, vid in choice.items()}
        if block is None:
            self.executor.select(fns)
        else:
            b = self.blocks[block]
            self.executor.select(fns, b["start"], b["end"])

    def reset(self) -> None:
        self.executor.reset_choice()

    def chosen(self) -> dict[str, list[str]]:
        """task -> variant ids its calls run now (one per distinct choice)."""
        id_of = {(t, v.function): v.id for t, vs in self.variants.items() for v in vs}
        out: dict[str, list[str]] = {}
        for call, fn in zip(self.plan.calls, self.executor.choice):
            vid = id_of.get((call.task, fn), fn)
            if vid not in out.setdefault(call.task, []):
                out[call.task].append(vid)
        return out

    # -- running ---------------------------------------------------------------------
    def check_feeds(self, feeds: Mapping[str, np.ndarray], where: str = "inputs") -> list[np.ndarray]:
        names = [i["name"] for i in self.inputs]
        for key in feeds:
            if key not in names:
                raise BadInput(f"{where}: unexpected input {key!r} (the model's inputs: {', '.join(names)})")
        arrays = []
        for i in self.inputs:
            if i["name"] not in feeds:
                raise BadInput(f"{where}: missing input {i['name']!r} (the model's inputs: {', '.join(names)})")
            a = np.asarray(feeds[i["name"]])
            if list(a.shape) != list(i["shape"]) or str(a.dtype) != i["dtype"]:
                raise BadInput(f"{where}: input {i['name']!r} is {a.dtype}{list(a.shape)}, the model takes "
                               f"{i['dtype']}{list(i['shape'])}")
            arrays.append(a)
        return arrays

    def run(self, *arrays, **named) -> list[np.ndarray]:
        """One inference through the call plan: positional arrays in input order, or one
        dict / keyword arguments keyed by input name."""
        if len(arrays) == 1 and isinstance(arrays[0], Mapping):
            arrays = tuple(self.check_feeds({**arrays[0], **named}))
        elif named:
            if arrays:
                raise BadInput("give the inputs by position or by name, not both")
            arrays = tuple(self.check_feeds(named))
        elif len(arrays) != len(self.inputs):
            raise BadInput(f"{len(self.inputs)} input(s) expected, got {len(arrays)}")
        else:
            arrays = tuple(self.check_feeds({i["name"]: a for i, a in zip(self.inputs, arrays)}))
        return self.executor.run(*arrays)

    def run_dict(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {o["name"]: y for o, y in zip(self.outputs, self.run(dict(feeds)))}


def load(path) -> LoadedBundle:
    """Verifies the bundle at `path` completely, then loads it.  BadInput (exit 2) for a
    damaged or foreign file, EnvironmentProblem (exit 3) for another TVM or a CPU
    lacking a required feature -- all before any code from the file is loaded."""
    from .plan import Plan

    bundle = B.open_bundle(path)
    try:
        plan = Plan.from_dict(bundle.json(PLAN_MEMBER))
    except (KeyError, TypeError, ValueError) as e:
        raise BadInput(f"{bundle.path}: member {PLAN_MEMBER!r} is not a valid call plan ({e})") from None
    weights = {}
    for s in plan.slots:
        if s.kind == "const":
            arr = bundle.array(f"{WEIGHTS_DIR}/{s.name}.npy")
            if list(arr.shape) != s.shape or str(arr.dtype) != s.dtype:
                raise BadInput(f"{bundle.path}: weight {s.name} is {arr.dtype}{list(arr.shape)}, "
                               f"the plan expects {s.dtype}{s.shape}")
            weights[s.name] = arr
    plan.weights = weights
    selector = bundle.json(SELECTOR_MEMBER)
    if not isinstance(selector, dict) or selector.get("format") != SELECTOR_FORMAT:
        raise BadInput(f"{bundle.path}: member {SELECTOR_MEMBER!r} is not an {SELECTOR_FORMAT} selector")
    import tvm

    tmp = tempfile.mkdtemp(prefix="mtcc-load-")
    try:
        so = bundle.extract_library(tmp)
        try:
            lib = tvm.runtime.load_module(str(so))
        except Exception as e:  # noqa: BLE001 - a verified file TVM still cannot load
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise EnvironmentProblem(f"{bundle.path}: the library does not load here ({first})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    try:
        return LoadedBundle(bundle, lib, plan, selector)
    except (KeyError, AttributeError, ValueError) as e:
        raise BadInput(f"{bundle.path}: plan and library disagree ({e})") from None


# ------------------------------------------------------------------ inspecting
def is_bundle(path) -> bool:
    path = Path(path)
    if not path.is_file():
        return False
    if path.suffix == ".mtcc":
        return True
    with open(path, "rb") as f:
        return f.read(len(B.MANIFEST) + 1) == B.MANIFEST.encode() + b"\0"


def inspect_bundle(path) -> dict:
    """What `mtcc inspect BUNDLE` shows: the manifest (verified, but without the
    environment checks, so a bundle for another CPU can be read) and whether this
    machine could load it."""
    bundle = B.open_bundle(path, check_environment=False)
    m = bundle.manifest
    try:
        B.check_environment_for(bundle.path, m)
        loadable, why = True, None
    except EnvironmentProblem as e:
        loadable, why = False, str(e)
    selector = bundle.json(SELECTOR_MEMBER) if SELECTOR_MEMBER in bundle.names else {"tasks": []}
    return {
        "bundle": str(bundle.path), "size": bundle.path.stat().st_size,
        "format_version": m["format_version"],
        "model": m["model"]["name"], "model_sha256": m["model"]["sha256"],
        "target": m["target"]["string"], "mcpu": m["target"].get("mcpu"),
        "tvm_version": m["tvm_version"], "cpu_features": m["cpu_features"], "toolchain": m.get("toolchain"),
        "loadable_here": loadable, "not_loadable_because": why,
        "inputs": m["inputs"], "outputs": m["outputs"],
        "tasks": m.get("tasks", []), "total_flops": m.get("total_flops"),
        "plan": m.get("plan"), "blocks": m["blocks"], "blocks_rule": m.get("blocks_rule"),
        "variants": selector.get("tasks", m["variants"]), "variants_source": m.get("variants_source"),
        "members": m["members"],
    }

"""`mtcc pack`: a model, its schedules and every kept variant in one bundle file.

Packing (`pack`):

1. The model is imported and lowered exactly as tuning did (the schedules folder's
   target and layout from its tune.json); every task's record is applied
   (MetaScheduleApplyDatabase, as `mtcc.compile` does): its default in variants.json,
   else the database's best (`tune.database.applying_copy`), and the call plan is made
   from that module (`plan_builder.make_plan`, the VM's own memory plan).
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
   The schedules folder is read once, by `variants.folder.SchedulesFolder`, which
   answers per task with resolved variants (records, functions, tables).

Everything that goes into the file is a function of the inputs (model bytes,
database records, variants.json, TVM, the linking g++): no times, paths or host
names, so packing twice gives identical bytes.  The toolchain is recorded in the
manifest because the .so bytes depend on it (docs/bundle-format.md).
"""
from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from ..bundle import container
from ..bundle.container import PLAN_MEMBER, SELECTOR_FORMAT, SELECTOR_MEMBER, VARIANT_SEP, WEIGHTS_DIR
from ..errors import BadInput
from ..progress import Progress, say
from . import blocks as blocks_rule


def toolchain() -> dict:
    """The compiler TVM links the library with (first line of `$CXX --version`)."""
    cxx = os.environ.get("CXX", "g++")
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30)
        first = out.stdout.strip().splitlines()[0] if out.stdout.strip() else "unknown"
    except (OSError, subprocess.SubprocessError):
        first = "unknown"
    return {"cxx": os.path.basename(cxx), "version": first}


def pack(model, schedules, out, *, input_shapes=None, max_blocks: int | None = None,
         min_block_us: float | None = None, target=None, progress: Progress = None) -> dict:
    """Packs `model` (ONNX) with the records of `schedules` into the bundle `out`, built
    for `target` (default: the target the schedules were tuned for).
    Returns {"path", "size", "sha256", "variants", "tasks", "functions", "blocks",
    "calls", "seconds", "variants_source"}.  BadInput for a bad model or folder."""
    from ..variants.folder import SchedulesFolder

    start = time.perf_counter()
    out = Path(out)
    max_blocks = blocks_rule.DEFAULT_MAX_BLOCKS if max_blocks is None else int(max_blocks)
    if max_blocks < 1:
        raise BadInput(f"--max-blocks {max_blocks}: must be at least 1")
    min_block_us = blocks_rule.DEFAULT_MIN_BLOCK_US if min_block_us is None else float(min_block_us)
    if min_block_us < 0:
        raise BadInput(f"--min-block-us {min_block_us}: must not be negative")
    if not out.parent.exists():
        raise BadInput(f"-o {out}: folder {out.parent} does not exist")
    with SchedulesFolder(schedules, progress, target=target) as folder:
        return _pack(model, folder, out, input_shapes=input_shapes, max_blocks=max_blocks,
                     min_block_us=min_block_us, progress=progress, start=start)


def _lower(model, folder, input_shapes, progress):
    """(model info, fused module, module with the best records applied, task graph)."""
    import tvm
    from tvm import relax

    from .. import frontend
    from ..frontend import tasks as task_graph
    from ..target import describe
    from ..interference import machine
    from ..tune.database import import_options, searched_elsewhere

    say(progress, f"importing {model}")
    model_info, mod = frontend.import_model(model, input_shapes, **import_options(folder.meta))
    tuned_for = folder.meta.get("model_sha256")
    if tuned_for and tuned_for != model_info.sha256:
        say(progress, f"warning: {folder.dir} was tuned for another version of the model "
                      f"(sha256 {tuned_for[:12]}...); tasks without a matching record stay untuned")
    say(progress, f"lowering for {describe(folder.target)} ({folder.layout}) and applying the best records")
    elsewhere = searched_elsewhere(folder.meta, machine.description())
    if elsewhere:
        say(progress, f"note: {elsewhere}")
    if describe(folder.target) != describe(folder.tuned_target):
        say(progress, f"note: the schedules were tuned for {describe(folder.tuned_target)}; built for "
                      f"{describe(folder.target)} they compute the same, usually slower")
    fused = task_graph.legalize_and_fuse(mod, folder.target, folder.layout)
    with folder.target, tvm.transform.PassContext(opt_level=3), folder.database:
        applied = relax.transform.MetaScheduleApplyDatabase(enable_warning=False)(fused)
    return model_info, fused, applied, task_graph.extract_fused(fused, folder.target)


def _pack(model, folder, out: Path, *, input_shapes, max_blocks: int, min_block_us: float, progress: Progress,
          start: float) -> dict:
    import tvm

    from ..frontend.tasks import same_schedule
    from ..target import target_cores
    from .plan_builder import build_library, make_plan

    model_info, fused, applied, graph = _lower(model, folder, input_shapes, progress)
    cores = target_cores(folder.target)
    try:
        plan, prim_funcs = make_plan(applied, graph.task_of_function)
    except ValueError as e:
        raise BadInput(f"{model}: {e}") from None
    funcs = dict(prim_funcs.functions_items())
    by_name = {gv.name_hint: gv for gv in funcs}
    workload_of = folder.lines.task_workloads(graph.extracted)
    folder.warn_unknown_tasks(plan.tasks)

    selector_tasks, n_extra = [], 0
    for task, fnames in plan.tasks.items():
        base = fnames[0]
        resolved = folder.task(task, workload_of.get(task), funcs[by_name[base]], model)
        variants = []
        for k, v in enumerate(resolved.variants):
            # The variant that is the applied best keeps the plan's function; every other
            # variant k becomes its own PrimFunc T__v<k> in the same library.
            name = base if same_schedule(v.func, funcs[by_name[base]]) else f"{task}{VARIANT_SEP}{k}"
            if name != base:
                gv = tvm.ir.GlobalVar(name)
                funcs[gv] = v.func.with_attr("global_symbol", name).with_attr("tirx.is_scheduled", True)
                by_name[name] = gv
                n_extra += 1
            variants.append({"id": v.id, "function": name, "trace": v.trace, "latency_us": v.latency_us,
                             "footprint": v.footprint, "tuned_us": v.tuned_us,
                             **({"latency_error_us": v.latency_error_us} if v.latency_error_us else {}),
                             **({"untuned": True} if v.untuned else {})})
        default = next((v for v in variants if v["function"] == base), variants[0])
        if default["function"] != base:
            # The applied best is not a kept variant: run the first variant by default, so
            # every function in the library is a listed variant.
            for call in plan.calls:
                if call.task == task:
                    call.function = default["function"]
            for fn in fnames:
                funcs.pop(by_name.pop(fn))
        selector_tasks.append({"task": task, "calls": sum(c.task == task for c in plan.calls),
                               "default": default["id"], "variants": variants,
                               "best_alone_differs_under_pressure": resolved.best_alone_differs_under_pressure})

    blocks = _blocks(plan, selector_tasks, cores, max_blocks, min_block_us)
    say(progress, f"building one library: {len(funcs)} functions ({n_extra} extra variants)")
    lib = build_library(tvm.IRModule(funcs), folder.target)
    with tempfile.TemporaryDirectory(prefix="mtcc-pack-") as tmp:
        so = Path(tmp) / "model.so"
        lib.export_library(str(so))
        lib_bytes = so.read_bytes()

    members = {container.LIBRARY: lib_bytes, PLAN_MEMBER: container.canonical_json(plan.to_dict())}
    for name, arr in plan.weights.items():
        members[f"{WEIGHTS_DIR}/{name}.npy"] = container.npy_bytes(arr)
    selector = {"format": SELECTOR_FORMAT, "source": folder.source, "cores": cores,
                "reference_cell": folder.reference_cell, "tasks": selector_tasks}
    members[SELECTOR_MEMBER] = container.canonical_json(selector)
    manifest = _manifest(model_info, folder, plan, graph, selector_tasks, blocks, len(funcs))
    written = container.write_bundle(out, manifest, members)
    return {**written, "variants": sum(len(t["variants"]) for t in selector_tasks), "tasks": len(selector_tasks),
            "functions": len(funcs), "blocks": len(blocks), "calls": len(plan.calls),
            "variants_source": folder.source, "seconds": round(time.perf_counter() - start, 2)}


def _blocks(plan, selector_tasks, cores: int, max_blocks: int, min_block_us: float) -> list[dict]:
    """Layer blocks from the default variant's table of every call."""
    table_of = {t["task"]: next(v for v in t["variants"] if v["id"] == t["default"]) for t in selector_tasks}
    costs = [blocks_rule.CallCost(task=c.task, table=table_of[c.task]["latency_us"],
                                  cost_us=blocks_rule.reference_cost(table_of[c.task]["latency_us"], cores,
                                                                     table_of[c.task]["tuned_us"]))
             for c in plan.calls]
    return blocks_rule.make_blocks(costs, cores, max_blocks, min_block_us)


def _manifest(model_info, folder, plan, graph, selector_tasks, blocks, n_functions: int) -> dict:
    from ..target import describe
    from ..tune.database import searched_on

    task_rows = []
    for task, fnames in plan.tasks.items():
        try:
            info = graph.task(task)
            row = {"name": task, "kind": info.kind, "flops": info.flops, "inputs": info.inputs,
                   "outputs": info.outputs}
        except StopIteration:
            row = {"name": task, "kind": "other", "flops": 0.0, "inputs": [], "outputs": []}
        row["weight"] = sum(c.task == task for c in plan.calls)
        row["functions"] = fnames
        task_rows.append(row)
    return container.make_manifest(
        model_name=model_info.name, model_sha256=model_info.sha256, target=folder.target,
        inputs=[i.as_dict() for i in model_info.inputs], outputs=[o.as_dict() for o in model_info.outputs],
        blocks=blocks,
        variants=[{"task": t["task"], "default": t["default"],
                   "variants": [{k: v[k] for k in ("id", "function", "latency_us", "footprint", "tuned_us")}
                                for v in t["variants"]]} for t in selector_tasks],
        tasks=task_rows, total_flops=sum(t["flops"] * t["weight"] for t in task_rows),
        layout=folder.layout, toolchain=toolchain(),
        plan={"member": PLAN_MEMBER, "calls": len(plan.calls), "functions": n_functions,
              "memory_bytes": plan.memory()},
        selector=SELECTOR_MEMBER, blocks_rule=blocks_rule.RULE, variants_source=folder.source,
        schedules={"model_sha256": folder.meta.get("model_sha256"), "records": folder.records,
                   "tuned_for": describe(folder.tuned_target), "searched_on": searched_on(folder.meta)},
    )

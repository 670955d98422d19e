"""The Python API: the same operations as the CLI, returning plain data."""
from __future__ import annotations

from pathlib import Path

from . import frontend
from .frontend import tasks
from .target import describe, make_target, parse_target


def inspect(path: str | Path, input_shapes=None, target=None) -> dict:
    """What mtcc will tune in an ONNX model: inputs, outputs, tasks with FLOPs and counts,
    and the ordered call sequence of main.  Raises BadInput for a bad model or flag."""
    model, mod = frontend.import_model(path, input_shapes)
    tgt = parse_target(target) if isinstance(target, str) or target is None else target
    graph = tasks.extract(mod, tgt)
    libm = {ext.task_name: tasks.scalar_math(ext.dispatched[0]["main"]) for ext in graph.extracted}
    return {
        "model": model.name,
        "path": str(model.path),
        "sha256": model.sha256,
        "opset": model.opset,
        "target": describe(tgt),
        "inputs": [i.as_dict() for i in model.inputs],
        "outputs": [o.as_dict() for o in model.outputs],
        "onnx_ops": dict(sorted(model.op_types.items())),
        "tasks": [
            {
                "name": t.name,
                "kind": t.kind,
                "ops": t.ops,
                "flops": t.flops,
                "weight": t.count,
                "inputs": t.inputs,
                "outputs": t.outputs,
                "functions": t.functions,
                "scalar_math": libm.get(t.name, []),
            }
            for t in graph.tasks
        ],
        "calls": [{"index": c.index, "task": c.task, "function": c.function} for c in graph.calls],
        "total_flops": graph.total_flops,
        "num_tasks": len(graph.tasks),
        "num_calls": len(graph.calls),
    }


def compile(model, schedules=None, target=None, input_shapes=None, layout=None):  # noqa: A001 - mirrors tvm.compile
    """Compile an ONNX model with the best record of every task from a schedules folder
    (None: TVM's default schedules).  The target defaults to the one the schedules were
    tuned for (read from their tune.json), else x86-64-v4 on this machine's cores.
    Returns a tune.compile.Compiled; `.session().run(*arrays)` runs it."""
    from . import variants
    from .target import PORTABLE_MCPU
    from .tune import database as schedules_db
    from .tune.compile import compile_module

    options = schedules_db.import_options(schedules_db.read_meta(schedules)) if schedules is not None else {}
    model_info, mod = frontend.import_model(model, input_shapes, **options)
    # The folder's lines: its target, and the records of variants.json's defaults
    lines = schedules_db.DatabaseLines(schedules) if schedules is not None else None
    # every task compiles from its default in variants.json, as the bundle's call plan runs it
    database = (schedules_db.open_readonly(schedules, variants.default_records(schedules, lines), lines)
                if schedules is not None else None)
    if target is None:  # the folder's own target (one definition: DatabaseLines.target)
        target = lines.target() if lines is not None else make_target(PORTABLE_MCPU)
    elif isinstance(target, str):
        target = parse_target(target)
    chosen_layout = layout or (schedules_db.layout_of(schedules) if schedules is not None else tasks.DEFAULT_LAYOUT)
    compiled = compile_module(mod, target, database, chosen_layout)
    compiled.model = model_info
    return compiled


__all__ = ["inspect", "compile", "make_target"]

"""The Python API: the same operations as the CLI, returning plain data."""
from __future__ import annotations

from pathlib import Path

from . import frontend, tasks
from .target import describe, make_target, parse_target


def inspect(path: str | Path, input_shapes=None, target=None) -> dict:
    """What mtcc will tune in an ONNX model: inputs, outputs, tasks with FLOPs and counts,
    and the ordered call sequence of main.  Raises BadInput for a bad model or flag."""
    model, mod = frontend.import_model(path, input_shapes)
    tgt = parse_target(target) if isinstance(target, str) or target is None else target
    graph = tasks.extract(mod, tgt)
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
            }
            for t in graph.tasks
        ],
        "calls": [{"index": c.index, "task": c.task, "function": c.function} for c in graph.calls],
        "total_flops": graph.total_flops,
        "num_tasks": len(graph.tasks),
        "num_calls": len(graph.calls),
    }


__all__ = ["inspect", "make_target"]

"""Compile a Relax module (optionally with a tuning database) and run it.

`compile_module` is the one build path: untuned (TVM's default schedules) or with
the best record of every task from a MetaSchedule database; the pack stage reuses it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..frontend.layout import DEFAULT_LAYOUT
from ..frontend.tasks import legalize_and_fuse


@dataclass
class Compiled:
    executable: object
    target: object
    seconds: float
    model: object = None  # frontend.Model when compiled from ONNX

    def session(self):
        from ..cpu import check_can_run

        check_can_run(self.target, getattr(self.model, "name", None) or "compiled model")
        return Session(self)


class Session:
    """A Relax VM over a compiled model: call it with numpy arrays."""

    def __init__(self, compiled: Compiled):
        import tvm
        from tvm import relax

        self.device = tvm.cpu()
        self.vm = relax.VirtualMachine(compiled.executable, self.device)

    def run(self, *arrays: np.ndarray) -> list[np.ndarray]:
        import tvm

        args = [tvm.runtime.tensor(np.ascontiguousarray(a), self.device) for a in arrays]
        out = self.vm["main"](*args)
        return [o.numpy() for o in flatten_outputs(out)]


def flatten_outputs(value) -> list:
    """A Relax VM's result (a tensor, or nested tuples of them) as a flat list."""
    if isinstance(value, (list, tuple)) or type(value).__name__ in ("Array", "List", "Tuple"):
        items = []
        for v in value:
            items.extend(flatten_outputs(v))
        return items
    return [value]


def compile_module(mod, target, database=None, layout: str = DEFAULT_LAYOUT) -> Compiled:
    """Lower exactly as tuning did, apply `database` (a MetaSchedule Database: the best
    record of every task) when given, and build.  Tasks without a record keep TVM's
    default (untuned) schedule."""
    import tvm
    from tvm import relax

    start = time.perf_counter()
    mod = legalize_and_fuse(mod, target, layout)
    with target, tvm.transform.PassContext(opt_level=3):
        if database is not None:
            with database:
                mod = relax.transform.MetaScheduleApplyDatabase(enable_warning=False)(mod)
        executable = tvm.compile(mod, target=target)
    return Compiled(executable, target, time.perf_counter() - start)

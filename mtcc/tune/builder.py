"""A MetaSchedule Builder that keeps warm worker processes.

MetaSchedule's LocalBuilder starts a fresh process pool for every batch, and its
default build function imports `tvm.s_tir.tensor_intrin`, which takes ~20 s in a
fresh process here: 18-20 s per batch whatever its size.  Building a candidate
whose schedule is already applied needs neither, so this builder starts its
workers once, imports only what building needs, and reuses them (recycling each
after `max_uses` builds to bound LLVM's memory growth).
"""
from __future__ import annotations

import os
import shutil
import tempfile

from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.builder import BuilderResult, PyBuilder
from tvm.support.popen_pool import PopenPoolExecutor, StatusKind


def _warm_up() -> None:
    """Runs once in every worker: pay the imports before the first candidate."""
    import tvm  # noqa: F401
    import tvm.s_tir.transform  # noqa: F401


def _build_one(mod, target, artifact_root: str) -> str:
    """Compile one scheduled candidate and export it as MetaSchedule's runners expect (.tar)."""
    import tvm
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock
    from tvm.support.tar import tar

    # Same as MetaSchedule's default_build, less the tensor-intrinsic import.
    mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod)
    lib = tvm.build(mod, target=target)
    path = os.path.join(tempfile.mkdtemp(prefix="cand-", dir=artifact_root), "tvm_tmp_mod." + tar.output_format)
    lib.export_library(path, fcompile=tar)
    return path


def _build_task(args):
    return _build_one(*args)


@derived_object
class WarmBuilder(PyBuilder):
    """Drop-in for LocalBuilder: same results, workers started once."""

    def __init__(self, max_workers: int | None = None, timeout_sec: float = 60.0, max_uses: int = 200):
        super().__init__()
        self.timeout_sec = timeout_sec
        self.artifact_root = tempfile.mkdtemp(prefix="mtcc-build-")
        self.pool = PopenPoolExecutor(
            max_workers=max_workers or len(os.sched_getaffinity(0)),
            timeout=timeout_sec,
            initializer=_warm_up,
            maximum_process_uses=max_uses,
        )

    def build(self, build_inputs):
        jobs = [(b.mod, b.target, self.artifact_root) for b in build_inputs]
        results = []
        for r in self.pool.map_with_error_catching(_build_task, jobs):
            if r.status == StatusKind.COMPLETE:
                results.append(BuilderResult(r.value, None))
            elif r.status == StatusKind.TIMEOUT:
                results.append(BuilderResult(None, f"build timed out after {self.timeout_sec:.0f} s"))
            else:
                results.append(BuilderResult(None, f"build failed: {r.value}"))
        return results

    def shutdown(self) -> None:
        self.pool.shutdown()
        shutil.rmtree(self.artifact_root, ignore_errors=True)

"""`mtcc.load`: the verified way from a bundle file back to running code.

`bundle.container.open_bundle` verifies the whole file first (format, every sha256,
TVM version, CPU features); only then is the library extracted to a private
temporary folder, loaded and deleted, and the plan executor built.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Mapping

import numpy as np

from ..bundle import container
from ..bundle.container import PLAN_MEMBER, SELECTOR_FORMAT, SELECTOR_MEMBER, WEIGHTS_DIR
from ..bundle.plan import Plan
from ..cells import best_cells, demand, parse_cell
from ..errors import BadInput, EnvironmentProblem
from ..threads import use_threads
from .executor import PlanExecutor
from .profile import Variant


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



def check_feeds(inputs: list[dict], feeds: Mapping[str, np.ndarray], where: str) -> list[np.ndarray]:
    """The arrays of `feeds` in the model's input order, or BadInput naming the field:
    an unexpected or missing input name, a wrong shape or dtype (`inputs`: the
    manifest's [{"name", "shape", "dtype"}])."""
    if not isinstance(feeds, Mapping):
        raise BadInput(f"{where}: inputs must be a dict of input name -> array")
    names = [i["name"] for i in inputs]
    for key in feeds:
        if key not in names:
            raise BadInput(f"{where}: unexpected input {key!r} (the model's inputs: {', '.join(names)})")
    arrays = []
    for i in inputs:
        if i["name"] not in feeds:
            raise BadInput(f"{where}: missing input {i['name']!r} (the model's inputs: {', '.join(names)})")
        a = np.asarray(feeds[i["name"]])
        if list(a.shape) != list(i["shape"]) or str(a.dtype) != i["dtype"]:
            raise BadInput(f"{where}: input {i['name']!r} is {a.dtype}{list(a.shape)}, the model takes "
                           f"{i['dtype']}{list(i['shape'])}")
        arrays.append(a)
    return arrays


class FeedChecker:
    """check_feeds for one model's inputs, for a server's every request: a valid request
    is accepted by a few comparisons against shapes and dtypes prepared once; anything
    else goes through check_feeds, which names the fault.  (Between inferences the
    interpreter's caches are cold: there check_feeds took 121 µs a request, median after
    20 ms idle, against 6 µs in a loop; this check 35 µs.)"""

    def __init__(self, inputs: list[dict]):
        self.inputs = inputs
        self.expected = [(i["name"], tuple(int(d) for d in i["shape"]), np.dtype(i["dtype"])) for i in inputs]

    def __call__(self, feeds: Mapping[str, np.ndarray], where: str) -> list[np.ndarray]:
        if type(feeds) is dict and len(feeds) == len(self.expected):
            arrays = []
            for name, shape, dtype in self.expected:
                a = feeds.get(name)
                if type(a) is not np.ndarray or a.shape != shape or a.dtype != dtype:
                    break
                arrays.append(a)
            else:
                return arrays
        return check_feeds(self.inputs, feeds, where)



class LoadedBundle:
    """A verified bundle, loaded: `.run(*arrays)` or `.run({name: array})` -> outputs.

        b = mtcc.load("model.mtcc")
        y, = b.run(x)
        b.variants            # {task: [Variant, ...]}, the default first
        b.blocks              # manifest blocks: [{"start", "end", "tasks", "latency_us", ...}]
        b.select({"fused_matmul_add": "r37"})          # by variant id, all calls of the task
        b.select({"fused_matmul_add": "r37"}, block=2) # only the calls of block 2
    """

    def __init__(self, bundle: container.Bundle, lib, plan, selector: dict):
        self.path = bundle.path
        self.manifest = bundle.manifest
        self.plan = plan
        self.selector = selector
        self.lib = lib
        self.executor = PlanExecutor(lib, plan)
        self._thread = threading.local()  # .placement: the calling thread's pool's (pinned())
        self.inputs = list(self.manifest["inputs"])
        self.outputs = list(self.manifest["outputs"])
        self.blocks = list(self.manifest["blocks"])
        self.variants: dict[str, list[Variant]] = {}
        self.defaults: dict[str, str] = {}
        for t in selector["tasks"]:
            vs = [Variant.from_selector(t["task"], v) for v in t["variants"]]
            vs.sort(key=lambda v: v.id != t["default"])
            self.variants[t["task"]] = vs
            self.defaults[t["task"]] = t["default"]
        for vs in self.variants.values():  # every variant must be callable, or refuse now
            for v in vs:
                self.executor._func(v.function)

    @contextlib.contextmanager
    def pinned(self, cores: list[int]):
        """A with-block in which the calling thread's TVM pool runs one thread per core on
        `cores`, this thread on the first (after an idle gap a pool left free in the set
        ran up to 1.5x slower: placement.py); the thread gets its former cores back at
        the end.  The first call on a thread starts its pool with one inference on zeros,
        so make it before anything else runs compiled code on that thread (else it pins
        nothing: the pool's workers cannot be found any more)."""
        from .placement import LanePlacement

        placement = getattr(self._thread, "placement", None)
        if placement is None:  # TVM's pools are per thread, and so is this
            zeros = [np.zeros(i["shape"], i["dtype"]) for i in self.inputs]
            placement = self._thread.placement = LanePlacement()
            placement.start_pool(lambda: self.executor.run(*zeros))
        if len(cores) > 1 and not placement.worker_tids:
            # The pool had started before (its workers unknown): pinning only this thread
            # could leave a worker spinning on its core, the 25x case threads.py describes.
            yield
            return
        with placement.holding(cores):
            yield

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
        return check_feeds(self.inputs, feeds, where)

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

    def run_timed(self, arrays, repeat: int = 1) -> tuple[list[np.ndarray], list[float]]:
        """Run `repeat` inferences on checked input arrays: (outputs of the last, ms of each)."""
        import time

        times, outs = [], None
        for _ in range(repeat):
            start = time.perf_counter()
            outs = self.executor.run(*arrays)
            times.append((time.perf_counter() - start) * 1e3)
        return outs, times

    def run_dict(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {o["name"]: y for o, y in zip(self.outputs, self.run(dict(feeds)))}



def load(path) -> LoadedBundle:
    """Verifies the bundle at `path` completely, then loads it.  BadInput (exit 2) for a
    damaged or foreign file, EnvironmentProblem (exit 3) for another TVM or a CPU
    lacking a required feature -- all before any code from the file is loaded."""
    bundle = container.open_bundle(path)
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



def is_bundle(path) -> bool:
    path = Path(path)
    if not path.is_file():
        return False
    if path.suffix == ".mtcc":
        return True
    with open(path, "rb") as f:
        return f.read(len(container.MANIFEST) + 1) == container.MANIFEST.encode() + b"\0"



def task_scaling(variants: list[dict]) -> dict:
    """What a task can do on more cores, taking at each core count its fastest variant
    alone: {"best_us": {cores: µs}, "speedup": most cores / 1 core, "demand": the cores
    it can use (cells.demand; 1 = more cores are not worth it: the scheduler gives its
    calls one core)}."""
    best = best_cells(v.get("latency_us") for v in variants)
    alone = {c: us for k, us in best.items() for c, level in [parse_cell(k)] if level == "none"}
    top = max(alone, default=None)
    return {"best_us": alone, "demand": demand(best),
            "speedup": round(alone[1] / alone[top], 3) if top and 1 in alone and top > 1 else None}


def inspect_bundle(path) -> dict:
    """What `mtcc inspect BUNDLE` shows: the manifest (verified, but without the
    environment checks, so a bundle for another CPU can be read) and whether this
    machine could load it."""
    bundle = container.open_bundle(path, check_environment=False)
    m = bundle.manifest
    try:
        container.check_environment_for(bundle.path, m)
        loadable, why = True, None
    except EnvironmentProblem as e:
        loadable, why = False, str(e)
    selector = bundle.json(SELECTOR_MEMBER) if SELECTOR_MEMBER in bundle.names else {"tasks": []}
    variants = selector.get("tasks", m["variants"])
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
        "variants": variants, "variants_source": m.get("variants_source"),
        "task_scaling": {t["task"]: task_scaling(t["variants"]) for t in variants},
        "members": m["members"],
    }


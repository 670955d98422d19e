"""The call plan reproduces the Relax VM: same PrimFuncs, same order, same memory plan,
so the outputs are bit-for-bit the VM's; blocks of calls, variants in one library and
the JSON/npz round trip keep them so."""
from __future__ import annotations

import json
import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import HOST_MCPU
from mtcc import frontend
from mtcc.bench import baselines
from mtcc.frontend import tasks
from mtcc.tune import compile as build
from mtcc.bundle import plan as call_plan
from mtcc.packing import plan_builder
from mtcc.runtime.executor import PlanExecutor
from mtcc.target import make_target
from onnx_factory import save, tiny_conv

TARGET_MCPU, CORES = HOST_MCPU, 2


def blocked_conv() -> onnx.ModelProto:
    """16 -> 32 -> 32 channels: NCHW16c convolutions, pools, layout transforms at the
    edges and a Flatten (a reshape the VM runs as a view)."""
    rng = np.random.default_rng(3)
    w1 = numpy_helper.from_array(rng.normal(0, 0.2, (32, 16, 3, 3)).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(rng.normal(0, 0.1, (32,)).astype(np.float32), "b1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.2, (32, 32, 1, 1)).astype(np.float32), "w2")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 12, 12])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32])
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p1", "w2"], ["c2"]),
             helper.make_node("GlobalAveragePool", ["c2"], ["g"]),
             helper.make_node("Flatten", ["g"], ["y"])]
    graph = helper.make_graph(nodes, "blocked", [x], [y], initializer=[w1, b1, w2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def two_conv() -> onnx.ModelProto:
    """Conv+Relu twice on 8 channels: two calls of one task (the same PrimFunc)."""
    rng = np.random.default_rng(5)
    inits = [numpy_helper.from_array(rng.normal(0, 0.3, (8, 8, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(0, 0.1, (8,)).astype(np.float32), "b1"),
             numpy_helper.from_array(rng.normal(0, 0.3, (8, 8, 3, 3)).astype(np.float32), "w2"),
             numpy_helper.from_array(rng.normal(0, 0.1, (8,)).astype(np.float32), "b2")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 10, 10])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 10, 10])
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c2"], ["y"])]
    graph = helper.make_graph(nodes, "two_conv", [x], [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


class Built:
    """One model: its VM session and its plan executor over the same lowering."""

    def __init__(self, path):
        self.target = make_target(TARGET_MCPU, CORES)
        self.model, self.mod = frontend.import_model(path)
        self.fused = tasks.legalize_and_fuse(self.mod, self.target)
        self.plan, self.prim_funcs = plan_builder.make_plan(self.fused)
        self.lib = plan_builder.build_library(self.prim_funcs, self.target)
        self.compiled = build.compile_module(self.mod, self.target)
        feeds = baselines.random_inputs(self.model, 0)
        self.inputs = [feeds[i.name] for i in self.model.inputs]
        self.want = self.compiled.session().run(*self.inputs)

    def executor(self, lib=None, plan=None):
        return PlanExecutor(lib or self.lib, plan or self.plan)


_CACHE: dict[str, Built] = {}


@pytest.fixture(scope="module")
def built(tmp_path_factory, models_dir):
    def get(name: str) -> Built:
        if name not in _CACHE:
            if name == "tiny_conv":
                path = save(tiny_conv(), tmp_path_factory.mktemp("m") / "tiny_conv.onnx")
            elif name == "blocked_conv":
                path = save(blocked_conv(), tmp_path_factory.mktemp("m") / "blocked_conv.onnx")
            elif name == "two_conv":
                path = save(two_conv(), tmp_path_factory.mktemp("m") / "two_conv.onnx")
            else:
                path = models_dir / f"{name}.onnx"
            _CACHE[name] = Built(path)
        return _CACHE[name]

    return get


def _assert_same(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        # Same PrimFuncs, same order: bitwise in practice; 1e-6 relative is the contract.
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6 * float(np.abs(w).max() or 1.0))


@pytest.mark.parametrize("name", ["tiny_conv", "blocked_conv", "transformer",
                                  pytest.param("squeezenet", marks=pytest.mark.slow)])  # ~16 s
def test_plan_matches_vm(built, name):
    b = built(name)
    ex = b.executor()
    _assert_same(ex.run(*b.inputs), b.want)
    _assert_same(ex.run(*b.inputs), b.want)  # buffers are reused across runs
    assert all(np.array_equal(g, w) for g, w in zip(ex.run(*b.inputs), b.want)), "not bitwise"
    # The VM's bytecode calls exactly these functions in this order (tvm.compile does
    # not fuse further or drop any), so per-call timings of the plan are the VM's.
    vm_calls = [line.split()[1] for line in b.compiled.executable.as_text().splitlines()
                if line.strip().startswith("call ") and not line.split()[1].startswith("vm.")]
    assert vm_calls == [c.function for c in b.plan.calls]


def test_plan_structure(built):
    b = built("blocked_conv")
    plan = b.plan
    kinds = {s.kind for s in plan.slots}
    assert {"input", "const", "storage", "own", "view"} <= kinds  # the Flatten is a view
    for c in plan.calls:
        assert c.outputs and all(plan.slots[o].kind in ("storage", "own") for o in c.outputs)
    # Every call's function is in the library, every task has its functions.
    assert set(plan.tasks) == {c.task for c in plan.calls}
    assert {c.function for c in plan.calls} == {gv.name_hint for gv in b.prim_funcs.functions}
    # Task names agree with MetaSchedule's task extraction (the tuning database's names).
    graph = tasks.extract(b.mod, b.target)
    named = {c.function: c.task for c in graph.calls}
    assert all(named[c.function] == c.task for c in plan.calls)
    mem = plan.memory()
    assert mem["planned"] <= mem["naive"]


def test_run_range_in_blocks(built):
    b = built("transformer")
    ex = b.executor()
    n = len(ex)
    ex.set_inputs(*b.inputs)
    cuts = [0, 5, 6, n // 2, n - 1, n]
    for start, end in zip(cuts, cuts[1:]):
        ex.run_range(start, end)
    _assert_same(ex.get_outputs(), b.want)


def test_run_copies_inputs_in_and_outputs_out(built):
    """run() copies the inputs into the plan's memory (converting dtype and layout as
    numpy would) and hands back outputs of the caller's own: the next run does not
    overwrite them.  A wrong shape is refused, naming the input."""
    b = built("transformer")
    ex = b.executor()
    first = ex.run(*b.inputs)
    second_inputs = [np.random.default_rng(1).standard_normal(a.shape).astype(a.dtype) for a in b.inputs]
    second = ex.run(*second_inputs)
    _assert_same(first, b.want)  # still the first request's
    assert not any(np.shares_memory(f, s) for f, s in zip(first, second))
    wider = [np.asfortranarray(a.astype(np.float64)) for a in b.inputs]  # float64, not C-ordered
    _assert_same(ex.run(*wider), b.want)
    with pytest.raises(ValueError, match=b.plan.slots[b.plan.inputs[0]].name):
        ex.run(*[a[..., :-1] for a in b.inputs])


@pytest.mark.parametrize("name", ["tiny_conv", "transformer"])
def test_inputs_read_and_outputs_written_in_place(built, name):
    # A tenant's calls read each request's inputs straight from its shared-memory arena
    # and write the outputs back there: two requests, one after the other, through the
    # same arena give the Relax VM's outputs for each.
    from mtcc.runtime import shm

    b = built(name)
    specs = lambda values: [{"name": f"t{k}", "shape": list(v.shape), "dtype": str(v.dtype)}  # noqa: E731
                            for k, v in enumerate(values)]
    arena = shm.LaneMemory(specs(b.inputs), specs(b.want))
    try:
        ins, outs = list(arena.inputs.values()), list(arena.outputs.values())
        ex = b.executor()
        ex.read_inputs_from(ins)
        second = [np.random.default_rng(1).standard_normal(a.shape).astype(a.dtype) for a in b.inputs]
        for feeds, want in ((b.inputs, b.want), (second, b.compiled.session().run(*second))):
            for dest, value in zip(ins, feeds):
                dest[...] = value
            ex.set_inputs(*ins)  # the arena itself: nothing to copy
            ex.run_range(0, len(ex))
            ex.write_outputs_to(outs)
            _assert_same([o.copy() for o in outs], want)
        ex = outs = ins = None
    finally:
        arena.close()


def _parallel_variant(func, name):
    """The same matmul scheduled differently: rows in parallel, the reduction moved
    outside the columns (each output still sums over k in the same order)."""
    from tvm import s_tir

    sch = s_tir.Schedule(func)
    i0, i1, i2, k = sch.get_loops(sch.get_sblock("matmul"))
    sch.reorder(i1, k, i2)
    sch.parallel(i1)
    return sch.mod["main"].with_attr("global_symbol", name)


def test_variants_in_one_library(built):
    """Two extra variants of one task in the same library -- a renamed copy and a
    differently scheduled copy -- chosen per task at run time, same outputs."""
    import tvm

    b = built("transformer")
    task = "matmul"  # the Q/K/V/output projections: 4 calls per layer
    fn = b.plan.tasks[task][0]
    funcs = dict(b.prim_funcs.functions_items())
    base = b.prim_funcs[fn]
    funcs[tvm.ir.GlobalVar(f"{task}__v1")] = base.with_attr("global_symbol", f"{task}__v1")
    funcs[tvm.ir.GlobalVar(f"{task}__v2")] = _parallel_variant(base, f"{task}__v2")
    lib = plan_builder.build_library(tvm.IRModule(funcs), b.target)

    ex = b.executor(lib=lib)
    n_task = sum(c.task == task for c in b.plan.calls)
    assert n_task >= 2
    for variant in ("__v1", "__v2"):
        ex.select({task: task + variant})
        assert sum(ch == task + variant for ch in ex.choice) == n_task
        _assert_same(ex.run(*b.inputs), b.want)
    # Per block: only the first half of the calls switch.
    ex.reset_choice()
    ex.select({task: f"{task}__v2"}, 0, len(ex) // 2)
    assert 0 < sum(ch == f"{task}__v2" for ch in ex.choice) < n_task
    _assert_same(ex.run(*b.inputs), b.want)
    with pytest.raises(Exception):
        ex.select({task: "no_such_function"})


def _relu_floor_variant(func, floor: float, name: str):
    """A deliberately different function with the task's signature: its Relu clamps at
    `floor` instead of 0 (max(x, 0) -> max(x, floor)); everything before the Relu is
    the same TIR, so a call to it returns max(the default's output, floor) exactly."""
    import tvm

    src, n = re.subn(r"T\.max\((.*), T\.float32\(0(?:\.0)?\)\)", rf"T.max(\1, T.float32({floor!r}))",
                     func.script())
    assert n == 1, "expected exactly one Relu in the task's function"
    return tvm.script.from_source(src).with_attr("global_symbol", name)


FLOORS = {"floor25": 0.25, "floor50": 0.5}


@pytest.fixture(scope="module")
def floored(built):
    """two_conv (one task, two calls) and a library that also holds the task's Relu-floor
    variants `<task>__floor25` and `<task>__floor50`."""
    import tvm

    b = built("two_conv")
    assert len(b.plan.tasks) == 1 and len(b.plan.calls) == 2
    (task, (base,)), = b.plan.tasks.items()
    funcs = dict(b.prim_funcs.functions_items())
    for vid, floor in FLOORS.items():
        name = f"{task}__{vid}"
        funcs[tvm.ir.GlobalVar(name)] = _relu_floor_variant(b.prim_funcs[base], floor, name)
    lib = plan_builder.build_library(tvm.IRModule(funcs), b.target)
    want = b.want[0]
    # Some outputs lie below each floor and some above: every floor changes the output.
    assert all((want < f).any() and (want > f).any() for f in FLOORS.values())
    return b, lib, task, base


def test_selected_variant_is_the_function_called(floored):
    """Variants of a real library differ on purpose: the outputs show which function each
    call ran, per call range, and that reset_choice goes back to the plan's functions."""
    b, lib, task, base = floored
    ex = b.executor(lib=lib)
    (want,) = b.want
    assert np.array_equal(ex.run(*b.inputs)[0], want)
    # Only the last call switches: its Relu floor is the variant's, the first call's is 0.
    for vid, floor in FLOORS.items():
        ex.select({task: f"{task}__{vid}"}, 1, 2)
        assert ex.choice == [base, f"{task}__{vid}"]
        assert np.array_equal(ex.run(*b.inputs)[0], np.maximum(want, np.float32(floor))), vid
    ex.reset_choice()
    assert ex.choice == [base, base]
    assert np.array_equal(ex.run(*b.inputs)[0], want)
    # Every call switches: the first layer changes too, so more than the last floor moves.
    ex.select({task: f"{task}__floor50"})
    every = ex.run(*b.inputs)[0]
    assert every.min() >= 0.5 and not np.array_equal(every, np.maximum(want, np.float32(0.5)))
    # Only the first call: the output keeps Relu's 0 floor but differs from the default.
    ex.reset_choice()
    ex.select({task: f"{task}__floor50"}, 0, 1)
    first = ex.run(*b.inputs)[0]
    assert first.min() == 0 and not np.array_equal(first, want) and not np.array_equal(first, every)
    ex.reset_choice()
    assert np.array_equal(ex.run(*b.inputs)[0], want)


def test_bundle_select_runs_the_chosen_variant(floored, tmp_path):
    """The same library in a real bundle, loaded by mtcc.load: LoadedBundle.select by
    variant id, for all calls or one block, runs that variant's function."""
    import mtcc
    from mtcc.bundle import container
    from mtcc.bundle.container import PLAN_MEMBER, SELECTOR_FORMAT, SELECTOR_MEMBER, WEIGHTS_DIR

    b, lib, task, base = floored
    (want,) = b.want
    so = tmp_path / "model.so"
    lib.export_library(str(so))
    members = {container.LIBRARY: so.read_bytes(), PLAN_MEMBER: container.canonical_json(b.plan.to_dict())}
    for name, arr in b.plan.weights.items():
        members[f"{WEIGHTS_DIR}/{name}.npy"] = container.npy_bytes(arr)
    variants = [{"id": "v0", "function": base, "latency_us": {}, "footprint": None}]
    variants += [{"id": vid, "function": f"{task}__{vid}", "latency_us": {}, "footprint": None} for vid in FLOORS]
    members[SELECTOR_MEMBER] = container.canonical_json({
        "format": SELECTOR_FORMAT, "source": "test", "cores": CORES, "reference_cell": f"{CORES}c/none",
        "tasks": [{"task": task, "calls": 2, "default": "v0", "variants": variants}]})
    blocks = [{"index": i, "start": i, "end": i + 1, "tasks": [task]} for i in range(2)]  # one call each
    manifest = container.make_manifest(
        model_name="two_conv", model_sha256=b.model.sha256, target=b.target,
        inputs=[i.as_dict() for i in b.model.inputs], outputs=[o.as_dict() for o in b.model.outputs],
        blocks=blocks, variants=[{"task": task, "default": "v0", "variants": variants}])
    path = container.write_bundle(tmp_path / "two_conv.mtcc", manifest, members)["path"]

    loaded = mtcc.load(path)
    assert np.array_equal(loaded.run(*b.inputs)[0], want)
    for vid, floor in FLOORS.items():
        loaded.select({task: vid}, block=1)
        assert loaded.chosen() == {task: ["v0", vid]}
        assert np.array_equal(loaded.run(*b.inputs)[0], np.maximum(want, np.float32(floor))), vid
    loaded.reset()
    assert loaded.chosen() == {task: ["v0"]}
    assert np.array_equal(loaded.run(*b.inputs)[0], want)
    loaded.select({task: "floor50"})
    assert loaded.chosen() == {task: ["floor50"]} and loaded.run(*b.inputs)[0].min() >= 0.5
    loaded.reset()
    assert np.array_equal(loaded.run(*b.inputs)[0], want)


def test_plan_round_trip(built, tmp_path):
    b = built("blocked_conv")
    b.plan.save(tmp_path)
    doc = json.loads((tmp_path / "plan.json").read_text())
    assert doc["format"] == call_plan.FORMAT and len(doc["calls"]) == len(b.plan.calls)
    with np.load(tmp_path / "weights.npz", allow_pickle=False) as z:  # plain arrays, no pickle
        assert set(z.files) == set(b.plan.weights)
    loaded = call_plan.Plan.load(tmp_path)
    assert loaded.to_json() == b.plan.to_json()
    _assert_same(b.executor(plan=loaded).run(*b.inputs), b.want)
    with pytest.raises(ValueError, match="format"):
        call_plan.Plan.from_dict({**doc, "format": "mtcc-plan/999"})


def test_bad_inputs_and_unsupported_main(built):
    from tvm import relax

    b = built("tiny_conv")
    ex = b.executor()
    with pytest.raises(ValueError, match="inputs expected"):
        ex.run()
    with pytest.raises(ValueError, match="must be"):
        ex.run(np.zeros((1, 3, 8, 8), np.float32))

    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((4,), "float32"))
    with bb.function("main", [x]):
        y = bb.emit(relax.call_dps_packed("my_packed", [x], relax.TensorType((4,), "float32")))
        bb.emit_func_output(y)
    with pytest.raises(ValueError, match="call plan: unsupported"):
        plan_builder.make_plan(bb.get())

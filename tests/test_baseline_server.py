"""BaselineServer: ONNX Runtime / OpenVINO serving several models in worker processes,
with mtcc.Server's submit interface, so the benchmark's load generator drives it too.

Tiny models keep each test to a few seconds: most of a server's start is the workers
importing their runtime.
"""
from __future__ import annotations

import importlib.util
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from mtcc import frontend
from mtcc.bench import baseline_server, baselines
from mtcc.bench.baseline_server import BaselineServer, pinned_core_sets
from mtcc.bench.load import drive, poisson_arrivals
from mtcc.errors import BadInput, MtccError
from mtcc.runtime.server import QueueFull, TenantFailed
from onnx_factory import save, tiny_conv

HAS_OPENVINO = importlib.util.find_spec("openvino") is not None
WORKER_MODULE = b"mtcc.bench.baseline_server"


def two_outputs() -> onnx.ModelProto:
    """Two inputs (one int64) and two outputs of different shapes: catches outputs
    returned in the wrong order or under the wrong name, and integer inputs."""
    rng = np.random.default_rng(3)
    weight = numpy_helper.from_array(rng.normal(0, 0.5, (16, 8)).astype(np.float32), "weight")
    nodes = [helper.make_node("MatMul", ["x", "weight"], ["product"]),
             helper.make_node("Cast", ["shift"], ["shift_f"], to=TensorProto.FLOAT),
             helper.make_node("Add", ["product", "shift_f"], ["logits"]),
             helper.make_node("ReduceMean", ["x"], ["pooled"], axes=[1], keepdims=1)]
    graph = helper.make_graph(
        nodes, "two_outputs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16]),
         helper.make_tensor_value_info("shift", TensorProto.INT64, [1, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 8]),
         helper.make_tensor_value_info("pooled", TensorProto.FLOAT, [1, 1])],
        initializer=[weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("baseline")
    return {"conv": save(tiny_conv(), root / "conv.onnx"), "pair": save(two_outputs(), root / "pair.onnx")}


@pytest.fixture(scope="module")
def reference(models) -> dict:
    """Per model: (feeds, {output name: ONNX Runtime's output, in process})."""
    out = {}
    for name, path in models.items():
        model = frontend.load(path)
        feeds = baselines.random_inputs(model, seed=1)
        got = baselines.OnnxRuntime(model).run(feeds)
        out[name] = (feeds, {o.name: value for o, value in zip(model.outputs, got)})
    return out


@pytest.fixture(scope="module")
def pinned_server(models):
    with BaselineServer(models, "onnxruntime", "pinned") as server:
        yield server


def _worker_pids() -> set[int]:
    """Worker processes of this test process, found by their command line."""
    out = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if WORKER_MODULE in (proc / "cmdline").read_bytes():
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if ppid == os.getpid():
                    out.add(int(proc.name))
        except (OSError, ValueError, IndexError):
            pass
    return out


def _check_outputs(server, reference, rtol=1e-5, atol_scale=1e-6) -> None:
    """Several requests of every model in flight at once; each equals the reference."""
    futures = [(name, server.submit(name, feeds)) for _ in range(3) for name, (feeds, _) in reference.items()]
    for name, future in futures:
        got = future.result(timeout=60)
        want = reference[name][1]
        assert list(got) == list(want)
        for key, value in want.items():
            assert got[key].shape == value.shape and got[key].dtype == value.dtype
            np.testing.assert_allclose(got[key], value, rtol=rtol, atol=atol_scale * float(np.abs(value).max() or 1.0))
        assert future.latency_ms > 0


def test_pinned_core_sets_are_even_and_disjoint():
    assert pinned_core_sets([0, 1, 2, 3, 4], 2) == [[0, 1, 2], [3, 4]]
    assert pinned_core_sets([4, 5, 6, 7], 4) == [[4], [5], [6], [7]]
    assert pinned_core_sets([0, 1], 3) == [[0], [1], [0]]  # fewer cores than models: shared round-robin


def test_onnxruntime_pinned_gives_onnxruntime_outputs_on_disjoint_cores(pinned_server, reference):
    server = pinned_server
    assert server.name == "onnxruntime/pinned"
    before = {name: m["requests"] for name, m in server.stats()["models"].items()}
    _check_outputs(server, reference)
    stats = server.stats()
    assert stats["system"] == "onnxruntime" and stats["layout"] == "pinned"
    sets = [set(m["cores"]) for m in stats["models"].values()]
    if len(server.cores) >= len(sets):
        assert set.union(*sets) == set(server.cores)
        assert sum(len(s) for s in sets) == len(server.cores)  # disjoint
    for name, m in stats["models"].items():
        assert m["threads"] == len(m["cores"]) and m["requests"] == before[name] + 3 and m["failed"] == 0
        assert os.sched_getaffinity(m["pid"]) == set(m["cores"])  # the process really is pinned
    # each worker froze its loaded runtime out of the collector's passes, as tenants do
    assert all(w.frozen_objects > 0 for w in server._workers.values())


def test_onnxruntime_shared_gives_onnxruntime_outputs(models, reference):
    with BaselineServer(models, "onnxruntime", "shared") as server:
        _check_outputs(server, reference)
        stats = server.stats()
    threads = max(1, len(server.cores) // len(models))
    for m in stats["models"].values():
        assert m["cores"] == server.cores and m["threads"] == threads


@pytest.mark.skipif(not HAS_OPENVINO, reason="openvino is not installed")
def test_openvino_f32_is_close_to_onnxruntime(models, reference):
    with BaselineServer(models, "openvino", "shared") as server:
        assert server.name == "openvino/shared"
        _check_outputs(server, reference, rtol=1e-4, atol_scale=1e-4)


def test_bad_input_is_refused_at_submit_naming_the_field(pinned_server, reference):
    feeds = reference["pair"][0]
    x, shift = feeds["x"], feeds["shift"]
    cases = [(("nope", feeds), "no model 'nope'"),
             (("pair", {"x": x}), "missing input 'shift'"),
             (("pair", {**feeds, "extra": x}), "unexpected input 'extra'"),
             (("pair", {"x": x[:, :8], "shift": shift}), "input 'x' is float32[1, 8]"),
             (("pair", {"x": x, "shift": shift.astype(np.int32)}), "input 'shift' is int32")]
    for args, message in cases:
        with pytest.raises(BadInput) as info:
            pinned_server.submit(*args)
        assert message in str(info.value) and "\n" not in str(info.value)


def test_submit_beyond_max_queue_raises_queue_full(models, reference):
    feeds = reference["conv"][0]
    with BaselineServer(models, "onnxruntime", "pinned", max_queue=1) as server:
        pid = server.stats()["models"]["conv"]["pid"]
        os.kill(pid, signal.SIGSTOP)  # the worker holds its request: the queue cannot drain
        try:
            running = server.submit("conv", feeds)
            waiting = server.submit("conv", feeds)
            with pytest.raises(QueueFull, match="queue of 'conv' is full"):
                server.submit("conv", feeds)
            server.submit("pair", reference["pair"][0]).result(timeout=30)  # other models are not held up
        finally:
            os.kill(pid, signal.SIGCONT)
        for future in (running, waiting):
            np.testing.assert_array_equal(future.result(timeout=30)["y"], reference["conv"][1]["y"])


def test_close_ends_the_pipe_readers_before_it_frees_their_descriptors(models, reference, monkeypatch):
    """A reader thread still running when close() frees its pipe's descriptor would read
    the next socket to take that number (in CI a closed server's reader took bytes from
    the next server's pipe: its worker died at start).  A slow reply handler keeps the
    reader busy across close(); close() must wait for it, and no reader may outlive it."""
    handle_reply = BaselineServer._on_reply

    def slow_reply(self, worker, msg):
        handle_reply(self, worker, msg)
        time.sleep(0.5)  # the reader is here when close() starts

    monkeypatch.setattr(BaselineServer, "_on_reply", slow_reply)
    before = set(threading.enumerate())
    server = BaselineServer(models, "onnxruntime", "pinned")
    readers = [t for t in set(threading.enumerate()) - before if t.name.startswith("mtcc-baseline-")]
    assert len(readers) == len(models)
    server.submit("conv", reference["conv"][0]).result(timeout=30)
    server.close()
    assert [t.name for t in readers if t.is_alive()] == []


def test_killed_worker_fails_its_request_and_close_leaves_no_process(models, reference):
    server = BaselineServer(models, "onnxruntime", "pinned")
    pids = {name: m["pid"] for name, m in server.stats()["models"].items()}
    assert _worker_pids() >= set(pids.values())
    segment = server._workers["conv"].memory.name  # noqa: SLF001 - to check it is freed
    os.kill(pids["conv"], signal.SIGSTOP)  # so the request is surely in flight when the worker dies
    in_flight = server.submit("conv", reference["conv"][0])
    queued = server.submit("conv", reference["conv"][0])
    os.kill(pids["conv"], signal.SIGKILL)
    with pytest.raises(TenantFailed, match=r"conv: .*SIGKILL while serving the request"):
        in_flight.result(timeout=30)
    with pytest.raises(TenantFailed, match="conv: .*before the request ran"):
        queued.result(timeout=30)
    with pytest.raises(TenantFailed, match="conv"):
        server.submit("conv", reference["conv"][0])
    assert server.submit("pair", reference["pair"][0]).result(timeout=30)  # the other model still serves
    assert server.stats()["models"]["conv"]["failed"] == 2
    server.close()
    server.close()  # twice is fine
    assert not _worker_pids() & set(pids.values())
    assert not Path("/dev/shm", segment).exists()
    with pytest.raises(MtccError, match="closed"):
        server.submit("pair", reference["pair"][0])


def test_close_fails_unfinished_requests(models, reference, monkeypatch):
    monkeypatch.setattr(baseline_server, "STOP_WAIT_S", 0.5)  # a stopped worker ignores "stop": killed sooner
    server = BaselineServer(models, "onnxruntime", "shared")
    pids = {m["pid"] for m in server.stats()["models"].values()}
    os.kill(server.stats()["models"]["conv"]["pid"], signal.SIGSTOP)  # requests stay unfinished
    futures = [server.submit("conv", reference["conv"][0]) for _ in range(3)]
    server.close()  # kills the stopped worker, which ignores "stop"
    for future in futures:
        with pytest.raises(MtccError, match="closed before the request finished"):
            future.result(timeout=30)
    assert not _worker_pids() & pids


def test_worker_that_cannot_start_is_reported_naming_the_model(models, monkeypatch):
    real_load = frontend.load

    def wrong_dtype(path, **options):  # the worker's warm-up then feeds float64 to a float32 model
        model = real_load(path, **options)
        model.inputs = [frontend.TensorInfo(i.name, i.shape, "float64") for i in model.inputs]
        return model

    monkeypatch.setattr(frontend, "load", wrong_dtype)
    before = _worker_pids()
    with pytest.raises(TenantFailed, match=r"worker of conv failed to start \(.*float") as info:
        BaselineServer({"conv": models["conv"]}, "onnxruntime", "pinned")
    assert "\n" not in str(info.value)
    assert not _worker_pids() - before


def test_refuses_unknown_system_layout_and_cores(models):
    with pytest.raises(BadInput, match="system 'tvm'"):
        BaselineServer(models, "tvm", "pinned")
    with pytest.raises(BadInput, match="layout 'spread'"):
        BaselineServer(models, "onnxruntime", "spread")
    with pytest.raises(BadInput, match="cores"):
        BaselineServer(models, "onnxruntime", "pinned", cores=[max(os.sched_getaffinity(0)) + 1])


def test_drive_serves_a_poisson_load(pinned_server, reference):
    arrivals = poisson_arrivals({"conv": 40.0, "pair": 40.0}, duration_s=0.5, seed=0)
    feeds = {name: value[0] for name, value in reference.items()}
    result = drive(pinned_server, arrivals, feeds, timeout_s=60)
    assert result["sent"] == len(arrivals) > 0 and result["refused"] == 0
    for request in result["requests"]:
        assert request["error"] is None and request["latency_ms"] > 0

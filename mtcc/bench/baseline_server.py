"""ONNX Runtime and OpenVINO serving several models at once, set up the way a careful
user would, so `mtcc bench` can put the same Poisson load on them and on `mtcc.Server`.

    with BaselineServer({"sq": "squeezenet.onnx", "tf": "transformer.onnx"},
                        system="onnxruntime", layout="pinned") as server:
        future = server.submit("sq", {"data_0": x})   # same interface as mtcc.Server
        outputs = future.result()                     # {output name: ndarray}
        future.latency_ms                             # submit -> outputs written by the worker

Without mtcc the usual way to share a CPU server between models is one process per
model with a fixed slice of the cores ("pinned") or every process on every core with
its thread count capped ("shared"); these are the two layouts here.  One process per
model (not one thread) so that each runtime's thread pool, allocator and pinning
behave as in production, and a crash stays inside one model.  The process plumbing
follows mtcc/runtime/server.py and tenant.py: `python -c` over a socket pair, the
spec in an environment variable, tensors through one shared-memory segment per worker
(runtime/shm.py), so neither side pays for pickling them.
"""
from __future__ import annotations

import atexit
import collections
import itertools
import json
import os
import signal
import threading
import time
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BadInput, EnvironmentProblem, MtccError
from ..lifeline import close_pipe
from ..runtime.server import DEFAULT_MAX_QUEUE, START_TIMEOUT_S, QueueFull, TenantFailed

SYSTEMS = ("onnxruntime", "openvino", "openvino-default")
LAYOUTS = ("pinned", "shared")
WORKER_ENV = "MTCC_BASELINE_WORKER"
WARMUP_RUNS = 3          # first runs are slow (allocations, page faults, pools starting)
STOP_WAIT_S = 5.0        # how long close() lets a worker exit before killing it


def pinned_core_sets(cores: list[int], count: int) -> list[list[int]]:
    """`count` disjoint, contiguous slices of `cores`, sizes differing by at most one
    (the first ones get the extra core).  With fewer cores than `count`, slices of one
    core each, handed out round-robin: models then share cores."""
    cores = list(cores)
    if len(cores) < count:
        return [[cores[k % len(cores)]] for k in range(count)]
    size, extra = divmod(len(cores), count)
    sets, start = [], 0
    for k in range(count):
        end = start + size + (1 if k < extra else 0)
        sets.append(cores[start:end])
        start = end
    return sets


@dataclass
class _Request:
    id: int
    arrays: list          # inputs in the model's input order, until copied into shared memory
    future: Future
    submitted: float      # time.monotonic() at submit


@dataclass
class _Worker:
    """One model's process, its queue and its shared-memory segment (parent side)."""

    name: str
    path: Path
    inputs: list[dict]    # [{"name", "shape", "dtype"}] as mtcc's frontend reads them
    cores: list[int]
    threads: int
    queue: collections.deque = field(default_factory=collections.deque)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ready: threading.Event = field(default_factory=threading.Event)
    process: object = None
    conn: object = None
    reader: threading.Thread | None = None  # the thread reading conn (lifeline.close_pipe joins it)
    memory: object = None          # shm.LaneMemory, created once the worker reports its outputs
    outputs: list[dict] | None = None
    in_flight: _Request | None = None
    failure: str | None = None     # why it cannot serve (start failed, process died)
    frozen_objects: int = 0        # its start-up heap, out of the collector's passes (runtime/heap.py)
    served: int = 0
    failed: int = 0

    def __post_init__(self):
        from ..runtime.loader import FeedChecker

        self.check_feeds = FeedChecker(self.inputs)  # as mtcc.Server checks its requests


def check_installed(system: str) -> None:
    """EnvironmentProblem naming the package when a baseline's runtime is missing (the
    bench asks before it starts anything)."""
    import importlib.util

    package = "openvino" if system.startswith("openvino") else system
    if importlib.util.find_spec(package) is None:
        raise EnvironmentProblem(f"{system}: {package} is not installed (pip install {package}), "
                                 "or leave this baseline out")


class BaselineServer:
    """ONNX Runtime / OpenVINO serving several models on a set of cores, one worker
    process per model, each running one request at a time from its model's FIFO queue.

    `models`: {name: .onnx path} (input shapes must be fixed, as for mtcc); `system`:
    "onnxruntime", "openvino" (f32, like for like) or "openvino-default" (the plugin's
    default precision, e.g. bf16 on AMX CPUs); `cores`: core ids (default: every core
    this process may use).

    `layout` "pinned": the cores are split into disjoint contiguous sets, one per model,
    as even as possible; each worker is pinned (sched_setaffinity) to its set and runs
    as many intra-op threads as the set has cores (ORT intra_op=n, inter_op=1;
    OpenVINO INFERENCE_NUM_THREADS=n, NUM_STREAMS=1, PERFORMANCE_HINT=LATENCY, its own
    thread pinning left on: it stays inside the process's set).  With fewer cores than
    models, each model gets one core, round-robin, so some models share a core.

    `layout` "shared": every worker may use all the cores, with max(1, cores // models)
    threads so the threads add up to about the cores.  OpenVINO gets the same LATENCY
    settings as in "pinned" but with ENABLE_CPU_PINNING off: with pinning on, every
    process pins its threads to the same first cores of the shared set (a known
    OpenVINO issue with several processes).  Its THROUGHPUT hint is not used: streams
    pay off only with several requests in flight, and a worker here runs one at a time
    (like every other system), so streams would only split one request's threads.
    """

    def __init__(self, models: dict, system: str, layout: str, cores: list[int] | None = None,
                 max_queue: int = DEFAULT_MAX_QUEUE, start_timeout: float = START_TIMEOUT_S):
        if system not in SYSTEMS:
            raise BadInput(f"system {system!r}: choose one of {', '.join(SYSTEMS)}")
        if layout not in LAYOUTS:
            raise BadInput(f"layout {layout!r}: choose one of {', '.join(LAYOUTS)}")
        if not models:
            raise BadInput("no models to serve")
        if max_queue < 1:
            raise BadInput("max_queue must be at least 1")
        allowed = sorted(os.sched_getaffinity(0))
        self.cores = sorted(int(c) for c in (cores if cores is not None else allowed))
        if not self.cores or any(c not in allowed for c in self.cores):
            raise BadInput(f"cores {self.cores}: this process may use {allowed}")
        check_installed(system)
        self.system, self.layout, self.max_queue = system, layout, max_queue
        self._workers: dict[str, _Worker] = {}
        self._ids = itertools.count()
        self._closed = False
        self._close_lock = threading.Lock()

        from .. import frontend

        if layout == "pinned":
            core_sets = pinned_core_sets(self.cores, len(models))
        else:
            core_sets = [self.cores] * len(models)
        for (name, path), worker_cores in zip(models.items(), core_sets):
            model = frontend.load(path, for_tvm=False)  # BadInput for a missing file or a dynamic input shape
            threads = len(worker_cores) if layout == "pinned" else max(1, len(self.cores) // len(models))
            self._workers[str(name)] = _Worker(str(name), Path(path), [i.as_dict() for i in model.inputs],
                                               list(worker_cores), threads)
        try:
            for worker in self._workers.values():  # all at once: loading is most of the start-up
                self._start_worker(worker)
            for worker in self._workers.values():
                self._wait_ready(worker, start_timeout)
        except BaseException:
            self._closed = True  # the readers of stopped workers report nothing
            self._shutdown()
            raise
        atexit.register(self.close)

    @property
    def name(self) -> str:
        """A label for tables, e.g. "onnxruntime/pinned"."""
        return f"{self.system}/{self.layout}"

    # -- set-up ---------------------------------------------------------------------------
    def _start_worker(self, worker: _Worker) -> None:
        """A worker process: `python -c` with a socket as its pipe (as the server starts
        tenants), not multiprocessing's spawn, which would re-import the user's script."""
        import socket
        import subprocess
        import sys
        from multiprocessing.connection import Connection

        from ..lifeline import pdeathsig_usable

        ours, theirs = socket.socketpair()
        spec = {"model": str(worker.path), "name": worker.name, "system": self.system,
                "threads": worker.threads, "inputs": worker.inputs, "fd": theirs.fileno(),
                "parent": os.getpid(), "pdeathsig": pdeathsig_usable(),
                # Several processes on one set of cores: OpenVINO's own pinning would put them
                # all on the same first cores (see the class doc).
                "openvino_config": {"ENABLE_CPU_PINNING": False} if self.layout == "shared" else {}}
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, WORKER_ENV: json.dumps(spec),
               # ORT and OpenVINO size their own pools; an OpenMP build of either would read this.
               "OMP_NUM_THREADS": str(worker.threads),
               # numpy only copies tensors in the worker: no BLAS pool competing for the cores.
               "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "PYTHONPATH": root + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")}
        cores = set(worker.cores)
        worker.process = subprocess.Popen(
            [sys.executable, "-c", "from mtcc.bench.baseline_server import worker_main; worker_main()"],
            pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL,
            preexec_fn=lambda: os.sched_setaffinity(0, cores))  # before the runtime sizes its pools
        theirs.close()
        worker.conn = Connection(ours.detach())
        worker.reader = threading.Thread(target=self._read, args=(worker,), daemon=True,
                                         name=f"mtcc-baseline-{worker.name}")
        worker.reader.start()

    def _wait_ready(self, worker: _Worker, timeout: float) -> None:
        from ..runtime import shm

        if not worker.ready.wait(timeout):
            raise TenantFailed(f"{worker.path}: {self.system} worker of {worker.name} not ready after {timeout:.0f} s")
        if worker.failure:
            raise TenantFailed(f"{worker.path}: {self.system} worker of {worker.name} failed to start "
                               f"({worker.failure})")
        # The output shapes come from the worker's warm-up run: ONNX shape inference may
        # leave some unknown, the runtime never does.
        worker.memory = shm.LaneMemory(worker.inputs, worker.outputs)
        worker.conn.send({"op": "attach", "memory": worker.memory.name})

    # -- the API ----------------------------------------------------------------------------
    def submit(self, model: str, inputs: dict) -> Future:
        """Queue one inference; the future resolves to {output name: ndarray} and carries
        `latency_ms` (submit -> the worker's outputs written).  Refused at once: BadInput on
        an unknown model or a missing, extra or mis-shaped input; QueueFull when the
        model's queue holds max_queue waiting requests; TenantFailed when its worker died."""
        if self._closed:
            raise MtccError("the baseline server is closed")
        worker = self._workers.get(model)
        if worker is None:
            raise BadInput(f"submit: no model {model!r} (models: {', '.join(self._workers)})")
        arrays = worker.check_feeds(inputs, f"submit {model}")
        request = _Request(next(self._ids), arrays, Future(), time.monotonic())
        with worker.lock:
            if self._closed:
                raise MtccError("the baseline server is closed")
            if worker.failure:
                raise TenantFailed(f"{model}: {worker.failure}")
            if len(worker.queue) >= self.max_queue:
                raise QueueFull(f"submit: the queue of {model!r} is full ({self.max_queue} requests waiting); "
                                "retry later or raise max_queue")
            worker.queue.append(request)
            self._dispatch(worker)
        return request.future

    def stats(self) -> dict:
        """The set-up and, per model: cores, threads, requests served, failed, worker pid."""
        return {"system": self.system, "layout": self.layout, "cores": self.cores,
                "models": {w.name: {"cores": list(w.cores), "threads": w.threads, "requests": w.served,
                                    "failed": w.failed, "pid": w.process.pid if w.process else None}
                           for w in self._workers.values()}}

    def close(self) -> None:
        """Stop every worker, fail what is unfinished, free the shared memory.  Safe to
        call twice; also runs at exit and on leaving `with`."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._shutdown()
        atexit.unregister(self.close)

    def __enter__(self) -> "BaselineServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- requests -----------------------------------------------------------------------------
    def _dispatch(self, worker: _Worker) -> None:
        """Under worker.lock: start the next queued request if the worker is idle."""
        if worker.in_flight is not None or not worker.queue or worker.memory is None or worker.failure:
            return
        request = worker.queue.popleft()
        for spec, array in zip(worker.inputs, request.arrays):
            worker.memory.inputs[spec["name"]][...] = array
        request.arrays = None
        worker.in_flight = request
        try:
            worker.conn.send({"op": "run", "id": request.id})
        except (OSError, ValueError):
            pass  # the worker is gone: its reader thread fails the request

    def _read(self, worker: _Worker) -> None:
        """The worker's pipe: ready / failed while starting, then one reply per request;
        its end means the process died (or was stopped)."""
        while True:
            try:
                msg = worker.conn.recv()
            except (EOFError, OSError):
                self._on_death(worker)
                return
            op = msg.get("op")
            if op == "ready":
                worker.outputs = msg["outputs"]
                worker.frozen_objects = msg.get("frozen_objects", 0)
                worker.ready.set()
            elif op == "failed":
                worker.failure = msg.get("error", "failed")
                worker.ready.set()
            elif op in ("done", "error"):
                self._on_reply(worker, msg)

    def _on_reply(self, worker: _Worker, msg: dict) -> None:
        import numpy as np

        received = time.monotonic()
        request = worker.in_flight
        if request is None or request.id != msg["id"]:
            return
        outputs = None
        if msg["op"] == "done":  # copied out before the next request may overwrite them
            outputs = {name: np.array(view) for name, view in worker.memory.outputs.items()}
        with worker.lock:
            worker.in_flight = None
            if outputs is None:
                worker.failed += 1
            else:
                worker.served += 1
            self._dispatch(worker)
        if outputs is None:
            _complete(request.future, error=MtccError(
                f"{worker.name}: inference failed in the {self.system} worker ({msg.get('error')})"))
        else:
            # Ends when the worker's outputs are written, as mtcc.Server's latency does
            # (CLOCK_MONOTONIC is one clock for every process), so neither counts the pipe back.
            request.future.latency_ms = (msg.get("t_end", received) - request.submitted) * 1e3
            _complete(request.future, result=outputs)

    def _on_death(self, worker: _Worker) -> None:
        process = worker.process
        try:
            process.wait(STOP_WAIT_S)
        except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired: reported as still running
            pass
        code = process.returncode
        how = (f"killed by {signal.Signals(-code).name}" if code is not None and code < 0
               else f"exited with code {code}")
        with worker.lock:
            if worker.outputs is None:  # died while starting: the constructor reports it
                worker.failure = worker.failure or f"the worker process {how} while starting"
                worker.ready.set()
                return
            if self._closed:  # close() fails what is left, with its own message
                return
            worker.failure = f"{self.system} worker process {process.pid} {how}"
            in_flight, queued = worker.in_flight, list(worker.queue)
            worker.failed += len(queued) + (in_flight is not None)
            worker.in_flight = None
            worker.queue.clear()
        if in_flight is not None:
            _complete(in_flight.future, error=TenantFailed(f"{worker.name}: {worker.failure} while serving the request"))
        for request in queued:
            _complete(request.future, error=TenantFailed(f"{worker.name}: {worker.failure} before the request ran"))

    def _shutdown(self) -> None:
        for worker in self._workers.values():
            if worker.conn is not None:
                try:
                    worker.conn.send({"op": "stop"})
                except (OSError, ValueError):
                    pass
        deadline = time.monotonic() + STOP_WAIT_S
        for worker in self._workers.values():
            if worker.process is not None:
                try:
                    worker.process.wait(max(0.1, deadline - time.monotonic()))
                except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired: not gone in time
                    worker.process.kill()
                    worker.process.wait(STOP_WAIT_S)
            with worker.lock:
                unfinished = ([worker.in_flight] if worker.in_flight else []) + list(worker.queue)
                worker.in_flight = None
                worker.queue.clear()
            for request in unfinished:
                _complete(request.future,
                          error=MtccError(f"{worker.name}: the baseline server closed before the request finished"))
            if worker.memory is not None:
                worker.memory.close()
                worker.memory = None
            close_pipe(worker.conn, worker.reader)


def _complete(future: Future, result=None, error: Exception | None = None) -> None:
    """Settle a future unless its caller cancelled it: a reader thread must not die of
    InvalidStateError and leave the rest of its worker's requests hanging."""
    if future.done():
        return
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except InvalidStateError:  # cancelled between the check and now
        pass


# -- the worker process ---------------------------------------------------------------------
@dataclass
class _OnnxModel:
    """What baselines.OnnxRuntime / OpenVino and random_inputs read from a model."""

    proto: object
    inputs: list


def _make_runner(spec: dict, model: _OnnxModel):
    from .baselines import OnnxRuntime, OpenVino

    if spec["system"] == "onnxruntime":
        return OnnxRuntime(model, spec["threads"])
    precision = "f32" if spec["system"] == "openvino" else None
    return OpenVino(model, spec["threads"], precision=precision, config=spec.get("openvino_config"))


def _serve(conn, spec: dict) -> None:
    import numpy as np
    import onnx

    from ..frontend.onnx_import import TensorInfo
    from ..runtime import shm
    from ..runtime.heap import freeze_startup_heap
    from .baselines import random_inputs

    inputs = [TensorInfo(i["name"], tuple(i["shape"]), i["dtype"]) for i in spec["inputs"]]
    model = _OnnxModel(onnx.load(spec["model"]), inputs)
    runner = _make_runner(spec, model)
    output_names = [o.name for o in model.proto.graph.output]  # both runtimes return them in this order
    feeds = random_inputs(model, seed=0)
    for _ in range(WARMUP_RUNS):
        results = runner.run(feeds)
    output_specs = [{"name": name, "shape": list(np.shape(value)), "dtype": str(np.asarray(value).dtype)}
                    for name, value in zip(output_names, results)]
    # as a tenant does (runtime/heap.py): no full collection of the loaded runtime mid-request
    conn.send({"op": "ready", "pid": os.getpid(), "outputs": output_specs, "frozen_objects": freeze_startup_heap()})
    memory = None
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        op = msg.get("op")
        if op == "stop":
            return
        if op == "attach":
            memory = shm.LaneMemory(spec["inputs"], output_specs, name=msg["memory"])
            continue
        try:
            results = runner.run({name: memory.inputs[name] for name in memory.inputs})
            for name, value in zip(output_names, results):
                memory.outputs[name][...] = value
            reply = {"op": "done", "id": msg["id"], "t_end": time.monotonic()}
        except Exception as e:  # noqa: BLE001 - one request's failure, not the worker's
            reply = {"op": "error", "id": msg.get("id"), "error": _one_line(e)}
        conn.send(reply)


def _one_line(error: Exception) -> str:
    """The exception's type and first line: mtcc's messages are one line each."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"


def worker_main() -> None:
    """Entry point of a worker process (`python -c`, started by BaselineServer): the spec
    in MTCC_BASELINE_WORKER, the pipe on the socket whose descriptor the spec names."""
    from multiprocessing.connection import Connection

    from ..lifeline import die_with_parent

    spec = json.loads(os.environ[WORKER_ENV])
    die_with_parent(spec["parent"], spec.get("pdeathsig", False))
    conn = Connection(spec["fd"])
    try:
        _serve(conn, spec)
    except Exception as e:  # noqa: BLE001 - the parent reports it, naming the model
        try:
            conn.send({"op": "failed", "error": _one_line(e)})
        except (OSError, EOFError):
            pass
    finally:
        os._exit(0)  # skip interpreter teardown with runtime thread pools still around

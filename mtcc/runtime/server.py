"""`mtcc.Server`: several bundles served on one CPU server, cores granted per
scheduling unit, variants picked per block.

    with mtcc.Server({"sq": "sq.mtcc", "tf": "tf.mtcc"}, cores=[0, 1],
                     policy="block-adaptive", qos_ms={"sq": 20}) as server:
        future = server.submit("sq", {"data_0": x})   # refused at once on bad input
        outputs = future.result()                     # {output name: ndarray}
        server.stats()                                # per model: p50/p99, within QoS, conflicts

Every decision is one scheduling step taken under one lock by whichever thread brings
the event (a submission, a lane's reply on its own pipe, a tenant's death): there is
no scheduler thread to hand off to, which saves a thread wake-up per unit.  Tenants are processes (tenant.py);
tensors travel through shared memory (shm.py); a unit's stop points cost the tenant a
shared-memory read, and the scheduler's round trip happens only where a request's
core demand changes or when someone waits for its cores.
"""
from __future__ import annotations

import atexit
import collections
import itertools
import os
import queue
import signal
import statistics
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BadInput, MtccError
from ..lifeline import close_pipe
from ..threads import tenant_thread_env
from . import shm
from .cores import CoreAllocator
from .loader import FeedChecker
from .placement import lane_core, pin_sleeping
from .policies import Pending, make_policy
from .profile import ModelProfile
from .scheduler import Waiting, default_lanes, must_yield, schedule, waiting_of

DEFAULT_QOS_FACTOR = 2.0       # default target: 2x the isolated latency on all the server's cores
DEFAULT_MAX_QUEUE = 64         # requests waiting per model before submit refuses
START_TIMEOUT_S = 300.0
HISTORY = 100_000              # samples of each kind kept per model for stats() (latencies, blocks, ...)
KEPT = ("latencies_ms", "boundary_us", "grant_us", "round_trip_us", "to_tenant_us", "to_server_us", "block_us",
        "segments")                # the Model fields that hold them


class QueueFull(MtccError):
    """A model's queue is at its bound: the request is refused, not buffered."""

    exit_code = 1


class TenantFailed(MtccError):
    """The tenant process serving a request died or could not start."""

    exit_code = 3


@dataclass
class Request:
    id: int
    model: str
    pending: Pending
    future: Future
    lane: int | None = None
    running: bool = False
    yield_asked: bool = False
    started: float | None = None
    units: int = 0
    conflicts: int = 0
    segments: list = field(default_factory=list)
    grants: list = field(default_factory=list)    # (first call, end call, cores) of each unit run
    arrays: list | None = None      # the inputs until they are in a lane's arena
    sent: float = 0.0               # when its current unit was sent to the tenant
    pin_us: float = 0.0             # pinning its lane thread for the current unit (part of the grant)
    # where its time went, in seconds (summed over its units): see Server.submit's future
    spent: dict = field(default_factory=lambda: dict.fromkeys(("to_first_unit", "to_tenant", "in_tenant", "to_server"), 0.0))


@dataclass
class Lane:
    memory: shm.LaneMemory
    request: Request | None = None


class Model:
    """One bundle on the server: its profile, tenant process, lanes, queue, results."""

    def __init__(self, name: str, path: Path, lanes: int, max_queue: int):
        self.name, self.path, self.max_queue = name, path, max_queue
        self.profile = ModelProfile.from_bundle(path)
        self.check_feeds = FeedChecker(self.profile.inputs)
        self.lanes = [Lane(shm.LaneMemory(self.profile.inputs, self.profile.outputs)) for _ in range(lanes)]
        self.queue: collections.deque[Request] = collections.deque()
        self.process = None
        self.conn = None                 # control pipe (ready, failed, stop)
        self.lane_conns: list = []       # one pipe per lane (units and their replies)
        self.readers: list = []          # the threads reading conn, then each lane's (lifeline.close_pipe)
        self.lane_tids: list[int] = []   # each lane's thread in the tenant, and the core this
        self.lane_pins: dict[int, int] = {}  # process pinned it to (placement.pin_sleeping)
        self.ready = threading.Event()
        self.timed: queue.Queue = queue.Queue()
        self.failure: str | None = None
        self.restarts = 0
        self.frozen_objects = 0          # the tenant's start-up heap, out of the collector's passes (heap.py)
        self.scale = 1.0                 # measured / table latency on this machine (warm-up)
        self.isolated_ms: float | None = None      # alone, on all the server's cores
        self.isolated_by_cores: dict[int, float] = {}
        self.after_pause_ms: float | None = None  # alone on all cores, after an idle pause
        self.qos_ms: float | None = None
        # A server runs for days: what it keeps to report medians and percentiles is the
        # last HISTORY samples of each kind; the counts are kept whole.
        self.latencies_ms: collections.deque = collections.deque(maxlen=HISTORY)
        self.completed = 0
        self.within = 0
        self.failed = 0
        self.units = 0
        self.conflicts = 0
        self.boundaries = 0
        self.boundary_us: collections.deque = collections.deque(maxlen=HISTORY)
        self.grant_us: collections.deque = collections.deque(maxlen=HISTORY)
        self.round_trip_us: collections.deque = collections.deque(maxlen=HISTORY)   # unit sent -> started in the tenant, + finished -> seen here
        self.to_tenant_us: collections.deque = collections.deque(maxlen=HISTORY)    # first half, of units that continue a request
        self.to_server_us: collections.deque = collections.deque(maxlen=HISTORY)    # second half, of units after which the request goes on
        self.block_us: collections.deque = collections.deque(maxlen=HISTORY)
        # (start call, end call, µs, level, {task: non-default variant id} | None, slowdown estimate)
        self.segments: collections.deque = collections.deque(maxlen=HISTORY)


class Server:
    """See the module doc.  `bundles`: {name: path} or [path, ...] (named after each
    bundle's model); `cores`: core ids (default: every core this process may use);
    `policy`: model-fcfs | model-edf | layer | block | block-adaptive; `qos_ms`:
    {name: target ms} (default DEFAULT_QOS_FACTOR x the isolated latency on all cores,
    measured at start); `lanes`: requests of one model that may run at once (default:
    scheduler.default_lanes, the cores shared out among the models)."""

    def __init__(self, bundles, cores=None, policy: str = "block-adaptive", qos_ms=None, *,
                 lanes: int | None = None, max_queue: int = DEFAULT_MAX_QUEUE, qos_factor: float = DEFAULT_QOS_FACTOR,
                 start_timeout: float = START_TIMEOUT_S):
        self.policy = make_policy(policy)
        allowed = sorted(os.sched_getaffinity(0))
        self.cores = sorted(int(c) for c in (cores if cores is not None else allowed))
        if not self.cores or any(c not in allowed for c in self.cores):
            raise BadInput(f"cores {self.cores}: this process may use {allowed}")
        named = self._named(bundles)
        if lanes is None:
            lanes = default_lanes(len(self.cores), len(named))
        if lanes < 1 or max_queue < 1:
            raise BadInput("lanes and max_queue must be at least 1")
        self.lanes = lanes
        self.allocator = CoreAllocator(self.cores)
        self.models: dict[str, Model] = {}
        self._ids = itertools.count()
        self._closed = False
        # One lock for every scheduling decision, taken by whichever thread brings an event
        # (a submit, a tenant's reply, a death): no scheduler thread to hand off to.
        self._lock = threading.RLock()
        self._completions: list = []     # futures to complete once the lock is released
        self.started = time.monotonic()
        try:
            for name, path in named.items():
                self.models[name] = Model(name, path, lanes, max_queue)
            for model in self.models.values():
                self._start_tenant(model)
            for model in self.models.values():
                self._wait_ready(model, start_timeout)
            for model in self.models.values():  # one at a time: isolated means alone
                self._measure_isolated(model, start_timeout)
                target = (qos_ms or {}).get(model.name)
                model.qos_ms = float(target) if target else qos_factor * model.isolated_ms
            self.policy.set_targets({n: m.qos_ms for n, m in self.models.items()})
            unknown = set(qos_ms or {}) - set(self.models)
            if unknown:
                raise BadInput(f"qos_ms: no model named {', '.join(sorted(unknown))} (models: {', '.join(self.models)})")
        except BaseException:
            self._shutdown()
            raise
        atexit.register(self.close)
        self._previous_sigterm = None
        if threading.current_thread() is threading.main_thread():
            self._previous_sigterm = signal.getsignal(signal.SIGTERM)
            signal.signal(signal.SIGTERM, self._on_sigterm)

    # -- set-up -------------------------------------------------------------------------
    @staticmethod
    def _named(bundles) -> dict[str, Path]:
        if isinstance(bundles, (str, os.PathLike)):
            bundles = [bundles]
        if isinstance(bundles, dict):
            named = {str(k): Path(v) for k, v in bundles.items()}
        else:
            named = {}
            for path in map(Path, bundles):
                name = ModelProfile.from_bundle(path).name
                if name in named:
                    raise BadInput(f"{path}: two bundles of model {name!r}; name them with a dict")
                named[name] = path
        if not named:
            raise BadInput("no bundles to serve")
        for name, path in named.items():
            if not path.is_file():
                raise BadInput(f"{path}: no such bundle (model {name!r})")
        return named

    def _start_tenant(self, model: Model) -> None:
        """A tenant process for `model`: `python -c` with a socket as its pipe, not
        multiprocessing's spawn, which would re-import the user's main script."""
        import json
        import socket
        import subprocess
        import sys
        from multiprocessing.connection import Connection

        from ..lifeline import pdeathsig_usable

        pairs = [socket.socketpair() for _ in range(1 + len(model.lanes))]  # control, then one per lane
        theirs = [b for _, b in pairs]
        spec = {"bundle": str(model.path), "lanes": [lane.memory.name for lane in model.lanes],
                "cores": self.cores, "parent": os.getpid(), "pdeathsig": pdeathsig_usable(),
                "fd": theirs[0].fileno(), "lane_fds": [t.fileno() for t in theirs[1:]]}
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, **tenant_thread_env(len(self.cores)),  # the pool size every lane starts with
               "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MTCC_TENANT": json.dumps(spec),
               "PYTHONPATH": root + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")}
        cores = set(self.cores)
        process = subprocess.Popen([sys.executable, "-c", "from mtcc.runtime.tenant import main; main()"],
                                   pass_fds=[t.fileno() for t in theirs], env=env, stdin=subprocess.DEVNULL,
                                   preexec_fn=lambda: os.sched_setaffinity(0, cores))
        for t in theirs:
            t.close()
        conns = [Connection(ours.detach()) for ours, _ in pairs]
        model.process, model.conn, model.lane_conns = process, conns[0], conns[1:]
        model.ready.clear()
        model.failure = None
        model.readers = [threading.Thread(target=self._read_control, args=(model, conns[0], process), daemon=True,
                                          name=f"mtcc-control-{model.name}")]
        model.readers += [threading.Thread(target=self._read_lane, args=(model, conn), daemon=True,
                                           name=f"mtcc-lane-{model.name}-{k}") for k, conn in enumerate(conns[1:])]
        for reader in model.readers:
            reader.start()

    def _read_control(self, model: Model, conn, process) -> None:
        """The tenant's control pipe: ready, failed, and its end (the process died)."""
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                try:
                    process.wait(5)
                except Exception:  # noqa: BLE001 - still running: reported as such
                    pass
                if not model.ready.is_set():  # died while starting: the constructor reports it
                    model.failure = f"the tenant process exited with code {process.returncode} while starting"
                    model.ready.set()
                    return
                self._step(("died", model.name, process))
                return
            if msg.get("op") == "ready":
                model.frozen_objects = msg.get("frozen_objects", 0)
                model.lane_tids, model.lane_pins = list(msg.get("lane_tids", [])), {}
                model.ready.set()
                self._step(("ready", model.name))  # a restarted tenant: dispatch its queue
            elif msg.get("op") == "failed":
                model.failure = msg.get("error", "failed")
                model.ready.set()

    def _read_lane(self, model: Model, conn) -> None:
        """One lane's pipe: its replies, handled in this thread (no hand-off to another)."""
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                return
            if msg.get("op") == "timed":
                model.timed.put(msg)
            else:
                self._step(("reply", model.name, msg))

    def _wait_ready(self, model: Model, timeout: float) -> None:
        if not model.ready.wait(timeout):
            raise TenantFailed(f"{model.path}: tenant of {model.name} not ready after {timeout:.0f} s")
        if model.failure:
            raise TenantFailed(f"{model.path}: tenant of {model.name} failed to start ({model.failure})")

    def _measure_isolated(self, model: Model, timeout: float, repeat: int = 5) -> None:
        """The model alone on 1 .. all the server's cores (median of `repeat`): the default
        target's base; its blocks' times, which calibrate the profile's tables to this
        machine at every core count (profile.calibrate); `scale`, what is left between
        the calibrated tables and the whole model's time (about 1); and the same on all
        cores after an idle pause (`after_pause_ms`, what a cold lane costs)."""
        model.lane_conns[0].send({"op": "time", "lane": 0, "request": None, "cores": self.cores, "repeat": repeat})
        try:
            msg = model.timed.get(timeout=timeout)
        except queue.Empty:
            raise TenantFailed(f"{model.path}: tenant of {model.name} did not time the model in {timeout:.0f} s") from None
        by_cores = {int(n): statistics.median(v) for n, v in msg["ms"].items()}
        model.isolated_by_cores = {n: round(v, 3) for n, v in sorted(by_cores.items())}
        model.isolated_ms = by_cores[len(self.cores)]
        # a request that finds its lane idle: the same on all cores after a pause
        model.after_pause_ms = statistics.median(msg["after_pause_ms"])
        model.profile.calibrate({int(n): row for n, row in msg["blocks_us"].items()})
        predicted_ms = model.profile.model_us(len(self.cores)) / 1e3
        model.scale = model.isolated_ms / predicted_ms if predicted_ms else 1.0

    # -- the API --------------------------------------------------------------------------
    def submit(self, model: str, inputs: dict) -> Future:
        """Queue one inference; the future resolves to {output name: ndarray}.  Refused at
        once (BadInput) on an unknown model or a missing, extra or mis-shaped input, and
        (QueueFull) when the model's queue is at its bound."""
        if self._closed:
            raise MtccError("the server is closed")
        m = self.models.get(model)
        if m is None:
            raise BadInput(f"submit: no model {model!r} (models: {', '.join(self.models)})")
        arrays = m.check_feeds(inputs, f"submit {m.name}")
        now = time.monotonic()
        request = Request(next(self._ids), model, Pending(model, now, now + m.qos_ms / 1e3, 0, m.profile, m.scale),
                          Future(), arrays=arrays)
        with self._lock:
            if self._closed:
                raise MtccError("the server is closed")
            if len(m.queue) >= m.max_queue:
                raise QueueFull(f"submit: the queue of {model!r} is full ({m.max_queue} requests waiting); "
                                "retry later or raise max_queue")
            m.queue.append(request)
        self._step(("submit", model))
        return request.future

    def set_qos(self, qos_ms: dict) -> None:
        """New latency targets {model: ms} for requests submitted from now on (a bench
        serves several targets with one server)."""
        unknown = set(qos_ms) - set(self.models)
        if unknown:
            raise BadInput(f"qos_ms: no model named {', '.join(sorted(unknown))} (models: {', '.join(self.models)})")
        with self._lock:
            for name, ms in qos_ms.items():
                if not ms or ms <= 0:
                    raise BadInput(f"qos_ms[{name!r}] = {ms}: a target must be positive")
                self.models[name].qos_ms = float(ms)
            self.policy.set_targets({n: m.qos_ms for n, m in self.models.items()})

    def stats(self) -> dict:
        """Per model: requests, failed, p50/p99/mean ms, share within QoS, conflict rate,
        block-boundary cost; and the core-grant timeline."""
        with self._lock:  # the replies append under it, and a deque must not change while read
            kept = {m.name: {key: list(getattr(m, key)) for key in KEPT} for m in self.models.values()}
            timeline = self.allocator.since(0)
        out = {"policy": self.policy.name, "cores": self.cores, "lanes": self.lanes, "models": {}}
        for m in self.models.values():
            k = kept[m.name]
            lat = sorted(k["latencies_ms"])
            out["models"][m.name] = {
                "requests": m.completed, "failed": m.failed, "qos_ms": round(m.qos_ms, 3),
                "isolated_ms": round(m.isolated_ms, 3) if m.isolated_ms else None,
                "isolated_ms_by_cores": m.isolated_by_cores,
                "after_pause_ms": round(m.after_pause_ms, 3) if m.after_pause_ms else None,
                "block_us_by_cores": m.profile.measured_block_us,
                "p50_ms": round(statistics.median(lat), 3) if lat else None,
                "p99_ms": round(float(np.percentile(lat, 99)), 3) if lat else None,
                "mean_ms": round(statistics.fmean(lat), 3) if lat else None,
                "within_qos": round(m.within / m.completed, 4) if m.completed else None,
                "units": m.units, "conflict_rate": round(m.conflicts / m.units, 4) if m.units else 0.0,
                **{f"{key}_median": round(statistics.median(k[key]), 2) if k[key] else None
                   for key in ("boundary_us", "grant_us", "round_trip_us", "to_tenant_us", "to_server_us", "block_us")},
                "boundaries": m.boundaries,
                "restarts": m.restarts,
                "levels": dict(collections.Counter(seg[3] for seg in k["segments"])),
                "blocks_with_switched_variants": sum(1 for seg in k["segments"] if seg[4]),
            }
        out["timeline"] = [(round(t - self.started, 6), what, str(holder), list(cores))
                           for t, what, holder, cores in timeline]
        return out

    def close(self) -> None:
        """Stop the scheduler and every tenant, fail what is unfinished, free the shared
        memory.  Safe to call twice; also runs at exit, on SIGTERM and leaving `with`."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._shutdown()
        if self._previous_sigterm is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._previous_sigterm)
        atexit.unregister(self.close)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _on_sigterm(self, signum, frame) -> None:
        self.close()
        raise SystemExit(128 + signum)

    def _shutdown(self) -> None:
        for m in self.models.values():
            if m.conn is not None:
                try:
                    m.conn.send({"op": "stop"})
                except (OSError, ValueError):
                    pass
        deadline = time.monotonic() + 5
        for m in self.models.values():
            if m.process is not None:
                try:
                    m.process.wait(max(0.1, deadline - time.monotonic()))
                except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired: not gone in time
                    m.process.kill()
                    m.process.wait(5)
            for r in [*m.queue, *[lane.request for lane in m.lanes if lane.request]]:
                if not r.future.done():
                    r.future.set_exception(MtccError(f"{m.name}: the server closed before the request finished"))
            m.queue.clear()
            for lane in m.lanes:
                lane.memory.close()
            for conn, reader in zip([m.conn, *m.lane_conns], m.readers):
                close_pipe(conn, reader)

    # -- the scheduler ------------------------------------------------------------------
    def _step(self, event) -> None:
        """Take one event into account and dispatch what can run, under the lock; then
        complete the futures it finished (their callbacks run without the lock held)."""
        with self._lock:
            if self._closed:
                return
            try:
                self._handle(event)
                self._dispatch()
            except Exception as e:  # noqa: BLE001 - a scheduler bug must not hang every future
                for m in self.models.values():
                    for r in [*m.queue, *[lane.request for lane in m.lanes if lane.request]]:
                        self._completions.append((r.future, "error", e))
            done, self._completions = self._completions, []
        for future, kind, value in done:
            if not future.done():
                if kind == "error":
                    future.set_exception(value)
                else:
                    future.set_result(value)

    def _handle(self, event) -> None:
        kind, name = event[0], event[1]
        m = self.models[name]  # "submit" and "ready" only ask for a dispatch
        if kind == "reply":
            self._on_reply(m, event[2])
        elif kind == "died":
            self._on_death(m, event[2])

    def _on_reply(self, m: Model, msg: dict) -> None:
        lane = m.lanes[msg["lane"]]
        r = lane.request
        if r is None or r.id != msg["request"]:
            return
        self.allocator.release(("lane", m.name, msg["lane"]))
        r.running = False
        if msg["op"] == "error":
            lane.request = None
            m.failed += 1
            self._completions.append((r.future, "error",
                                      MtccError(f"{m.name}: inference failed in the tenant ({msg['error']})")))
            return
        to_tenant, to_server = msg["t_start"] - r.sent, time.monotonic() - msg["t_end"]
        r.spent["to_tenant"] += to_tenant
        r.spent["in_tenant"] += msg["t_end"] - msg["t_start"]
        m.round_trip_us.append((to_tenant + to_server) * 1e6)
        if r.pending.reached > 0:  # the unit continued a request: its lane had just replied
            m.to_tenant_us.append(to_tenant * 1e6)
        if not msg["finished"]:    # the request goes on: this process decides its next unit
            r.spent["to_server"] += to_server
            m.to_server_us.append(to_server * 1e6)
        r.grants.append((r.pending.reached, msg["reached"], len(msg["cores"])))
        r.pending.reached = msg["reached"]
        r.segments.extend(msg["segments"])
        m.boundary_us.extend(msg["boundary_us"])
        m.boundaries += len(msg["boundary_us"])
        m.grant_us.append(msg["grant_us"] + r.pin_us)
        m.block_us.extend(s[2] for s in msg["segments"])
        m.segments.extend(msg["segments"])
        if msg["finished"]:
            latency_ms = (msg["t_end"] - r.pending.arrival) * 1e3
            outputs = {name: np.array(view) for name, view in lane.memory.outputs.items()}
            lane.request = None
            m.latencies_ms.append(latency_ms)
            m.completed += 1
            m.within += latency_ms <= m.qos_ms
            r.future.latency_ms = latency_ms  # submit -> last block done, for load generators
            # ... and its parts, in µs: submitted -> first unit sent (queue, scheduling,
            # inputs into shared memory), sent -> started in the tenant, running there
            # (grants, blocks, outputs), finished -> seen here between its units
            r.future.spent_us = {k: round(v * 1e6, 1) for k, v in r.spent.items()}
            r.future.grants = r.grants  # [(first call, end call, cores)] of its units
            self._completions.append((r.future, "result", outputs))

    def _on_death(self, m: Model, process) -> None:
        if self._closed or process is not m.process:
            return
        code = process.returncode
        how = (f"killed by {signal.Signals(-code).name}" if code is not None and code < 0
               else f"exited with code {code}")
        for k, lane in enumerate(m.lanes):
            self.allocator.release(("lane", m.name, k))
            if lane.request is not None:
                m.failed += 1
                self._completions.append((lane.request.future, "error", TenantFailed(
                    f"{m.name}: tenant process {process.pid} {how} while serving the request")))
                lane.request = None
        m.restarts += 1
        self._start_tenant(m)  # from its verified bundle; queued requests wait until it is ready

    def _waiting(self) -> list[Waiting]:
        """Every request that could run now, of every tenant that is up."""
        return [w for m in self.models.values() if m.ready.is_set() and not m.failure
                for w in waiting_of(m.name, [lane.request for lane in m.lanes], m.queue)]

    def _dispatch(self) -> None:
        now = time.monotonic()
        step = schedule(self.policy, self.allocator, self._waiting(), now)
        for grant in step.grants:
            r, k = grant.waiting.item
            m = self.models[r.model]
            if r.lane is None:  # bind to a lane: inputs into its arena
                m.queue.remove(r)
                lane = m.lanes[k]
                for i, a in zip(m.profile.inputs, r.arrays):
                    lane.memory.inputs[i["name"]][...] = a
                lane.request, r.lane, r.started, r.arrays = r, k, now, None
                r.spent["to_first_unit"] = time.monotonic() - r.pending.arrival
            lane = m.lanes[r.lane]
            lane.memory.control[shm.YIELD] = 0
            r.running, r.yield_asked = True, False
            r.units += 1
            m.units += 1
            if grant.conflict:
                r.conflicts += 1
                m.conflicts += 1
            r.sent = time.monotonic()
            core = self._pin_lane(m, r.lane, grant.cores, r)
            m.lane_conns[r.lane].send({"op": "run", "lane": r.lane, "request": r.id, "start": r.pending.reached,
                                       "end": grant.end, "stops": grant.stops, "cores": grant.cores,
                                       "selector": self.policy.selector, "lane_core": core})
        self._update_neighbours()
        if step.best_blocked is not None:
            self._ask_to_yield(step.best_blocked)

    @staticmethod
    def _pin_lane(m: Model, k: int, cores: list[int], r: Request) -> int | None:
        """Pin lane k's thread, asleep on its pipe, to the core the unit puts it on, so it
        wakes there (placement.py); returns that core, or None where the tenant must pin
        it itself (its thread ids not known, or gone)."""
        start = time.perf_counter()
        core = lane_core(cores)
        if m.lane_pins.get(k) != core:
            if k >= len(m.lane_tids) or not pin_sleeping(m.lane_tids[k], core):
                m.lane_pins.pop(k, None)
                core = None
            else:
                m.lane_pins[k] = core
        r.pin_us = (time.perf_counter() - start) * 1e6
        return core

    def _running(self):
        for m in self.models.values():
            for lane in m.lanes:
                if lane.request is not None and lane.request.running:
                    yield m, lane

    def _ask_to_yield(self, best_waiting: tuple) -> None:
        """Running units of lower priority than the best waiting one stop at their next
        stop point (the tenant reads the word there: no round trip)."""
        for m, lane in self._running():
            r = lane.request
            if not r.yield_asked and must_yield(self.policy, r.pending, best_waiting):
                lane.memory.control[shm.YIELD] = 1
                r.yield_asked = True

    def _update_neighbours(self) -> None:
        """Each running lane learns the expected slowdown from what the others run now."""
        running = list(self._running())
        for m, lane in running:
            product, others = 1.0, 0
            for m2, lane2 in running:
                if lane2 is lane:
                    continue
                others += 1
                r2 = lane2.request
                block = m2.profile.block_of(r2.pending.reached)
                product *= m2.profile.block_footprint(block)
            lane.memory.control[shm.NEIGHBOUR_MILLI] = int(product * 1000)
            lane.memory.control[shm.NEIGHBOURS] = others

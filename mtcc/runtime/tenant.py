"""A tenant: one process per model, serving the server's units on its lanes.

A crash stays inside the process.  The bundle is verified and loaded once and its
weights made device tensors once; each lane is a thread with its own executor (its own
intermediate buffers, the shared weights) and its own TVM thread pool, so one model's
requests can run at once on disjoint cores.

The server sends a lane a *unit*: run calls [start, end) of one request on these
cores with this selector.  The lane runs it block by block; at every stop point it
reads its control words in shared memory (no round trip) and returns early only when
the server set YIELD (someone waits for its cores).  Inputs and outputs sit in the
lane's shared-memory arena.

Pipes (small dicts only): a control pipe (tenant -> server {"op": "ready"} | {"op":
"failed"}; server -> tenant {"op": "stop"}) and one pipe per lane, read by the lane
thread itself (server -> lane {"op": "run" | "time", ...}; lane -> server {"op": "done" |
"timed" | "error", ...}).
"""
from __future__ import annotations

import os
import statistics
import threading
import time
import traceback

from . import shm
from .heap import freeze_startup_heap
from .pressure import thresholds
from .profile import ModelProfile
from .selector import make_selector

PAUSE_S = 0.02  # idle time before each "after a pause" run (_time): past any pool's spin-wait


class Lane(threading.Thread):
    def __init__(self, index: int, tenant: "Tenant", memory_name: str, conn):
        super().__init__(name=f"lane-{index}", daemon=True)
        self.index, self.tenant, self.conn = index, tenant, conn  # the lane's own pipe: no hand-off
        self.memory = shm.LaneMemory(tenant.profile.inputs, tenant.profile.outputs, name=memory_name)
        self.ready = threading.Event()
        self.failed: str | None = None
        self._choices: dict = {}
        self._applied: dict = {}  # block -> the choice its calls are bound to now
        self.learned: list = []   # (block key, observed / predicted) of the last unit, for the proxy

    # -- set-up, on the lane thread ------------------------------------------------------
    def _start(self) -> None:
        from .executor import PlanExecutor
        from .placement import LanePlacement
        from .pressure import make_proxy

        t = self.tenant
        self.executor = PlanExecutor(t.loaded.lib, t.loaded.plan, weights=t.weights)
        self.placement = LanePlacement()
        self.proxy = make_proxy("footprint")
        arrays = [self.memory.inputs[i["name"]] for i in t.profile.inputs]
        self.executor.read_inputs_from(arrays)  # the server writes them there: no copy per request
        self._outputs = [self.memory.outputs[o["name"]] for o in t.profile.outputs]
        self.placement.start_pool(lambda: self.executor.run(*arrays))
        self.placement.apply(t.spec["cores"])
        self.warm_up_ms = self._time_whole(arrays)  # the first runs are slow (page faults, pools)

    def _time(self, unit: dict) -> dict:
        """The model alone, default variants, `repeat` times on 1, 2, ... up to the unit's
        cores: the isolated latency the server sets default targets from, each block's
        median µs (the server calibrates its tables with them), and each block's observed
        / predicted ratio, the pressure proxy's baseline."""
        profile, ex = self.tenant.profile, self.executor
        ex.reset_choice()
        self._applied.clear()
        ms, blocks_us = {}, {}
        for n in range(1, len(unit["cores"]) + 1):
            self.placement.apply(unit["cores"][:n])
            ms[n], runs = [], []
            for _ in range(int(unit.get("repeat", 3))):
                took = self._blocks_us()
                for b, us in zip(profile.blocks, took):
                    predicted = profile.block_us(b.index, n)
                    if predicted:
                        self.proxy.calibrate((b.index, n), us / predicted)
                ms[n].append(sum(took) / 1e3)
                runs.append(took)
            blocks_us[n] = [statistics.median(r[k] for r in runs) for k in range(len(profile.blocks))]
        # The same on all the cores, each run after a pause: what a request that finds the
        # lane idle pays (its pool asleep, its data out of the caches).  The tables above are
        # measured back to back; the simulator adds the difference to a unit on a cold lane,
        # so both are timed alike (sums of the blocks' times).
        after_pause = []
        for _ in range(int(unit.get("repeat", 3))):
            time.sleep(PAUSE_S)
            after_pause.append(sum(self._blocks_us()) / 1e3)
        return {"op": "timed", "lane": self.index, "request": None, "ms": ms, "blocks_us": blocks_us,
                "after_pause_ms": after_pause, "cores": list(unit["cores"])}

    def _blocks_us(self) -> list[float]:
        """One inference, default variants as chosen, block by block: µs of each block."""
        out = []
        for b in self.tenant.profile.blocks:
            start = time.perf_counter()
            self.executor.run_range(b.start, b.end)
            out.append((time.perf_counter() - start) * 1e6)
        return out

    def _time_whole(self, arrays) -> float:
        start = time.perf_counter()
        self.executor.run(*arrays)
        return (time.perf_counter() - start) * 1e3

    def run(self) -> None:  # noqa: D401 - threading.Thread API
        try:
            self._start()
        except Exception as e:  # noqa: BLE001 - reported to the server, which refuses the model
            self.failed = f"{type(e).__name__}: {e}"
        self.ready.set()
        if self.failed:
            return
        while True:
            try:
                unit = self.conn.recv()
            except (EOFError, OSError):  # the server is gone
                return
            try:
                reply = self._time(unit) if unit["op"] == "time" else self._run_unit(unit)
            except Exception as e:  # noqa: BLE001 - one request's failure, not the tenant's
                reply = {"op": "error", "lane": self.index, "request": unit.get("request"),
                         "error": f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}",
                         "trace": traceback.format_exc(limit=3)}
            try:
                self.conn.send(reply)
            except (OSError, EOFError):
                return
            self.learn()

    def learn(self) -> None:
        """Feed the pressure proxy the last unit's blocks (observed / predicted), off the
        request's path: the next unit's levels use them."""
        for key, ratio in self.learned:
            self.proxy.observe(key, ratio)
        self.learned = []

    # -- one unit ----------------------------------------------------------------------------
    def _choice(self, block: int, cores: int, level: str, selector: str) -> tuple[dict, dict, float]:
        """({task: function}, {task: variant id}, predicted µs at level none) of the
        selector's choice for a block; cached, so a boundary costs a dict lookup."""
        key = (block, cores, level, selector)
        found = self._choices.get(key)
        if found is None:
            profile = self.tenant.profile
            ids = self.tenant.selectors[selector].choose(profile, block, cores, level)
            fns = {task: profile.variant(task, vid).function for task, vid in ids.items()}
            switched = {t: v for t, v in ids.items() if v != profile.default[t]}
            found = self._choices[key] = (fns, switched, profile.block_us(block, cores, "none", ids))
        return found

    def _run_unit(self, unit: dict) -> dict:
        profile, ex, control = self.tenant.profile, self.executor, self.memory.control
        t_start = time.monotonic()
        grant_us = self.placement.apply(unit["cores"], lane_core=unit.get("lane_core"))
        ncores = len(unit["cores"])
        start, end = int(unit["start"]), int(unit["end"])
        stops = set(int(s) for s in unit.get("stops", ()))
        block_of = self.tenant.block_of_call
        cuts = sorted({c for c in stops | self.tenant.block_ends if start < c < end} | {end})
        segments, boundary_us, self.learned = [], [], []
        adaptive = unit["selector"] != "default"
        proxy, learned = self.proxy, self.learned
        estimate = round(proxy.slowdown(), 4)  # what the proxy knew when the unit started
        marks = {block_of[c]: self.tenant.marks(block_of[c], ncores) for c in [start, *cuts[:-1]]} if adaptive else {}
        at = start
        # Between two runs of kernels the caches hold the kernels' data, not the
        # interpreter's, and every Python call here costs several µs (measured: the
        # proxy's update alone took 6-60 µs).  So the loop only reads the clock, looks up
        # cached choices and appends raw tuples; the proxy learns from the unit's blocks
        # after the reply is sent (learn()), and rounding waits until the unit ends.
        between = time.perf_counter()  # boundary cost: everything between two runs of kernels
        for cut in cuts:
            block = block_of[at]
            b = profile.blocks[block]
            level = "none"
            if adaptive and marks[block]:  # no marks: no level would slow this block
                milli = int(control[shm.NEIGHBOUR_MILLI])
                level = proxy.level(marks[block], milli / 1000.0 if milli else 1.0)
            fns, switched, predicted = self._choice(block, ncores, level, unit["selector"])
            if (at == b.start or at == start) and self._applied.get(block) is not fns:
                ex.select(fns, at, b.end)  # swaps function handles; skipped when unchanged
                if at == b.start:
                    self._applied[block] = fns
                else:  # part of the block only: its first calls may hold another choice
                    self._applied.pop(block, None)
            b1 = time.perf_counter()
            if at != start:
                boundary_us.append(b1 - between)
            ex.run_range(at, cut)
            between = b2 = time.perf_counter()
            whole_block = at == b.start and cut == b.end
            if whole_block and predicted:  # what the proxy learns from
                learned.append(((block, ncores), (b2 - b1) * 1e6 / predicted))
            segments.append((at, cut, b2 - b1, level, switched if whole_block else None))
            at = cut
            # Stop point: leave early only when the server asked (someone waits).
            if at < end and at in stops and int(control[shm.YIELD]):
                control[shm.YIELD] = 0
                break
        segments = [(a, c, round(s * 1e6, 1), lvl, sw, estimate) for a, c, s, lvl, sw in segments]
        boundary_us = [round(s * 1e6, 2) for s in boundary_us]
        finished = at == len(profile.call_tasks)
        if finished:
            ex.write_outputs_to(self._outputs)
        return {"op": "done", "lane": self.index, "request": unit["request"], "reached": at, "finished": finished,
                "segments": segments, "boundary_us": boundary_us, "grant_us": round(grant_us, 2),
                "t_start": t_start, "t_end": time.monotonic(), "cores": list(unit["cores"])}

class Tenant:
    def __init__(self, conn, spec: dict):
        import mtcc

        from .executor import device_weights

        self.conn, self.spec = conn, spec
        self.loaded = mtcc.load(spec["bundle"])
        self.profile = ModelProfile(self.loaded.manifest, self.loaded.plan.to_dict(), self.loaded.selector,
                                    spec["bundle"])
        self.weights = device_weights(self.loaded.plan)
        self.selectors = {"default": make_selector("default"), "table": make_selector("table")}
        self.block_of_call = [0] * len(self.profile.call_tasks)
        for b in self.profile.blocks:
            for c in range(b.start, b.end):
                self.block_of_call[c] = b.index
        self.block_ends = {b.end for b in self.profile.blocks}
        self._marks: dict = {}
        from multiprocessing.connection import Connection

        self.lanes = [Lane(k, self, name, Connection(fd))
                      for k, (name, fd) in enumerate(zip(spec["lanes"], spec["lane_fds"]))]

    def marks(self, block: int, cores: int) -> list:
        """The pressure thresholds of a block on `cores` (from its tables; cached)."""
        found = self._marks.get((block, cores))
        if found is None:
            found = self._marks[(block, cores)] = thresholds(self.profile.block_slowdowns(block, cores))
        return found

    def send(self, message: dict) -> None:
        self.conn.send(message)

    def serve(self) -> None:
        for lane in self.lanes:  # one at a time: each warm-up runs alone on the tenant's cores
            lane.start()
            lane.ready.wait()
        failed = [lane.failed for lane in self.lanes if lane.failed]
        if failed:
            self.send({"op": "failed", "error": failed[0]})
            return
        frozen = freeze_startup_heap()  # the loaded bundle lives as long as the tenant (heap.py)
        self.send({"op": "ready", "pid": os.getpid(), "frozen_objects": frozen,
                   "warm_up_ms": [round(lane.warm_up_ms, 3) for lane in self.lanes],
                   "worker_tids": [lane.placement.worker_tids for lane in self.lanes],
                   "lane_tids": [lane.placement.lane_tid for lane in self.lanes]})  # the server pins them (placement.py)
        while True:  # the control pipe: a stop, or its end, ends the tenant
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):
                return
            if msg.get("op") == "stop":
                return


def main() -> None:
    """Entry point of the tenant process (`python -c`, started by the server): the spec
    in MTCC_TENANT, the pipe on the socket whose descriptor the spec names."""
    import json
    from multiprocessing.connection import Connection

    from ..lifeline import die_with_parent

    spec = json.loads(os.environ["MTCC_TENANT"])
    die_with_parent(spec["parent"], spec.get("pdeathsig", False))
    conn = Connection(spec["fd"])
    tenant = None
    try:
        tenant = Tenant(conn, spec)
        tenant.serve()
    except Exception as e:  # noqa: BLE001 - the server reports it, naming the model
        try:
            conn.send({"op": "failed", "error": f"{type(e).__name__}: {e}"})
        except (OSError, EOFError):
            pass
    finally:
        os._exit(0)  # skip interpreter teardown with TVM pools spinning

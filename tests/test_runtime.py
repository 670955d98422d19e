"""mtcc.Server: several bundles served at once by tenant processes, for every policy.

Real parts throughout: bundles packed from the committed schedules (built for what
this CPU runs), tenant processes, shared memory, SIGKILL.  Outputs are checked against
ONNX Runtime; nothing here asserts a time."""
from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import HOST_MCPU, ROOT, vcpus_concurrent

pytestmark = pytest.mark.slow

POLICIES = ("model-fcfs", "model-edf", "layer", "block", "block-adaptive")
TOLERANCE = dict(rtol=1e-4)


@pytest.fixture(scope="module")
def bundles(models_dir, tmp_path_factory) -> dict:
    """The portable x86-64-v4 records built for this CPU: on a CPU without AVX-512 slower
    than the examples' own v3 schedules, so blocks of a few ms that the pressure test can
    tell from this host's noise (with the v3 bundles' 1-3 ms blocks, the proxy read the
    noise after the stressor stopped as pressure on 10 of 16 blocks)."""
    import mtcc

    root = tmp_path_factory.mktemp("runtime")
    out = {}
    for name in ("transformer", "squeezenet"):
        path = root / f"{name}.mtcc"
        mtcc.pack(models_dir / f"{name}.onnx", ROOT / "schedules" / name / "llvm-x86-64-v4", path,
                  target=HOST_MCPU)
        out[name] = path
    return out


@pytest.fixture(scope="module")
def reference(models_dir) -> dict:
    from mtcc import frontend
    from mtcc.bench import baselines

    out = {}
    for name in ("transformer", "squeezenet"):
        model = frontend.load(models_dir / f"{name}.onnx")
        feeds = [baselines.random_inputs(model, seed) for seed in (0, 1)]
        ort = baselines.OnnxRuntime(model)
        out[name] = [(f, ort.run(f), [o.name for o in model.outputs]) for f in feeds]
    return out


def _check(got: dict, want: list, names: list[str]) -> None:
    assert list(got) == names
    for name, w in zip(names, want):
        np.testing.assert_allclose(got[name], w, atol=1e-4 * float(np.abs(w).max() or 1.0), **TOLERANCE)


def _tenant_pids() -> set[int]:
    out = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if b"mtcc.runtime.tenant" in (proc / "cmdline").read_bytes():
                    out.add(int(proc.name))
            except OSError:
                pass
    return out


def _segments() -> set[str]:
    return {p.name for p in Path("/dev/shm").iterdir()}


def _check_grants(timeline) -> int:
    """Every grant was given back and no core was held by two lanes at once; returns the
    most lanes that held cores at the same time."""
    held: dict[int, object] = {}
    most = 0
    for _, what, holder, cores in timeline:
        for c in cores:
            if what == "grant":
                assert c not in held, f"core {c} granted twice"
                held[c] = holder
            else:
                assert held.pop(c) == holder
        most = max(most, len(set(held.values())))
    assert held == {}
    return most


@pytest.mark.parametrize("policy", POLICIES)
def test_concurrent_requests_give_onnxruntime_outputs(bundles, reference, policy):
    import mtcc

    with mtcc.Server(bundles, policy=policy) as server:
        futures = []
        for k in range(3):
            for name in ("squeezenet", "transformer"):
                feeds, want, names = reference[name][k % 2]
                futures.append((server.submit(name, feeds), want, names, name))
        for future, want, names, name in futures:
            _check(future.result(timeout=300), want, names)
            # its units ran every call once, in order, each on at least one core
            ends = [0] + [end for _, end, _ in future.grants]
            assert [start for start, _, _ in future.grants] == ends[:-1], future.grants
            assert ends[-1] == len(server.models[name].profile.call_tasks), future.grants
            assert all(cores >= 1 for _, _, cores in future.grants), future.grants
            if policy.startswith("model-"):
                assert len(future.grants) == 1, future.grants
        stats = server.stats()
    assert stats["policy"] == policy
    for name in ("squeezenet", "transformer"):
        s = stats["models"][name]
        assert s["requests"] == 3 and s["failed"] == 0 and s["units"] >= 3
        assert 0.0 <= s["conflict_rate"] <= 1.0 and s["qos_ms"] > 0
        # The server measured every block alone at each core count and plans with that.
        assert sorted(s["block_us_by_cores"]) == list(range(1, len(stats["cores"]) + 1))
        assert all(len(row) == len(server.models[name].profile.blocks) and min(row) > 0
                   for row in s["block_us_by_cores"].values())
        assert server.models[name].profile.model_us(1) == pytest.approx(sum(s["block_us_by_cores"][1]), rel=1e-3)
        assert s["after_pause_ms"] > 0  # ... and after an idle pause (the simulator's cold cost)
    _check_grants(stats["timeline"])


def test_lanes_run_one_models_requests_at_once_on_disjoint_cores(bundles, reference):
    # One model on 2 cores: two lanes by default (scheduler.default_lanes), so four
    # requests submitted together run two at a time, each on its own core, with
    # ONNX Runtime's outputs.
    import mtcc

    with mtcc.Server({"squeezenet": bundles["squeezenet"]}, cores=[0, 1], policy="model-fcfs",
                     qos_ms={"squeezenet": 1e6}) as server:  # a loose target: one core each
        assert server.lanes == 2
        futures = [(server.submit("squeezenet", reference["squeezenet"][k % 2][0]), k % 2) for k in range(4)]
        for future, k in futures:
            _, want, names = reference["squeezenet"][k]
            _check(future.result(timeout=300), want, names)
        timeline = server.stats()["timeline"]
        # The server pins each lane thread, asleep, to its unit's first core before it wakes
        # it (placement.pin_sleeping): between units a lane waits on its last unit's core.
        model = server.models["squeezenet"]
        last = {holder: cores for _, what, holder, cores in timeline if what == "grant"}
        on = {k: sorted(os.sched_getaffinity(tid)) for k, tid in enumerate(model.lane_tids)}
    assert _check_grants(timeline) == 2, "two lanes never held cores at the same time"
    assert on == {k: [min(last[str(("lane", "squeezenet", k))])] for k in range(2)}, (on, last)


PINNING = """
import json, os, sys, numpy as np, mtcc
from mtcc.runtime.placement import LanePlacement, lane_core, pin_sleeping
bundle = mtcc.load(sys.argv[1])
arrays = [np.zeros(i["shape"], i["dtype"]) for i in bundle.inputs]
placement = LanePlacement()
placement.start_pool(lambda: bundle.executor.run(*arrays))
for tid in placement.worker_tids:  # where an earlier grant may have left them
    os.sched_setaffinity(tid, [1])
def cpu_ticks(tid):
    fields = open(f"/proc/self/task/{tid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])
for cores in ([0, 1], [1], [1], [0], [0, 1]):
    core = lane_core(cores)  # as the server does before it sends a unit
    pin_sleeping(placement.lane_tid, core)
    placement.apply(cores, lane_core=core)
    before = [cpu_ticks(t) for t in placement.worker_tids]
    for _ in range(int(sys.argv[2])):
        bundle.executor.run(*arrays)
    ran = [t for t, b in zip(placement.worker_tids, before) if cpu_ticks(t) > b]
    on = [sorted(os.sched_getaffinity(t)) for t in [placement.lane_tid, *ran]]
    print(json.dumps({"granted": cores, "workers": len(placement.worker_tids), "ran": len(ran), "on": on}),
          flush=True)
"""


def test_a_grant_pins_every_thread_that_runs(bundles):
    # A grant re-pins only the lane thread and the pool workers that will run (placement.py
    # relies on TVM handing task k to worker k-1 in creation order): whatever a unit
    # runs on, every thread that gained CPU time sits alone on one of the granted cores
    # (the lane thread pinned as the server pins it, before the unit).
    # A pool of 4 threads on 2 cores: more workers than any grant uses.
    import json

    env = {**os.environ, "TVM_NUM_THREADS": "4", "TVM_BIND_THREADS": "0", "TVM_THREAD_POOL_SPIN_COUNT": "0",
           "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", PINNING, str(bundles["squeezenet"]), "20"], env=env,
                         capture_output=True, text=True, timeout=600, check=True).stdout
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert [r["granted"] for r in rows] == [[0, 1], [1], [1], [0], [0, 1]]
    for r in rows:
        assert r["workers"] == 3
        assert r["ran"] <= len(r["granted"]) - 1, f"granted {r['granted']}: {r['ran']} workers ran"
        assert all(len(on) == 1 and on[0] in r["granted"] for on in r["on"]), \
            f"granted {r['granted']}, threads that ran on {r['on']}"
        assert len({on[0] for on in r["on"]}) == len(r["on"]), f"two threads on one core: {r['on']}"
    assert rows[0]["ran"] == 1, "with 2 cores granted the pool's first worker never ran"


HOLDING = """
import json, os, sys, numpy as np, mtcc
bundle = mtcc.load(sys.argv[1])
arrays = [np.zeros(i["shape"], i["dtype"]) for i in bundle.inputs]
before = sorted(os.sched_getaffinity(0))
if sys.argv[2] == "started":  # the pool started before: its workers cannot be found
    bundle.run(*arrays)
with bundle.pinned([0, 1]):
    inside = sorted(os.sched_getaffinity(0))
    placement = bundle._thread.placement
    bundle.run(*arrays)
    workers = [sorted(os.sched_getaffinity(t)) for t in placement.worker_tids]
print(json.dumps({"before": before, "inside": inside, "workers": workers, "after": sorted(os.sched_getaffinity(0))}))
"""


def test_a_pinned_block_puts_one_thread_per_core_and_gives_the_cores_back(bundles):
    # In-process runs (mtcc run, profile, bench --single, the benchmarks) pin their pool
    # one thread per core only inside `with bundle.pinned(cores)`: a thread that runs
    # other work afterwards (bench --single's baselines) must get its cores back.
    import json

    env = {**os.environ, "TVM_NUM_THREADS": "2", "TVM_BIND_THREADS": "0", "PYTHONPATH": str(ROOT)}
    rows = {}
    for case in ("fresh", "started"):
        out = subprocess.run([sys.executable, "-c", HOLDING, str(bundles["squeezenet"]), case], env=env,
                             capture_output=True, text=True, timeout=600, check=True).stdout
        rows[case] = json.loads(out.strip().splitlines()[-1])
    row = rows["fresh"]
    assert row["before"] == [0, 1] and row["after"] == [0, 1]
    assert row["inside"] == [0]
    assert row["workers"] == [[1]]
    # A pool that ran before pinned() has workers nobody can find: pinning only the caller
    # could strand it beside a spinning worker, so nothing is pinned.
    assert rows["started"]["inside"] == [0, 1] and rows["started"]["workers"] == []


def test_an_idle_tenant_leaves_its_cores_free(bundles, reference, monkeypatch):
    # TVM's pool workers spin ~240 ms after each run by default, on cores the server
    # may have granted to someone else meanwhile; a tenant's pool must go to sleep.
    import psutil

    import mtcc

    monkeypatch.delenv("TVM_THREAD_POOL_SPIN_COUNT", raising=False)
    with mtcc.Server({"transformer": bundles["transformer"]}, cores=[0, 1], lanes=1, policy="block",
                     qos_ms={"transformer": 1e-3}) as server:  # a tight target: both cores
        tenant = psutil.Process(server.models["transformer"].process.pid)
        for _ in range(3):
            server.submit("transformer", reference["transformer"][0][0]).result(timeout=300)
            time.sleep(0.01)
        before = sum(tenant.cpu_times()[:2])
        time.sleep(0.5)
        burnt_ms = 1e3 * (sum(tenant.cpu_times()[:2]) - before)
    assert burnt_ms < 50, f"the idle tenant burnt {burnt_ms:.0f} ms of CPU in 0.5 s"


def test_bad_requests_are_refused_at_submit(bundles):
    import mtcc
    from mtcc.runtime.server import QueueFull

    x = np.zeros((1, 64, 128), np.float32)
    with mtcc.Server({"tf": bundles["transformer"]}, policy="block", max_queue=2) as server:
        cases = [(("nope", {"tokens": x}), "no model 'nope'"),
                 (("tf", {}), "missing input 'tokens'"),
                 (("tf", {"tokens": x, "extra": x}), "unexpected input 'extra'"),
                 (("tf", {"tokens": x[:, :32]}), "input 'tokens' is float32[1, 32, 128]"),
                 (("tf", {"tokens": x.astype(np.float64)}), "input 'tokens' is float64")]
        for args, message in cases:
            with pytest.raises(mtcc.BadInput) as info:
                server.submit(*args)
            assert message in str(info.value) and "\n" not in str(info.value)
        # Overload: the queue is bounded and submit refuses at once.
        futures, refused = [], 0
        for _ in range(50):
            try:
                futures.append(server.submit("tf", {"tokens": x}))
            except QueueFull as e:
                refused += 1
                assert "queue of 'tf' is full" in str(e)
        assert refused > 0
        for f in futures:
            f.result(timeout=120)
        assert server.stats()["models"]["tf"]["requests"] == len(futures)


def test_killed_tenant_fails_its_request_and_restarts(bundles, reference):
    import mtcc
    from mtcc.runtime.server import TenantFailed

    feeds_sq, want_sq, names_sq = reference["squeezenet"][0]
    feeds_tf, want_tf, names_tf = reference["transformer"][0]
    with mtcc.Server(bundles, policy="block") as server:
        victim = server.models["squeezenet"].process.pid
        # every tenant froze its loaded bundle out of the collector's passes (runtime/heap.py)
        assert all(m.frozen_objects > 0 for m in server.models.values())
        server.models["squeezenet"].frozen_objects = 0  # the restarted tenant must report its own
        # Enough work that one is running when the kill comes, however fast the bundle.
        doomed = [server.submit("squeezenet", feeds_sq) for _ in range(40)]
        others = [server.submit("transformer", feeds_tf) for _ in range(4)]
        time.sleep(0.05)
        os.kill(victim, signal.SIGKILL)
        failures = []
        for f in doomed:
            try:
                _check(f.result(timeout=300), want_sq, names_sq)
            except TenantFailed as e:
                failures.append(str(e))
        assert failures, "the request running when the tenant died must fail"
        assert all("squeezenet" in m and "SIGKILL" in m for m in failures)
        for f in others:
            _check(f.result(timeout=300), want_tf, names_tf)
        _check(server.submit("squeezenet", feeds_sq).result(timeout=300), want_sq, names_sq)
        stats = server.stats()
        assert stats["models"]["squeezenet"]["restarts"] == 1
        assert server.models["squeezenet"].process.pid != victim
        assert server.models["squeezenet"].frozen_objects > 0
        assert sorted(server.allocator.free) == server.cores


def test_close_ends_the_pipe_readers_before_it_frees_their_descriptors(bundles, reference, monkeypatch):
    """As the baseline server's test: a lane's reader busy with a reply when close()
    starts must have ended when close() returns (a descriptor freed under a live reader
    is read by whatever socket takes the number next)."""
    import mtcc

    step = mtcc.Server._step

    def slow_step(self, event):
        step(self, event)
        if event[0] == "reply":
            time.sleep(0.5)  # the lane's reader is here when close() starts

    monkeypatch.setattr(mtcc.Server, "_step", slow_step)
    feeds, want, names = reference["transformer"][0]
    before = set(threading.enumerate())
    server = mtcc.Server({"tf": bundles["transformer"]}, policy="block")
    readers = [t for t in set(threading.enumerate()) - before if t.name.startswith(("mtcc-control-", "mtcc-lane-"))]
    assert len(readers) == 1 + len(server.models["tf"].lanes)
    _check(server.submit("tf", feeds).result(timeout=120), want, names)
    server.close()
    assert [t.name for t in readers if t.is_alive()] == []


PARENT = """
import signal, sys, time, numpy as np, mtcc
# A shell's background job (CI, `make test &`) inherits SIGINT ignored (POSIX), and so would
# this script: behave like a program run in a terminal, where Ctrl-C raises.
signal.signal(signal.SIGINT, signal.default_int_handler)
server = mtcc.Server({{"tf": {bundle!r}}}, policy="block")
x = np.zeros((1, 64, 128), np.float32)
print("ready", flush=True)
how = sys.argv[1]
if how == "exception":
    with server:
        server.submit("tf", {{"tokens": x}}).result()
        raise RuntimeError("boom inside with")
elif how == "close":
    server.submit("tf", {{"tokens": x}}).result()
    server.close()
else:
    while True:
        server.submit("tf", {{"tokens": x}}).result()
"""


@pytest.mark.parametrize("how", ["close", "exception", "sigterm", "sigint"])
def test_no_orphans_and_no_shared_memory_left(bundles, tmp_path, how):
    before_pids, before_shm = _tenant_pids(), _segments()
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(PARENT.format(bundle=str(bundles["transformer"]))))
    proc = subprocess.Popen([sys.executable, str(script), how], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        if how in ("sigterm", "sigint"):
            time.sleep(0.5)
            proc.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGINT)
        proc.wait(60)
    finally:
        if proc.poll() is None:  # it hung: fail, but leave nothing running for the tests after us
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (_tenant_pids() - before_pids):
        time.sleep(0.1)
    assert _tenant_pids() - before_pids == set(), "tenant processes outlived their server"
    assert _segments() - before_shm == set(), "shared memory left in /dev/shm"
    if how == "exception":
        assert "boom inside with" in proc.stderr.read()


def _phase(server, model, feeds, n) -> dict:
    """Run n requests one after another; what the tenant's lane reported meanwhile."""
    import collections

    m = server.models[model]
    first = len(m.segments)
    for _ in range(n):
        server.submit(model, feeds).result(timeout=300)
    segments = list(m.segments)[first:]
    return {"slowdown": [s[5] for s in segments], "levels": collections.Counter(s[3] for s in segments),
            "switched": [s[4] for s in segments if s[4]], "segments": segments}


QUIET_SPEED = 1.05  # a request whose blocks ran within 5 % of the quiet phase's: no pressure to read


def _requests(segments) -> list[list]:
    """Segments grouped by request (each whole request starts at call 0)."""
    out = []
    for seg in segments:
        if seg[0] == 0 or not out:
            out.append([])
        out[-1].append(seg)
    return out


def _returned(after: dict, at_none: dict) -> bool:
    """Two requests in a row of `after` ran every block at level none with the variants
    the block ran at none before the stressor."""
    back = [all(seg[3] == "none" and (seg[4] or {}) == at_none.get(seg[0], seg[4] or {}) for seg in r)
            for r in _requests(after["segments"])]
    return any(a and b for a, b in zip(back, back[1:]))


def _judged(quiet: dict, after: dict) -> tuple[list, list, list]:
    """(the requests of `after` that follow one run at quiet speed, each request's own
    slowdown -- median of its blocks' time over the quiet phase's -- and all requests)."""
    import statistics

    quiet_us = collections.defaultdict(list)
    for seg in quiet["segments"]:
        quiet_us[seg[:2]].append(seg[2])
    requests = _requests(after["segments"])
    own = [statistics.median([seg[2] / statistics.median(quiet_us[seg[:2]]) for seg in r if seg[:2] in quiet_us] or [0.0])
           for r in requests]
    return [r for r, slowed_before in zip(requests[1:], own) if slowed_before < QUIET_SPEED], own, requests


@pytest.fixture(scope="module")
def pressure_bundle(models_dir, tmp_path_factory):
    """inception_v1 (x86-64-v4 records built for this CPU) and a random input: of the
    examples the one whose tables predict gains under `high` at 1 core that the selector
    acts on (4 of its 8 blocks, 1.2-6 ms each; squeezenet's and the transformer's
    confirmed tables predict none above the selector's block margin, and resnet50's
    pressure variant went with its cold-searched defaults, 2026-11-27)."""
    import mtcc
    from mtcc import frontend
    from mtcc.bench import baselines

    path = tmp_path_factory.mktemp("pressure") / "inception_v1.mtcc"
    mtcc.pack(models_dir / "inception_v1.onnx", ROOT / "schedules" / "inception_v1" / "llvm-x86-64-v4", path,
              target=HOST_MCPU)
    return path, baselines.random_inputs(frontend.load(models_dir / "inception_v1.onnx"), 0)


def test_pressure_estimate_and_choice_follow_a_real_stressor(pressure_bundle):
    """A tenant on core 0, mtcc's calibrated `high` stressor on core 1: the pressure
    estimate rises and the selector switches variants for blocks whose tables predict a
    gain under that level; when the stressor stops, both return.  The stressor is real,
    so on a machine where it does not slow the model (the vCPUs' caches barely shared)
    the test says so, with the numbers, instead of passing."""
    import statistics

    import mtcc
    from mtcc.interference import machine
    from mtcc.interference.calibration import load, stressor_for_level
    from mtcc.runtime.profile import ModelProfile
    from mtcc.runtime.selector import make_selector

    if len(machine.cores()) < 2:
        pytest.skip("needs 2 cores: one for the tenant, one for the stressor")
    path, feeds = pressure_bundle
    profile = ModelProfile.from_bundle(path)
    selector = make_selector("table")
    predicted = [b for b, (loud, quiet) in enumerate(zip(selector.choose_all(profile, 1, "high"),
                                                         selector.choose_all(profile, 1, "none"))) if loud != quiet]
    assert predicted, "the test's premise: the bundle's tables predict a switch under high at 1 core"
    calibration = load(ROOT / "schedules" / "calibration" / "amd-epyc.json")
    concurrent_before, reading_before = vcpus_concurrent()
    with mtcc.Server({"tenant": path}, cores=[0], policy="block-adaptive") as server:
        quiet = _phase(server, "tenant", feeds, 4)
        stressor = stressor_for_level(calibration, "high", cores=[1])
        stressor.start()
        try:
            loud = _phase(server, "tenant", feeds, 8)
        finally:
            stressor.stop()
        # After it, until the choice has returned (_returned), at most 60 requests: here the
        # host stayed 1.2-1.5x slower for seconds after the stressor's exit in 3 runs of 8.
        # The at-none choice of each block, by its first call:
        at_none = {seg[0]: seg[4] or {} for seg in quiet["segments"] + loud["segments"] if seg[3] == "none"}
        after = _phase(server, "tenant", feeds, 8)
        while not _returned(after, at_none) and len(after["segments"]) < 5 * 60:
            more = _phase(server, "tenant", feeds, 4)
            after = {key: after[key] + more[key] for key in ("slowdown", "segments")}
    concurrent_after, reading_after = vcpus_concurrent()
    sharing = f"before {reading_before}, after {reading_after}"
    s_quiet, s_loud = statistics.median(quiet["slowdown"]), statistics.median(loud["slowdown"][-20:])
    numbers = (f"slowdown estimate quiet {s_quiet:.3f}, under the stressor {s_loud:.3f}; levels quiet "
               f"{dict(quiet['levels'])}, loud {dict(loud['levels'])}; vCPUs {sharing}")
    from mtcc.runtime.pressure import DEAD_BAND

    if not (concurrent_before and concurrent_after):
        # Time-shared vCPUs: any busy thread on cpu1 (the server's own included) slows the
        # tenant ~2x, so neither "quiet" nor "after" is a controlled condition.
        pytest.skip(f"vCPUs time-shared, no controlled baseline: {numbers}")

    if s_quiet >= DEAD_BAND:
        # The host slowed the tenant with no stressor running (time-shared vCPUs, other
        # work): the proxy rightly reads that as pressure, so there is no quiet baseline.
        pytest.skip(f"the machine was disturbed without the stressor: {numbers}")
    if s_loud < DEAD_BAND:
        pytest.skip(f"the stressor did not slow this tenant measurably here: {numbers}")
    assert s_loud > s_quiet, numbers
    pressured = sum(n for level, n in loud["levels"].items() if level != "none")
    assert pressured > 0, numbers
    # The same block (by its first call) runs other variants under a level than at none.
    changed = [seg for seg in loud["segments"] if seg[3] != "none" and seg[0] in at_none
               and (seg[4] or {}) != at_none[seg[0]]]
    assert changed, f"no variant choice changed under pressure: {numbers}"
    # After the stressor stops the estimate decays and the blocks run as when quiet -- where
    # the host lets them: the proxy reads any slowdown against the speed it measured at the
    # server's start, the host's own drift included (a run here read the quiet phase 7 %
    # slower than the start, so requests at quiet speed sat on the dead band's edge and
    # flipped between none and high).  So the test asks what the issue asks -- the choice
    # returns -- as two requests in a row whose every block ran at none with its at-none
    # variants; and skips only when no request ran at quiet speed after the stressor.
    judged, own, requests = _judged(quiet, after)
    after_numbers = f"{numbers}; after ({len(requests)} requests, the last 12): own slowdown per request " \
                    f"{[round(x, 3) for x in own[-12:]]}, levels {[[seg[3] for seg in r] for r in requests[-12:]]}"
    if not _returned(after, at_none) and len(judged) < 3:
        pytest.skip(f"the host slowed the tenant after the stressor stopped: {after_numbers}")
    assert _returned(after, at_none), after_numbers
    segments_judged = [seg for r in judged for seg in r] or after["segments"]
    assert statistics.median(seg[5] for seg in segments_judged) < s_loud, after_numbers

"""Stressors, probes and calibration: the effect is real, and nothing outlives its parent.

Timings are only ever compared as ratios measured side by side in one test
(alone, stressed, alone, stressed, ...), never against absolute numbers.
"""
from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from mtcc.errors import BadInput, EnvironmentProblem
from mtcc.interference import (CacheStressor, ProbeProcess, SpinStressor, StreamStressor, calibrate,
                               choose_levels, compare, load, make_stressor, save, stressor_for_level)
from mtcc.interference import machine
from mtcc.interference.probes import robust_time
from conftest import vcpus_concurrent

CORES = machine.cores()
two_cores = pytest.mark.skipif(len(CORES) < 2, reason="needs 2 cores: probe and stressor apart")
MiB = 1 << 20


def gone(pids: list[int], timeout: float = 5.0) -> list[int]:
    """Pids still running (zombies count as gone) after waiting up to `timeout`."""
    end = time.time() + timeout
    alive = list(pids)
    while alive and time.time() < end:
        still = []
        for pid in alive:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    still.append(pid)
            except psutil.NoSuchProcess:
                pass
        alive = still
        if alive:
            time.sleep(0.05)
    return alive


# --- the effect ---------------------------------------------------------------------

def side_by_side(probe, stressor, spin, pairs: int) -> tuple[float, float, dict]:
    """Median over interleaved pairs of t(beside)/t(alone) for the stressor and the
    control, and the wall time each was resumed."""
    stressed, control, resumed = [], [], {"stressor": 0.0, "spin": 0.0}
    for _ in range(pairs):
        for name, neighbour, ratios in (("stressor", stressor, stressed), ("spin", spin, control)):
            alone = robust_time(probe.samples("memory", 0.06))
            t0 = time.perf_counter()
            neighbour.resume()
            beside = robust_time(probe.samples("memory", 0.06))
            neighbour.pause()
            resumed[name] += time.perf_counter() - t0
            ratios.append(beside / alone)
    return statistics.median(stressed), statistics.median(control), resumed


MIN_SLOWDOWN = 1.05  # calibration.MIN_USABLE_SLOWDOWN: below it, within run-to-run drift
# The spin control touches no memory: on concurrent vCPUs it leaves the memory probe
# alone.  Measured on the project's 2-vCPU AMD EPYC VM (probe on core 0, neighbour on
# core 1, 12 interleaved pairs, 11 runs, some beside another test run): spin 0.90-1.02x
# while the stride writer read 1.13-1.31x.  1.10 leaves 8 points over the worst control
# seen and is still well below any stressor slowdown the calibration calls usable
# together with the control (choose_levels wants 1.05x *and* 1.05x the control).
CONTROL_MAX = 1.10
CONTROL_SHARE = 0.5  # the control's slowdown at most half the stream writer's (seen: <= 0.1 of it)


def _cpu_s(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


@two_cores
def test_stressor_slows_the_memory_probe_and_the_spin_control_does_not():
    """Strongest stressor found here (64-byte-stride writes over 4x the LLC) on core 1,
    memory-bound probe on core 0, interleaved pairs.  A spin loop beside the probe is
    the control: busy like the stressor, but touching no memory.

    Always asserted: both neighbours are pinned to their core and busy whenever resumed.
    On concurrent vCPUs the control stays near 1 (CONTROL_MAX) and, when the stressor
    shows a slowdown, the control's is far smaller (CONTROL_SHARE of it).  On this
    project's 2-vCPU VMs the effect comes and goes with the host (measured 1.0-1.7x
    within minutes), and time-shared vCPUs make any busy neighbour read ~2x: then the
    test skips, printing the numbers (`pytest -ra` lists the reason)."""
    tries = []
    with ProbeProcess(CORES[0], nice=-10) as probe, \
            StreamStressor(cores=CORES[1:2], pattern="stride", nice=-10) as stressor, \
            SpinStressor(cores=CORES[1:2], nice=-10) as spin:
        workers = {"stressor": psutil.Process(stressor.pids[0]), "spin": psutil.Process(spin.pids[0])}
        for proc in workers.values():
            assert proc.cpu_affinity() == CORES[1:2]
        stressor.pause()
        spin.pause()
        sharing = [vcpus_concurrent()]
        for _ in range(3):
            before = {k: _cpu_s(p) for k, p in workers.items()}
            ratio, control_ratio, resumed = side_by_side(probe, stressor, spin, pairs=12)
            for k, proc in workers.items():
                busy = _cpu_s(proc) - before[k]
                print(f"{k} busy {busy:.2f} s of {resumed[k]:.2f} s resumed")
                # a loose bound: CPU-time accounting is coarse and SIGCONT takes a moment
                assert busy > 0.3 * resumed[k], f"{k} ran {busy:.2f} s of {resumed[k]:.2f} s resumed"
            tries.append((ratio, control_ratio))
            if ratio >= MIN_SLOWDOWN and control_ratio <= CONTROL_MAX:
                break
        sharing.append(vcpus_concurrent())
    # The host's own swings (measured here: the same model 49 or 72 ms a run, minutes
    # apart, with nothing of ours beside it) can land on one try's pairs; a defect of
    # the control (wrong core, touching memory) slows it in every try.  So the verdict is
    # on the try with the quietest control -- the strongest stressor among those within
    # CONTROL_MAX.
    usable = [t for t in tries if t[1] <= CONTROL_MAX]
    ratio, control_ratio = max(usable) if usable else min(tries, key=lambda t: t[1])
    report = (f"memory probe slowdown beside the stressor {ratio:.3f}x, beside a spin loop "
              f"{control_ratio:.3f}x (tries {[(round(a, 3), round(b, 3)) for a, b in tries]}; "
              f"vcpu sharing before/after {[reading for _, reading in sharing]}, load {machine.load_average()})")
    print(report)
    if not all(concurrent for concurrent, _ in sharing):
        pytest.skip(f"vCPUs not concurrent (or unknown): ratios say nothing about interference: {report}")
    assert control_ratio <= CONTROL_MAX, f"the memory-free control slowed the probe: {report}"
    if ratio < MIN_SLOWDOWN:
        pytest.skip(f"no usable interference on this machine right now: {report}")
    assert control_ratio - 1 <= CONTROL_SHARE * (ratio - 1), f"the control is not far below the stressor: {report}"


def test_probes_run_in_process():
    from mtcc.interference import make_probe, time_probe

    for name in ("memory", "compute"):
        samples = time_probe(make_probe(name), seconds=0.01, min_repeats=3)
        assert len(samples) >= 3 and all(s > 0 for s in samples)
    with pytest.raises(ValueError):
        make_probe("disk")


# --- no orphans ---------------------------------------------------------------------

CHILD = textwrap.dedent("""
    import json, signal, sys, time
    # A shell's background job inherits SIGINT ignored (POSIX), and Python keeps it
    # so: behave like a program run in a terminal, where Ctrl-C raises.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.path.insert(0, {root!r})
    from mtcc.interference import CacheStressor, StreamStressor
    cores = {cores!r}
    a = CacheStressor(4 << 20, cores=cores[-1:]).start()          # no `with`: atexit's job
    b = StreamStressor(64 << 20, cores=cores, pattern="stride").start()
    if {paused!r}:
        a.pause(); b.pause()                                       # SIGSTOPped workers too
    print(json.dumps(a.pids + b.pids), flush=True)
    time.sleep(60)
""")


def spawn_parent(paused: bool = False) -> tuple[subprocess.Popen, list[int]]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = CHILD.format(root=root, cores=CORES[:2], paused=paused)
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    pids = json.loads(parent.stdout.readline())
    assert len(pids) == 1 + len(CORES[:2])
    assert all(psutil.pid_exists(p) for p in pids)
    return parent, pids


@pytest.mark.parametrize("sig,paused", [(signal.SIGKILL, False), (signal.SIGKILL, True),
                                        (signal.SIGINT, False), (signal.SIGTERM, False)],
                         ids=["sigkill", "sigkill-paused", "sigint", "sigterm"])
def test_no_orphans_when_the_parent_dies(sig, paused):
    parent, pids = spawn_parent(paused)
    time.sleep(0.2)
    parent.send_signal(sig)
    parent.wait(10)
    assert gone(pids) == [], f"stressor workers outlived a parent killed by {sig.name}"


def test_no_orphans_after_an_exception_in_with():
    with pytest.raises(RuntimeError):
        with CacheStressor(4 * MiB, cores=CORES[:1]) as s:
            pids = s.pids
            assert s.running
            raise RuntimeError("boom")
    assert not s.running
    assert gone(pids, timeout=0.5) == []


def test_stop_is_idempotent_and_restartable():
    s = SpinStressor(cores=CORES[:1])
    s.start()
    first = s.pids
    s.pause()
    s.stop()           # a paused worker is resumed, then stopped
    s.stop()
    assert gone(first, timeout=0.5) == []
    with s:
        assert s.running and s.pids != first
    assert not s.running


# --- parameters ---------------------------------------------------------------------

def test_stressor_parameters_and_round_trip():
    s = StreamStressor(64 * MiB, cores=[0], pattern="stride", duty=0.5)
    d = s.describe()
    assert d["kind"] == "stream" and d["pattern"] == "stride" and d["working_set_bytes"] == 64 * MiB
    assert make_stressor(d).describe() == d
    assert CacheStressor().working_set_bytes >= machine.cache_bytes(2, 0)   # sized from caches
    assert StreamStressor().working_set_bytes > machine.llc_bytes() or machine.llc_bytes() > 128 * MiB
    with pytest.raises(BadInput):
        CacheStressor(pattern="copy")
    with pytest.raises(BadInput):
        StreamStressor(duty=0)
    with pytest.raises(BadInput):
        CacheStressor(4 * MiB).start(cores=[max(CORES) + 100])
    with pytest.raises(BadInput):
        make_stressor({"kind": "disk"})


def test_machine_facts_are_read_or_absent():
    assert machine.cores() == CORES
    assert machine.llc_bytes() > 0
    counters = machine.hardware_counters()
    assert counters["proxy"] in ("software", "counters")


# --- levels, files, comparison ------------------------------------------------------

def setting(mem, comp=1.0, iqr=None):
    iqr = iqr or [mem - 0.02, mem + 0.02]
    return {"stressor": {"kind": "stream", "pattern": "stride", "working_set_bytes": 64 * MiB,
                         "cores": [1]},
            "memory_slowdown": mem, "compute_slowdown": comp, "memory_slowdown_iqr": iqr}


def test_levels_span_the_measured_range():
    measured = {"control-spin": setting(1.0), "a": setting(1.02), "b": setting(1.12),
                "c": setting(1.25), "d": setting(1.4)}
    r = choose_levels(measured, ["concurrent", "concurrent"])
    assert r["usable"] and list(r["levels"]) == ["none", "low", "mid", "high"]
    assert [r["levels"][lv]["setting"] for lv in ("low", "mid", "high")] == ["b", "c", "d"]


def test_no_usable_interference_is_said_plainly():
    r = choose_levels({"control-spin": setting(1.0), "a": setting(1.02)}, ["concurrent"])
    assert not r["usable"] and list(r["levels"]) == ["none"]
    assert "no usable interference on this machine" in r["verdict"]
    # time-shared vCPUs: everything ~2x, the memory-free control too -> not interference
    shared = {"control-spin": setting(1.9, 1.9), "a": setting(1.92, 1.9)}
    r = choose_levels(shared, ["time-shared"])
    assert not r["usable"] and r["time_sharing_suspected"] and "time-sharing" in r["verdict"]


def test_save_load_compare(tmp_path):
    levels = choose_levels({"control-spin": setting(1.0), "b": setting(1.1), "d": setting(1.3)},
                           ["concurrent"])
    cal = {"format": "mtcc-calibration/1", "usable": True, **levels}
    save(cal, tmp_path / "cal.json")
    again = load(tmp_path / "cal.json")
    assert compare(cal, again)["within_tolerance"]
    shifted = json.loads(json.dumps(cal))
    shifted["levels"]["high"]["memory_slowdown"] += 0.2
    assert compare(cal, shifted, tolerance=0.25)["within_tolerance"]
    result = compare(cal, shifted, tolerance=0.1)
    assert not result["within_tolerance"] and "high" in result["reasons"][0]
    assert stressor_for_level(again, "none") is None
    assert stressor_for_level(again, "high", cores=[0]).cores == [0]
    with pytest.raises(BadInput):
        stressor_for_level(again, "extreme")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(BadInput):
        load(tmp_path / "bad.json")
    with pytest.raises(BadInput):
        load(tmp_path / "missing.json")


@pytest.mark.slow  # a real 10 s calibration, ~20 s in all
@two_cores
def test_calibrate_smoke(tmp_path, capsys):
    cal = calibrate(cores=CORES[:2], seconds_budget=10, out=tmp_path / "cal.json")
    assert capsys.readouterr().out == ""           # progress goes to stderr only
    assert load(tmp_path / "cal.json")["levels"]["none"]["memory_slowdown"] == 1.0
    for key in ("machine", "hardware_counters", "vcpu_sharing", "settings", "verdict", "usable"):
        assert key in cal
    assert set(cal["vcpu_sharing"]) == {"before", "after"}
    assert all("memory_slowdown" in s and "compute_slowdown" in s for s in cal["settings"].values())


def test_calibrate_needs_two_cores():
    with pytest.raises(EnvironmentProblem):
        calibrate(cores=CORES[:1])

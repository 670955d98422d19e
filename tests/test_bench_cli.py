"""`mtcc bench` end to end on a packed bundle: the JSON contract, the plots, the
simulated rows, --fail-under's exit code; and flags refused before any work.  A
behaviour test: tiny durations, no figure is asserted."""
from __future__ import annotations

import json

import pytest

from conftest import HOST_MCPU, ROOT, run_mtcc
from mtcc.tune import database


def test_bad_flags_are_refused_naming_them():
    proc = run_mtcc("bench", "--qos", "fast", timeout=120)
    assert proc.returncode == 2 and "--qos 'fast'" in proc.stderr, proc.stderr
    proc = run_mtcc("bench", "--policy", "fifo", timeout=120)
    assert proc.returncode == 2 and "--policy fifo" in proc.stderr, proc.stderr
    proc = run_mtcc("bench", "no-such.mtcc", timeout=120)
    assert proc.returncode == 2 and "no-such.mtcc" in proc.stderr, proc.stderr


@pytest.mark.slow
def test_bench_reports_every_system_and_fails_under(models_dir, example_bundle, tmp_path):
    bundle = example_bundle("transformer")
    plots = tmp_path / "plots"
    proc = run_mtcc("bench", str(bundle), "--onnx", str(models_dir / "transformer.onnx"),
                    "--policy", "block-adaptive", "--policy", "model-fcfs", "--baseline", "onnxruntime",
                    "--qos", "2", "--duration", "1", "--max-trials", "2", "--simulate", "4",
                    "--plots", str(plots), "--json", "--fail-under", "1000", timeout=900)
    assert proc.returncode == 1, proc.stderr  # no system is 1000x another: fell short
    report = json.loads(proc.stdout)
    labels = {"mtcc block-adaptive", "mtcc model-fcfs", "onnxruntime/pinned", "onnxruntime/shared"}
    assert set(report["config"]["systems"]) == labels
    rows = [r for r in report["results"] if r["qos"] == "2x@all"]
    assert {r["label"] for r in rows} == labels
    for r in rows:
        assert r["model"] == "transformer" and r["max_qos_rate"] >= 0
        assert r["p50_ms"] <= r["p99_ms"] and 0 <= r["within_qos"] <= 1
        # every row carries its outputs' distance to ONNX Runtime's, measured on the bench's inputs
        assert 0 <= r["max_abs_err_vs_onnxruntime"] < 1e-3, r
        # a best rate of 0 reads "below the lowest rate tried": each row names that rate
        tried = [rate for search in report["searches"][f"2x@all {r['label']}"] for rate, _ in search]
        assert r["lowest_rate_tried"] == pytest.approx(min(tried), rel=1e-3)
        # each trial names its models' shares; the trial's share is the worst model's
        trials = report["search_trials_by_model"][f"2x@all {r['label']}"]
        pairs = [pair for search in report["searches"][f"2x@all {r['label']}"] for pair in search]
        assert [t["rate"] for t in trials] == [rate for rate, _ in pairs]
        assert [min(m["within_qos"] for m in t["models"].values()) for t in trials] == [s for _, s in pairs]
    assert {r["max_abs_err_vs_onnxruntime"] for r in rows if r["system"] == "onnxruntime"} == {0.0}
    summary = report["summary"]
    for key in ("rate_ratio_vs_model_wise_fcfs", "rate_ratio_vs_onnxruntime", "mean_latency_ratio_vs_model_wise_fcfs"):
        assert key in summary
    vcpu = report["machine"]["vcpu_sharing"]
    assert vcpu["before"] and vcpu["after"] and vcpu["during"]
    # targets: the same absolute ms for every system, 2x mtcc's isolated latency on all cores
    iso = report["config"]["models"]["transformer"]["isolated_ms_by_cores"]
    cores = report["machine"]["cores"]
    assert report["config"]["qos_ms"]["2x@all"]["transformer"] == pytest.approx(2 * iso[str(cores)], rel=1e-3)
    simulated = {(s["cores"], s["policy"]): s for s in report["simulated"]}
    assert {c for c, _ in simulated} == {cores, 4}
    assert simulated[(4, "block-adaptive")]["extrapolated"] is (4 > cores)
    assert "error_vs_real" in simulated[(cores, "model-fcfs")]
    assert report["config"]["simulator_unit_overhead_us"] > 0  # taken from the real servers
    quantiles = report["config"]["simulator_unit_overhead_quantiles_us"]  # ... with their spread, drawn from
    assert len(quantiles) == 101 and quantiles == sorted(quantiles) and quantiles[0] < quantiles[-1]
    assert quantiles[50] == pytest.approx(report["config"]["simulator_unit_overhead_us"], abs=0.1)
    assert report["config"]["simulator_cold_us"]["transformer"] >= 0  # ... and so is a cold lane's cost
    model = report["config"]["models"]["transformer"]  # ... from its time alone after an idle pause
    assert report["config"]["simulator_cold_us"]["transformer"] == pytest.approx(
        max(0.0, model["after_pause_ms"] - iso[str(cores)]) * 1e3, abs=5)
    names = sorted(p.name for p in plots.iterdir())
    assert {"latency-cdf.png", "qos-vs-rate.png", "core-grants-block-adaptive.png", "simulated-cores.png"} <= set(names)
    for p in plots.iterdir():
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_single_times_the_relax_vm_and_the_call_plan_executor(models_dir):
    proc = run_mtcc("bench", "--single", str(models_dir / "transformer.onnx"),
                    "--schedules", str(ROOT / "schedules" / "transformer" / "llvm-x86-64-v4"),
                    "--threads", "1", "--repeats", "3", "--warmup", "1", "--baseline", "onnxruntime", "--json",
                    timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["config"]["target"] == HOST_MCPU
    rows = {r["system"]: r for r in report["results"]}
    assert set(rows) == {"mtcc", "mtcc-plan", "onnxruntime"}
    for r in rows.values():  # every system computes the model: numerics against ONNX Runtime
        assert r["runs"] == 3 and r["p50_ms"] > 0 and r["max_abs_err_vs_onnxruntime"] < 1e-3
    plan = rows["mtcc-plan"]
    assert plan["ratio_to_relax_vm"] == pytest.approx(plan["p50_ms"] / rows["mtcc"]["p50_ms"], rel=0.01)
    assert report["summary"]["plan_executor_ratio_to_relax_vm"] == {"transformer@1t": plan["ratio_to_relax_vm"]}
    assert isinstance(plan["variants_switched"], dict)  # what the selector picked for 1 core alone
    # where the schedules were searched, and a note where that was another kind of CPU
    meta = database.read_meta(ROOT / "schedules" / "transformer" / "llvm-x86-64-v4")
    assert report["config"]["models"][0]["schedules_searched_on"] == database.searched_on(meta) != []
    assert ("not on this CPU" in proc.stderr) == bool(database.searched_elsewhere(meta, report["machine"]))


def test_single_runs_the_plan_with_the_variants_the_selector_picks_for_its_cores(example_bundle):
    """bench --single's mtcc-plan runs, per block, what the table selector picks for its
    thread count alone: the executor's functions are those variants, not the defaults."""
    import mtcc
    from mtcc.bench.single import _select_for_cores
    from mtcc.runtime.profile import ModelProfile
    from mtcc.runtime.selector import make_selector

    path = example_bundle("transformer")
    profile = ModelProfile.from_bundle(path)
    expected = {}
    for block in range(len(profile.blocks)):
        for task, vid in make_selector("table").choose(profile, block, 2, "none").items():
            if vid != profile.default[task]:
                expected[task] = vid
    loaded = mtcc.load(path)
    switched = _select_for_cores(loaded, path, 2)
    assert switched == expected
    chosen = loaded.chosen()
    assert all(chosen[task] == [vid] for task, vid in switched.items()), chosen
    assert all(chosen[task] == [profile.default[task]] for task in chosen if task not in switched), chosen


def test_examples_are_built_from_schedules_tuned_for_this_level(tmp_path):
    # Schedules tuned for the CPU's level win where committed; else the portable x86-64-v4
    # records are built for it, and the bundle's name says so (no stale file is reused for
    # the other source).
    from mtcc.bench.qos import example_bundle_path, example_schedules
    from mtcc.tune.database import RECORDS

    def commit(level):
        folder = tmp_path / "schedules" / "m" / f"llvm-{level}"
        folder.mkdir(parents=True)
        (folder / RECORDS).write_text("[0]\n")
        return folder

    portable = commit("x86-64-v4")
    assert example_schedules(tmp_path, "m", "x86-64-v4") == portable
    assert example_schedules(tmp_path, "m", "x86-64-v3") == portable
    assert example_bundle_path(tmp_path, "m", "x86-64-v4").name == "m.mtcc"
    assert example_bundle_path(tmp_path, "m", "x86-64-v3").name == "m-x86-64-v4-as-x86-64-v3.mtcc"
    own = commit("x86-64-v3")
    assert example_schedules(tmp_path, "m", "x86-64-v3") == own
    assert example_bundle_path(tmp_path, "m", "x86-64-v3").name == "m-x86-64-v3.mtcc"
    assert example_schedules(tmp_path, "m", "x86-64-v4") == portable


@pytest.mark.slow  # a real bench, stopped by Ctrl-C after its first trial
def test_ctrl_c_reports_what_was_measured(models_dir, example_bundle):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) in the middle of the
    rate searches: exit 130, and the report still comes out, marked interrupted, with the
    trials measured until then; no tenant is left behind."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    bundle = example_bundle("transformer")
    # A shell's background job (CI, `make test &`) inherits SIGINT ignored (POSIX), and so
    # would the bench: run it as a terminal would, where Ctrl-C raises.
    as_in_a_terminal = ("import signal, sys, runpy; signal.signal(signal.SIGINT, signal.default_int_handler); "
                        "sys.argv[0] = 'mtcc'; runpy.run_module('mtcc.cli', run_name='__main__')")
    proc = subprocess.Popen([sys.executable, "-c", as_in_a_terminal, "bench", str(bundle), "--policy", "model-fcfs",
                             "--no-baselines", "--qos", "2", "--duration", "1", "--max-trials", "8", "--json"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    seen = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen.append(line)
            if "req/s:" in line:  # a trial of the search was measured
                break
        assert any("req/s:" in line for line in seen), "".join(seen)[-3000:]
        tenants = [p for p in psutil.Process(proc.pid).children(recursive=True)]
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, "".join(seen)[-2000:] + err[-3000:]
    report = json.loads(out)
    assert report["interrupted"].startswith("during the rate searches"), report["interrupted"]
    trials = report["searches"]["2x@all mtcc model-fcfs"][0]
    assert len(trials) >= 1 and report["config"]["fixed_rate"] is None and report["simulated"] == []
    (row,) = [r for r in report["results"] if r["model"] == "transformer"]
    assert row["search_done"] is False and row["lowest_rate_tried"] == pytest.approx(min(r for r, _ in trials), rel=1e-3)
    gone = psutil.wait_procs(tenants, timeout=10)[1]
    assert tenants and not gone, f"tenants left running: {gone}"

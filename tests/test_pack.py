"""`mtcc pack`, `mtcc.load`, `mtcc run` and `mtcc inspect BUNDLE` (issue 6).

The schedules are made here in a second, without tuning: for every task of the
example transformer, hand-written schedules (none, outer loops parallel, inner loop
split and unrolled) are committed as MetaSchedule records with made-up times, the
parallel one fastest.  A second folder adds a hand-written variants.json: the top-2
records of `matmul` (the best among them) and the 2nd and 3rd of `softmax` (the
applied best left out, so its calls must switch to the first listed variant).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import HOST_MCPU, run_mtcc
from mtcc.packing import blocks as blocks_rule, pack
from mtcc.bundle import container
from mtcc.runtime import loader
from mtcc.tune import database

TARGET, CORES = HOST_MCPU, 2


# ------------------------------------------------------------------ fixtures
def _hand_schedules(mod):
    """Traces of hand-written schedules of a task: none, the first block's outer loops
    fused and parallel, its innermost loop split by 8 and unrolled (those that apply)."""
    from tvm import s_tir

    traces = [s_tir.Schedule(mod).trace]
    for how in ("parallel", "unroll"):
        try:
            sch = s_tir.Schedule(mod)
            block = sch.get_child_blocks(sch.get_sblock("root", "main"))[0]
            loops = sch.get_loops(block)
            if how == "parallel":
                sch.parallel(sch.fuse(*loops[:2]) if len(loops) > 1 else loops[0])
            else:
                _, i = sch.split(loops[-1], factors=[None, 8])
                sch.unroll(i)
            traces.append(sch.trace)
        except Exception:  # noqa: BLE001 - a schedule that does not fit this task
            continue
    return traces


@pytest.fixture(scope="module")
def schedules(tmp_path_factory, models_dir) -> dict:
    import tvm.s_tir.meta_schedule as ms

    from mtcc import frontend
    from mtcc.frontend import tasks
    from mtcc.target import describe, make_target
    from mtcc.tune.database import DatabaseLines

    model_path = models_dir / "transformer.onnx"
    root = tmp_path_factory.mktemp("pack")
    target = make_target(TARGET, CORES)
    model, mod = frontend.import_model(model_path)
    extracted = ms.relax_integration.extract_tasks(tasks.legalize_and_fuse(mod, target, "NCHWc"), target)
    plain = root / "schedules"
    plain.mkdir()
    db = ms.database.JSONDatabase(work_dir=str(plain), module_equality="structural")
    for ext in extracted:
        func_mod = ext.dispatched[0]
        workload = db.commit_workload(func_mod)
        args = ms.arg_info.ArgInfo.from_prim_func(func_mod["main"])
        secs = {0: 100e-6, 1: 50e-6, 2: 80e-6}  # none, parallel (best), unroll
        for k, trace in enumerate(_hand_schedules(func_mod)):
            db.commit_tuning_record(ms.database.TuningRecord(trace, workload, [secs[k]], target, args))
    (plain / "tune.json").write_text(json.dumps({"model": model.name, "model_sha256": model.sha256,
                                                  "target": describe(target), "mcpu": TARGET,
                                                  "num_cores": CORES, "layout": "NCHWc"}))
    with_variants = root / "schedules_variants"
    shutil.copytree(plain, with_variants)
    lines = DatabaseLines(plain)
    wl = lines.task_workloads(extracted)

    def entry(task, records):
        return {"name": task, "best_alone_differs_under_pressure": True, "variants": [
            {"id": f"r{r}", "trace": {"database": "database_tuning_record.json", "workload": wl[task],
                                      "record": r, "sha256": lines.record_sha(r)},
             "latency_us": {"1c/none": 2e6 * lines.record_secs(r), "2c/none": 1e6 * lines.record_secs(r),
                            "1c/high": 3e6 * lines.record_secs(r)}, "footprint": 1.1}
            for r in records]}

    top = {t: lines.candidates(wl[t], 3)[0] for t in ("matmul", "softmax")}
    assert len(top["matmul"]) >= 2 and len(top["softmax"]) >= 3
    (with_variants / "variants.json").write_text(json.dumps({
        "model": model.name, "target": describe(target),
        "tasks": [entry("matmul", top["matmul"][:2]), entry("softmax", top["softmax"][1:3])]}))
    return {"root": root, "plain_dir": plain, "variants_dir": with_variants, "top": top, "model": model,
            "model_path": model_path}


@pytest.fixture(scope="module")
def packed(schedules) -> dict:
    root = schedules["root"]
    before = _listing(schedules["plain_dir"]) + _listing(schedules["variants_dir"])
    plain = pack(schedules["model_path"], schedules["plain_dir"], root / "plain.mtcc")
    var = pack(schedules["model_path"], schedules["variants_dir"], root / "variants.mtcc")
    assert _listing(schedules["plain_dir"]) + _listing(schedules["variants_dir"]) == before, \
        "pack wrote into a schedules folder"
    return {**schedules, "plain": plain, "variants": var}


def _listing(folder: Path) -> list:
    return sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in [folder, *folder.rglob("*")])


@pytest.fixture(scope="module")
def reference(schedules):
    from mtcc.bench import baselines

    model = schedules["model"]
    feeds = baselines.random_inputs(model, 0)
    return feeds, baselines.OnnxRuntime(model).run(feeds)


def _close(got, want, rel=1e-4):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=rel, atol=rel * float(np.abs(w).max() or 1.0))


def _one_line_error(proc, *needles):
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mtcc: error:"), proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    assert proc.stdout == ""


# ------------------------------------------------------------------ packing
def test_pack_twice_identical_bytes_and_json_contract(packed, tmp_path):
    """API pack in this process vs CLI pack in another: the same bytes; --json prints
    exactly one object with the contract's fields."""
    first = packed["variants"]
    proc = run_mtcc("pack", packed["model_path"], "--schedules", packed["variants_dir"], "-o", tmp_path / "again.mtcc", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)  # exactly one JSON object on stdout
    for key in ("path", "size", "sha256", "variants", "blocks", "seconds"):
        assert key in out
    data = Path(out["path"]).read_bytes()
    assert data == Path(first["path"]).read_bytes(), "packing twice gave different bytes"
    assert out["sha256"] == first["sha256"] == container.sha256(data) and out["size"] == len(data)
    assert out["variants"] == first["variants"] and out["blocks"] == first["blocks"]


def test_bundle_members_and_manifest(packed):
    b = container.open_bundle(packed["plain"]["path"])
    m = b.manifest
    assert b.names[0] == container.LIBRARY or container.LIBRARY in b.names
    assert {container.LIBRARY, container.PLAN_MEMBER, container.SELECTOR_MEMBER} <= set(b.names)
    weights = [n for n in b.names if n.startswith("weights/")]
    assert weights and all(n.endswith(".npy") for n in weights)
    for n in weights:
        b.array(n)  # plain .npy, allow_pickle=False
    assert m["model"]["sha256"] == packed["model"].sha256
    from mtcc import cpu

    assert m["target"]["mcpu"] == TARGET and m["cpu_features"] == cpu.required_features_for_mcpu(TARGET)
    assert m["toolchain"]["version"] and m["variants_source"] == "database"
    assert [i["name"] for i in m["inputs"]] == ["tokens"]
    # Blocks cover the call plan exactly, in order, at most 8.
    calls = m["plan"]["calls"]
    assert 1 < len(m["blocks"]) <= 8
    assert m["blocks"][0]["start"] == 0 and m["blocks"][-1]["end"] == calls
    assert all(a["end"] == c["start"] for a, c in zip(m["blocks"], m["blocks"][1:]))
    assert abs(sum(bl["share"] for bl in m["blocks"]) - 1) < 1e-3
    # Without variants.json: one variant per task, v0, with the database's best time.
    for t in m["variants"]:
        assert [v["id"] for v in t["variants"]] == ["v0"] and t["default"] == "v0"
        v = t["variants"][0]
        assert v["latency_us"] == {f"{CORES}c/none": 50.0}, (t["task"], v)


def test_load_and_run_match_onnxruntime(packed, reference):
    import mtcc

    feeds, want = reference
    loaded = mtcc.load(packed["plain"]["path"])
    _close(loaded.run(feeds), want)
    _close(loaded.run(*feeds.values()), want)
    assert list(loaded.run_dict(feeds)) == ["hidden_states"]
    with pytest.raises(mtcc.BadInput, match="unexpected input 'nope'"):
        loaded.run({"nope": feeds["tokens"]})
    with pytest.raises(mtcc.BadInput, match="missing input 'tokens'"):
        loaded.run({})
    with pytest.raises(mtcc.BadInput, match="float32"):
        loaded.run({"tokens": feeds["tokens"].astype(np.float64)})


def test_every_variant_forced_gives_the_same_outputs(packed, reference):
    import mtcc

    feeds, want = reference
    loaded = mtcc.load(packed["variants"]["path"])
    top = packed["top"]
    assert [v.id for v in loaded.variants["matmul"]] == [f"r{r}" for r in top["matmul"][:2]]
    # softmax: the applied best (top[0]) is not listed, so its calls run the first listed one.
    assert loaded.defaults["softmax"] == f"r{top['softmax'][1]}"
    assert {v.function for v in loaded.variants["softmax"]} == {"softmax__v0", "softmax__v1"}
    assert loaded.variants["matmul"][0].function == "matmul"
    assert loaded.variants["matmul"][1].function == "matmul__v1"
    default = loaded.run(feeds)
    _close(default, want)
    n_forced = 0
    for task, vs in loaded.variants.items():
        for v in vs:
            loaded.reset()
            loaded.select({task: v.id})
            assert loaded.chosen()[task] == [v.id]
            got = loaded.run(feeds)
            _close(got, want)
            _close(got, default, rel=1e-5)
            n_forced += 1
    assert n_forced == packed["variants"]["variants"]
    # Per block: only the calls of one block switch.
    loaded.reset()
    block = next(b for b in loaded.blocks if "matmul" in b["tasks"])
    loaded.select({"matmul": loaded.variants["matmul"][1].id}, block=block["index"])
    assert len(loaded.chosen()["matmul"]) == 2
    _close(loaded.run(feeds), want)
    with pytest.raises(mtcc.BadInput, match="no variant"):
        loaded.select({"matmul": "r99999"})


# ------------------------------------------------------------------ CLI
def test_cli_run_npz_in_and_out(packed, reference, tmp_path):
    feeds, want = reference
    np.savez(tmp_path / "in.npz", **feeds)
    other = packed["top"]["matmul"][1]
    proc = run_mtcc("run", packed["variants"]["path"], "--input", tmp_path / "in.npz", "--output",
                    tmp_path / "out.npz", "--cores", "1", "--variant", f"matmul=r{other}", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["outputs"] == {"hidden_states": {"shape": [1, 64, 128], "dtype": "float32"}}
    assert out["latency_ms"] > 0 and out["cores"] == [sorted(os.sched_getaffinity(0))[0]]
    assert out["variants"]["matmul"] == [f"r{other}"]
    with np.load(tmp_path / "out.npz", allow_pickle=False) as z:
        assert z.files == ["hidden_states"]
        _close([z["hidden_states"]], want)


def test_cli_profile_times_every_call_with_the_variant_that_ran(packed):
    from mtcc.bundle import container
    from mtcc.bundle.container import PLAN_MEMBER

    other = packed["top"]["matmul"][1]
    path = packed["variants"]["path"]
    proc = run_mtcc("profile", path, "--cores", "1", "--variant", f"matmul=r{other}", "--repeat", "3", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    bundle = container.open_bundle(path)
    plan_calls = bundle.json(PLAN_MEMBER)["calls"]
    flops = {t["name"]: t["flops"] for t in bundle.manifest["tasks"]}
    assert [c["index"] for c in out["calls"]] == list(range(len(plan_calls)))
    assert [c["task"] for c in out["calls"]] == [c["task"] for c in plan_calls]
    assert out["cores"] == [sorted(os.sched_getaffinity(0))[0]] and out["whole_ms"] > 0
    assert all(c["us"] > 0 and c["flops"] == flops[c["task"]] for c in out["calls"])
    # the forced variant ran every matmul call; every other task its default
    assert {c["variant"] for c in out["calls"] if c["task"] == "matmul"} == {f"r{other}"}
    tasks = {t["task"]: t for t in out["tasks"]}
    assert sum(t["calls"] for t in tasks.values()) == len(plan_calls)
    assert sum(t["share"] for t in tasks.values()) == pytest.approx(1.0, abs=0.01)
    matmul = tasks["matmul"]
    assert matmul["flops"] > 0 and matmul["gflops_per_s"] == pytest.approx(matmul["flops"] / matmul["us"] / 1e3, rel=0.01)
    assert [t["us"] for t in out["tasks"]] == sorted((t["us"] for t in out["tasks"]), reverse=True)
    # blocks partition the calls, and their times add up to the calls'
    assert [(b["start"], b["end"]) for b in out["blocks"]] == [(b["start"], b["end"]) for b in bundle.manifest["blocks"]]
    assert sum(b["us"] for b in out["blocks"]) == pytest.approx(sum(c["us"] for c in out["calls"]), rel=1e-3)
    # a person's view of the same
    proc = run_mtcc("profile", path, "--cores", "1", "--repeat", "2", "--top", "2")
    assert proc.returncode == 0 and "tasks by time" in proc.stderr and "whole inference" in proc.stderr
    _one_line_error(run_mtcc("profile", path, "--variant", "matmul=nope"), "--variant", "nope")


def test_cli_refusals(packed, reference, tmp_path):
    feeds, _ = reference
    bundle = Path(packed["plain"]["path"])
    good = tmp_path / "in.npz"
    np.savez(good, **feeds)
    bad_key = tmp_path / "bad_key.npz"
    np.savez(bad_key, token=feeds["tokens"])
    _one_line_error(run_mtcc("run", bundle, "--input", bad_key), "token", "bad_key.npz")
    bad_shape = tmp_path / "bad_shape.npz"
    np.savez(bad_shape, tokens=feeds["tokens"][:, :8])
    p = run_mtcc("run", bundle, "--input", bad_shape)
    assert p.returncode == 2
    _one_line_error(p, "tokens", "[1, 8, 128]")

    data = bundle.read_bytes()
    flipped = tmp_path / "flipped.mtcc"
    lib_at = data.index(b"\x7fELF")
    flipped.write_bytes(data[:lib_at + 4096] + bytes([data[lib_at + 4096] ^ 1]) + data[lib_at + 4097:])
    p = run_mtcc("run", flipped, "--input", good)
    assert p.returncode == 2
    _one_line_error(p, "flipped.mtcc", "sha256 mismatch")
    truncated = tmp_path / "truncated.mtcc"
    truncated.write_bytes(data[: len(data) // 2])
    p = run_mtcc("run", truncated, "--input", good)
    assert p.returncode == 2
    _one_line_error(p, "truncated.mtcc", "truncated")

    # A CPU with everything the bundle's target needs but its widest vector set.
    from mtcc import cpu

    needed = cpu.required_features_for_mcpu(TARGET)
    widest = "avx512f" if "avx512f" in needed else "avx2"
    env = {**os.environ, cpu.FAKE_ENV: ",".join(f for f in needed if f != widest)}
    p = run_mtcc("run", bundle, "--input", good, env=env)
    assert p.returncode == 3
    _one_line_error(p, widest)
    # ... while inspect still reads it, and says why it would not load here.
    p = run_mtcc("inspect", bundle, "--json", env=env)
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert info["loadable_here"] is False and widest in info["not_loadable_because"]


def test_cli_inspect_bundle(packed):
    p = run_mtcc("inspect", packed["variants"]["path"], "--json")
    assert p.returncode == 0, p.stderr[-2000:]
    info = json.loads(p.stdout)
    for key in ("model", "inputs", "outputs", "tasks", "total_flops", "variants", "blocks"):
        assert key in info
    assert info["model"] == "transformer" and info["loadable_here"] is True
    assert all({"name", "flops", "weight", "inputs"} <= set(t) for t in info["tasks"])
    by_task = {t["task"]: t for t in info["variants"]}
    assert len(by_task["matmul"]["variants"]) == 2
    assert all(v["latency_us"] for v in by_task["matmul"]["variants"])
    assert set(info["task_scaling"]) == set(by_task)
    p = run_mtcc("inspect", packed["variants"]["path"])  # the tables, on stderr
    assert p.returncode == 0 and "matmul__v1" in p.stderr


def test_pack_says_when_the_schedules_were_searched_on_another_cpu(tmp_path, schedules):
    """Schedules are per CPU: a folder whose runs all searched on another kind of CPU is
    packed (the code computes the same) with a note naming both CPUs and how to tune
    here; the manifest records where it was searched.  A folder searched here: no note."""
    from mtcc.interference import machine

    here = machine.description()
    for runs, noted in (([{"machine": {"cpu": "Elsewhere CPU 9000", "cores": 64}}], True),
                        ([{"machine": {"cpu": "Elsewhere CPU 9000"}}, {"machine": here}], False)):
        folder = tmp_path / f"schedules-{noted}"
        shutil.copytree(schedules["variants_dir"], folder)
        meta = json.loads((folder / "tune.json").read_text())
        (folder / "tune.json").write_text(json.dumps({**meta, "runs": runs}))
        lines = []
        out = pack(schedules["model_path"], folder, tmp_path / f"{noted}.mtcc", progress=lines.append)
        notes = [line for line in lines if "searched on" in line]
        if noted:
            assert len(notes) == 1 and "Elsewhere CPU 9000" in notes[0] and here["cpu"] in notes[0] \
                and "--time-budget" in notes[0], lines
        else:
            assert notes == [], lines
        assert container.open_bundle(out["path"]).manifest["schedules"]["searched_on"] == \
            [database.cpu_label(r["machine"]) for r in runs]


def test_searched_elsewhere_compares_llvm_names_where_runs_recorded_them():
    here = {"cpu": "AMD EPYC", "llvm_cpu": "znver4"}
    zen3 = {"runs": [{"machine": {"cpu": "AMD EPYC", "llvm_cpu": "znver3"}}]}
    assert "AMD EPYC (znver3)" in database.searched_elsewhere(zen3, here)  # the model name alone hides it
    assert database.searched_elsewhere({"runs": [{"machine": {"cpu": "AMD EPYC"}}]}, here) is None  # an older run
    assert database.searched_elsewhere({"runs": [{"machine": {"cpu": "Intel(R) Xeon(R) Processor"}}]}, here)
    assert database.searched_elsewhere({"runs": []}, here) is None  # nothing recorded: nothing to say
    assert database.searched_on({"runs": [*zen3["runs"], {"machine": here}, *zen3["runs"]]}) == \
        ["AMD EPYC (znver3)", "AMD EPYC (znver4)"]


def test_pack_bad_inputs(tmp_path, schedules):
    p = run_mtcc("pack", schedules["model_path"], "--schedules", tmp_path, "-o", tmp_path / "x.mtcc")
    assert p.returncode == 2
    _one_line_error(p, "not a schedules folder")
    p = run_mtcc("pack", schedules["model_path"], "--schedules", schedules["plain_dir"], "-o", tmp_path / "no" / "x.mtcc")
    assert p.returncode == 2
    _one_line_error(p, "does not exist")



def test_pack_refuses_variants_measured_on_another_workload(tmp_path, schedules):
    """A variants.json from before the model or the lowering changed: a task of the same
    name whose records belong to another workload must not be packed under that name."""
    stale = tmp_path / "stale"
    shutil.copytree(schedules["variants_dir"], stale)
    doc = json.loads((stale / "variants.json").read_text())
    softmax = next(t for t in doc["tasks"] if t["name"] == "softmax")
    matmul = next(t for t in doc["tasks"] if t["name"] == "matmul")
    softmax["variants"] = matmul["variants"]  # records of matmul's workload, under softmax's name
    doc["tasks"] = [softmax]
    (stale / "variants.json").write_text(json.dumps(doc))
    p = run_mtcc("pack", schedules["model_path"], "--schedules", stale, "-o", tmp_path / "x.mtcc")
    assert p.returncode == 2 and p.stdout == ""
    last = p.stderr.strip().splitlines()[-1]  # after pack's progress lines
    assert last.startswith("mtcc: error:") and "Traceback" not in p.stderr
    for needle in ("variants.json", "softmax", "another workload", "--stage characterize"):
        assert needle in last, last
    assert not (tmp_path / "x.mtcc").exists()


# ------------------------------------------------------------------ blocks
def test_call_demand_from_its_table():
    assert blocks_rule.demand({"1c/none": 4.0, "2c/none": 2.0, "1c/high": 9.0}) == 2
    assert blocks_rule.demand({"1c/none": 4.0, "2c/none": 3.9}) == 1          # does not scale
    assert blocks_rule.demand({"1c/none": 8.0, "2c/none": 4.0, "4c/none": 3.9}) == 2
    assert blocks_rule.demand({"2c/none": 2.0}) == 2 and blocks_rule.demand({}) is None


def test_task_scaling_takes_the_fastest_variant_at_each_core_count():
    from mtcc.runtime.loader import task_scaling

    two = [{"latency_us": {"1c/none": 10.0, "2c/none": 9.5, "1c/high": 30.0}},   # fastest on 1 core
           {"latency_us": {"1c/none": 12.0, "2c/none": 6.0}}]                     # fastest on 2
    s = task_scaling(two)
    assert s["best_us"] == {1: 10.0, 2: 6.0} and s["speedup"] == pytest.approx(10 / 6, abs=1e-3)
    assert s["demand"] == 2
    assert task_scaling(two[:1])["demand"] == 1                 # 5 % faster on 2 cores: not worth it
    assert task_scaling([{"latency_us": {"1c/none": 5.0}}])["speedup"] is None   # measured on 1 core only


def test_blocks_cut_where_demand_changes():
    cut = blocks_rule.cut_by_demand
    # Two runs of different demand, each long enough: cut between them, nowhere else.
    assert cut([600.0] * 4, [1, 1, 2, 2], min_block_us=1000, max_blocks=2) == [(0, 2), (2, 4)]
    # A short run of other demand is merged into its cheaper neighbour.
    assert cut([900, 100, 1500], [1, 2, 1], min_block_us=500, max_blocks=8) == [(0, 2), (2, 3)]
    # Too many runs: the cheapest adjacent pair merges first.
    assert cut([1000, 1000, 5000, 5000], [1, 2, 1, 2], min_block_us=500, max_blocks=3) == [(0, 2), (2, 3), (3, 4)]
    # One demand throughout: split at equal-cost points while halves stay above the minimum.
    assert cut([1000.0] * 8, [2] * 8, min_block_us=1500, max_blocks=8) == [(0, 2), (2, 4), (4, 6), (6, 8)]
    # A model shorter than the minimum block is one block; no calls, no blocks.
    assert cut([50.0] * 10, [1, 2] * 5, min_block_us=500, max_blocks=8) == [(0, 10)]
    assert cut([], [], max_blocks=8) == []
    # A call without a table takes its neighbour's demand.
    assert cut([600.0] * 4, [1, None, 2, None], min_block_us=1000, max_blocks=8) == [(0, 2), (2, 4)]
    calls = [blocks_rule.CallCost("a", {"1c/none": 4.0, "2c/none": 2.0}, 2.0),
             blocks_rule.CallCost("b", {"2c/none": 2.0}, 2.0),
             blocks_rule.CallCost("c", {}, None)]  # unknown: the mean of the known
    made = blocks_rule.make_blocks(calls, 2, 3, min_block_us=2.5)  # halves of 2 and 4 µs: too short
    assert [b["est_us"] for b in made] == [6.0] and made[0]["demand"] == 2
    made = blocks_rule.make_blocks(calls, 2, 3, min_block_us=0.0)
    assert [b["est_us"] for b in made] == [2.0, 2.0, 2.0]
    assert made[0]["scaling"] == 2.0 and made[1]["scaling"] is None
    assert blocks_rule.reference_cost({"1c/none": 4.0, "1c/high": 9.0}, 2) == 4.0


def test_a_block_table_keeps_its_cells_beside_a_task_too_short_to_characterize():
    # reshape (1 µs) has only the tuner's time, labelled with the cores it was measured
    # on; it counts in every cell, so the block keeps its 1-core and pressure cells.
    conv = {"1c/none": 100.0, "1c/high": 130.0, "2c/none": 60.0}
    assert blocks_rule.block_table([conv, {"2c/none": 1.0}]) == {"1c/high": 131.0, "1c/none": 101.0, "2c/none": 61.0}
    assert blocks_rule.block_table([conv, {"1c/none": 90.0, "2c/none": 50.0}]) == {"1c/none": 190.0, "2c/none": 110.0}
    assert blocks_rule.block_table([{"2c/none": 1.0}, {"2c/none": 2.0}]) == {"2c/none": 3.0}
    assert blocks_rule.block_table([conv, {}]) == {} and blocks_rule.block_table([]) == {}

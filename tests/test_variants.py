"""Characterization, the variants file and the evidence report (issue 5, points 3-5).

The Pareto selection and the evidence numbers are checked on a hand-made
characterization.  `characterize` runs for real on a tiny model (MatMul+Add,
Softmax) whose database is made here in a second: hand-written schedules
committed as MetaSchedule records with made-up tuning times, so no search runs.
The "high" level of the calibration is a small cache stressor, so the test runs
in seconds; only the structure, resumability, the contract and numerics are
checked, never measured speeds.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from mtcc import variants
from mtcc.cli.render import evidence_rows, variant_rows
from mtcc.tune.database import RECORDS
from mtcc.variants.select import footprint_objective
from mtcc.variants.store import FORMAT
from mtcc.variants.worker import build_variant
from conftest import HOST_MCPU, ROOT, vcpus_concurrent

TARGET = HOST_MCPU
CORES = len(os.sched_getaffinity(0))


# ------------------------------------------------------------------ hand-made tables
def cand(record, alone1, high1, alone2, footprint, error=None):
    cells = {}
    if alone1 is not None:
        cells["1c/none"] = {"us": alone1, "samples_us": [alone1]}
    if high1 is not None:
        cells["1c/high"] = {"us": high1, "samples_us": [high1]}
    if alone2 is not None:
        cells["2c/none"] = {"us": alone2, "samples_us": [alone2]}
    cells["2c/high"] = {"status": "not_measurable", "reason": "no free core"}
    return {"id": f"r{record}", "record": record, "sha256": f"{record:016x}", "rank": 0,
            "tuned_us": alone2, "cells": cells, "error": error,
            "footprint": {"ratio": footprint, "ratios": [footprint]} if footprint else None}


def task(name, workload, count, candidates, skipped=None, tuned_us=None):
    return {"name": name, "workload": workload, "count": count, "skipped": skipped,
            "tuned_us": tuned_us, "candidates": candidates}


def hand_made(tmp_path: Path) -> dict:
    return {
        "format": FORMAT, "model": "toy", "target": "llvm -mcpu=x86-64-v4 -num-cores=2",
        "schedules": str(tmp_path), "machine": {"cores": [0, 1]},
        "calibration": {"source": "given", "fingerprint": "x", "usable": True, "verdict": "test"},
        "core_counts": [1, 2], "levels": ["none", "high"],
        "tasks": [
            # fast alone but hurt by pressure (r1), robust (r2), dominated by r2 (r3)
            task("conv", 0, 2, [cand(1, 10, 30, 6, 1.3), cand(2, 12, 15, 7, 1.1), cand(3, 13, 16, 8, 1.2)]),
            task("single", 1, 3, [cand(4, 5, 6, 3, 1.0)]),
            task("tiny", 2, 4, [cand(5, None, None, None, None) | {"tuned_us": 1.0}],
                 skipped="best tuned time 1.00 us < 3.0 us", tuned_us=1.0),
            # identical points: one survives (the smaller id)
            task("ties", 3, 1, [cand(7, 8, 9, 5, 1.05), cand(6, 8, 9, 5, 1.05)]),
            # a candidate that failed to build has no cells: not a variant
            task("broken", 4, 1, [cand(8, 20, 22, 11, 1.0), cand(9, None, None, None, None, error="boom")]),
            # seven mutual trade-offs: capped at max_variants
            task("wide", 5, 1, [cand(10 + i, 10 + i, 30 - 2 * i, 20 - i, 1.0 + i / 100) for i in range(7)]),
        ],
    }


def test_select_variants_on_a_hand_made_table(tmp_path):
    char = hand_made(tmp_path)
    var = variants.select_variants(char, max_variants=5, out=tmp_path)
    written = json.loads((tmp_path / variants.VARIANTS).read_text())
    assert written == var
    assert var["model"] == "toy" and var["target"].startswith("llvm")
    assert var["objectives"]["cells"]["alone"] == "1c/none"
    assert var["objectives"]["cells"]["pressure"] == "1c/high"   # 2c/high cannot be measured on 2 cores
    assert var["objectives"]["cells"]["alone_max_cores"] == "2c/none"
    by = {t["name"]: t for t in var["tasks"]}
    assert [v["id"] for v in by["conv"]["variants"]] == ["r1", "r2"]
    assert by["conv"]["best_alone_differs_under_pressure"] is True
    assert by["conv"]["variants"][0]["latency_us"] == {"1c/none": 10, "1c/high": 30, "2c/none": 6}
    assert by["conv"]["variants"][1]["footprint"] == 1.1
    assert by["conv"]["variants"][0]["trace"] == {"database": RECORDS, "workload": 0, "record": 1,
                                                  "sha256": f"{1:016x}"}
    assert [v["id"] for v in by["single"]["variants"]] == ["r4"]
    assert by["single"]["best_alone_differs_under_pressure"] is False
    assert by["tiny"]["measured"] is False and by["tiny"]["latency_source"] == "tuning"
    assert by["tiny"]["variants"][0]["latency_us"] == {"2c/none": 1.0}
    assert [v["id"] for v in by["ties"]["variants"]] == ["r6"]
    assert [v["id"] for v in by["broken"]["variants"]] == ["r8"]
    assert len(by["wide"]["variants"]) == 5
    for t in var["tasks"]:  # the contract in docs/method.md
        assert set(t) >= {"name", "variants", "best_alone_differs_under_pressure"}
        for v in t["variants"]:
            assert set(v) >= {"id", "trace", "latency_us", "footprint"}
            assert all(isinstance(x, (int, float)) for x in v["latency_us"].values())

    ev = variants.evidence(tmp_path)
    (m,) = ev["models"]
    assert m["tasks"] == 6 and m["tasks_multi_variant"] == 2   # conv, wide
    assert set(m["best_alone_differs"]) == {"conv", "wide"}
    # model under pressure, sum of count x latency at 1c/high; "tiny" has only its tuner time (1.0)
    best_alone = 2 * 30 + 3 * 6 + 4 * 1.0 + 9 + 22 + 30
    best_pressure = 2 * 15 + 3 * 6 + 4 * 1.0 + 9 + 22 + min(30 - 2 * i for i in range(7))
    assert m["model_us"]["pressure_best_alone"] == pytest.approx(best_alone)
    assert m["model_us"]["pressure_best_pressure"] == pytest.approx(best_pressure)
    assert m["pressure_ratio_best_alone_over_best_pressure"] == pytest.approx(best_alone / best_pressure, abs=1e-4)
    cols, rows = evidence_rows(ev)
    assert len(rows) == 1 and len(rows[0]) == len(cols)
    cols, rows = variant_rows(var)
    assert all(len(r) == len(cols) for r in rows) and len(rows) == sum(len(t["variants"]) for t in var["tasks"])


def test_a_variant_within_the_error_of_the_default_is_not_kept(tmp_path):
    """No switching for nothing: a candidate kept only when it beats the default (the
    tuner's best, rank 0) and every variant kept before it in some cell by more than the
    two cells' errors (half the interquartile range of their samples, at least 2 %), or
    by more than the footprints' errors (at least 0.05)."""
    def spread(record, rank, alone1, high1, alone2, footprint, noise=0.0):
        c = cand(record, alone1, high1, alone2, footprint)
        c["rank"] = rank
        for cell in c["cells"].values():
            if "us" in cell:  # samples around the time: interquartile range ~ noise x time
                cell["samples_us"] = [cell["us"] * (1 + noise * k) for k in (-1, -0.5, 0, 0.5, 1)]
        return c

    char = hand_made(tmp_path)
    char["tasks"] = [
        # 1.5 % faster under pressure: inside the 2 % floor
        task("close", 0, 1, [spread(1, 0, 10, 10.1, 6, 1.0), spread(2, 1, 10.05, 9.95, 6.05, 1.0)]),
        # 10 % faster under pressure, samples tight: kept
        task("real", 1, 1, [spread(3, 0, 10, 11, 6, 1.0), spread(4, 1, 10.1, 9.9, 6.1, 1.0)]),
        # the same 10 %, but the cells' samples spread +-20 %: within the error
        task("noisy", 2, 1, [spread(5, 0, 10, 11, 6, 1.0, 0.2), spread(6, 1, 10.1, 9.9, 6.1, 1.0, 0.2)]),
        # slower everywhere but much lighter on the neighbour: kept; a little lighter: not
        task("light", 3, 1, [spread(7, 0, 10, 10, 6, 1.30), spread(8, 1, 10.1, 10.1, 6.1, 1.0),
                             spread(9, 2, 10.05, 10.05, 6.05, 1.27)]),
        # two that beat the default by about 10 % at 2 cores: only the bigger gain is kept
        task("twins", 4, 1, [spread(10, 0, 10, 10, 6, 1.0), spread(11, 1, 11, 11, 5.4, 1.0),
                             spread(12, 2, 11.05, 11.05, 5.39, 1.0)]),
    ]
    var = variants.select_variants(char, write=False)
    kept = {t["name"]: [v["id"] for v in t["variants"]] for t in var["tasks"]}
    assert kept == {"close": ["r1"], "real": ["r3", "r4"], "noisy": ["r5"], "light": ["r7", "r8"],
                    "twins": ["r10", "r12"]}, kept
    errors = next(t for t in var["tasks"] if t["name"] == "noisy")["variants"][0]["latency_error_us"]
    assert errors["1c/none"] == pytest.approx(10 * 0.2 * 0.75, rel=1e-3)  # half the IQR of the samples
    assert next(t for t in var["tasks"] if t["name"] == "close")["variants"][0]["latency_error_us"]["1c/none"] == 0.2
    variants.select_variants(char, out=tmp_path)
    (m,) = variants.evidence(tmp_path)["models"]
    # Only "real" switches under pressure: 11 -> 9.9 of 10.1 + 11 + 11 + 10 + 10 (best alone at 1c/high).
    assert m["pressure_gain"] == pytest.approx(1.1 / 52.1, abs=1e-4)
    assert 0 < m["pressure_gain_error"] < m["pressure_gain"]


def test_the_default_moves_to_a_variant_faster_alone_at_every_core_count(tmp_path):
    """The tuner's best (rank 0) runs by default while it is on the front -- unless a
    kept variant is shown faster alone at one core and at all cores, each by a pair timed
    in turns against it beyond the pair's error (select.faster_alone_everywhere): a
    lighter footprint alone keeps rank 0 on the front, and the default is what runs
    wherever no pressure is predicted.  The tables alone never move it, nor a variant
    faster at one core count only (a trade-off)."""
    def ranked(record, rank, alone1, high1, alone2, footprint):
        c = cand(record, alone1, high1, alone2, footprint)
        c["rank"] = rank
        return c

    def pair(ratio):
        return {"against": "r1", "ratio": ratio, "ratios": [ratio] * 5}

    char = hand_made(tmp_path)
    # rank 0 is lighter on its neighbour (1.0 against 1.3) but 1.7x slower alone on 1 and 2 cores
    slow, fast = ranked(1, 0, 340, 345, 174, 1.0), ranked(2, 1, 200, 205, 100, 1.3)
    char["tasks"] = [task("slow_best", 0, 1, [slow, fast])]

    def selected():
        entry = variants.select_variants(char, write=False)["tasks"][0]
        return entry["default"], sorted(v["id"] for v in entry["variants"])

    assert selected() == ("r1", ["r1", "r2"])                    # the tables say so: not enough
    fast["confirmed"] = {"1c/none": pair(0.59)}
    assert selected() == ("r1", ["r1", "r2"])                    # shown on one core only
    fast["confirmed"]["2c/none"] = pair(1.02)
    assert selected() == ("r1", ["r1", "r2"])                    # not faster on two
    fast["confirmed"]["2c/none"] = pair(0.58)
    assert selected() == ("r2", ["r1", "r2"])                    # faster at both: the lighter one stays a variant


def test_select_variants_without_pressure_levels(tmp_path):
    """A machine with no usable interference: pressure objective = alone, nothing differs."""
    char = hand_made(tmp_path)
    char["levels"] = ["none"]
    var = variants.select_variants(char, write=False)
    assert var["objectives"]["cells"]["pressure_level"] == "none"
    assert not any(t["best_alone_differs_under_pressure"] for t in var["tasks"])
    assert not (tmp_path / variants.VARIANTS).exists()


# ------------------------------------------------------------------ a real tiny database
def _tiny_model(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((128, 128)).astype("float32"), "W")
    b = numpy_helper.from_array(rng.standard_normal((128,)).astype("float32"), "B")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["m"]), helper.make_node("Add", ["m", "B"], ["a"]),
         helper.make_node("Softmax", ["a"], ["y"], axis=-1)], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64, 128])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64, 128])], [w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _stream_model(path: Path) -> Path:
    """One memory-bound task: z = x + y over 16 MiB arrays (half the reported LLC each)."""
    import onnx
    from onnx import TensorProto, helper

    shape = [1, 2048, 2048]
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "y"], ["z"])], "stream",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _hand_schedules(mod):
    """Traces of a few hand-written schedules of a task: none, outer loops fused and
    parallel, and the innermost loop split by 8 and unrolled."""
    from tvm import s_tir

    traces = [s_tir.Schedule(mod).trace]
    sch = s_tir.Schedule(mod)
    block = sch.get_child_blocks(sch.get_sblock("root", "main"))[0]
    loops = sch.get_loops(block)
    sch.parallel(sch.fuse(*loops[:2]) if len(loops) > 1 else loops[0])
    traces.append(sch.trace)
    sch = s_tir.Schedule(mod)
    block = sch.get_child_blocks(sch.get_sblock("root", "main"))[0]
    inner = sch.get_loops(block)[-1]
    _, i = sch.split(inner, factors=[None, 8])
    sch.unroll(i)
    traces.append(sch.trace)
    return traces


def _hand_made_db(root: Path, model_path: Path, base_s) -> dict:
    """A schedules folder for `model_path`: per task a failed record, three hand
    schedules (`base_s(task)` x 1, 1.2, 1.4 as made-up times) and a duplicate of the
    best (at 1.5x).  No search runs."""
    import tvm.s_tir.meta_schedule as ms

    from mtcc import frontend
    from mtcc.frontend import tasks
    from mtcc.target import describe, make_target

    target = make_target(TARGET, 2)
    model, mod = frontend.import_model(model_path)
    extracted = ms.relax_integration.extract_tasks(tasks.legalize_and_fuse(mod, target, "NCHWc"), target)
    db_dir = root / "schedules"
    db_dir.mkdir()
    db = ms.database.JSONDatabase(work_dir=str(db_dir), module_equality="structural")
    names = []
    for ext in extracted:
        func_mod = ext.dispatched[0]
        workload = db.commit_workload(func_mod)
        args = ms.arg_info.ArgInfo.from_prim_func(func_mod["main"])
        base = base_s(ext.task_name)
        traces = _hand_schedules(func_mod)
        times = [[1e10]] + [[base * (1 + 0.2 * i)] for i in range(len(traces))] + [[base * 1.5]]
        for trace, secs in zip([traces[0]] + traces + [traces[0]], times):
            db.commit_tuning_record(ms.database.TuningRecord(trace, workload, secs, target, args))
        names.append(ext.task_name)
    (db_dir / "tune.json").write_text(json.dumps({"model": model.name, "target": describe(target),
                                                  "layout": "NCHWc"}))
    return {"model": model_path, "dir": db_dir, "tasks": names}


@pytest.fixture(scope="module")
def tiny_db(tmp_path_factory):
    """The tiny model's folder: fused_matmul_add ~50-70 us, softmax 1 us (made-up times;
    softmax falls under min_task_us and is skipped)."""
    root = tmp_path_factory.mktemp("variants")
    return _hand_made_db(root, _tiny_model(root / "tiny.onnx"),
                         lambda name: 1e-6 if "softmax" in name else 50e-6)


@pytest.fixture(scope="module")
def stream_db(tmp_path_factory):
    root = tmp_path_factory.mktemp("stream")
    return _hand_made_db(root, _stream_model(root / "stream.onnx"), lambda name: 5e-3)


def small_calibration() -> dict:
    return {"format": "mtcc-calibration/1", "usable": True, "verdict": "test: a 4 MiB cache stressor",
            "levels": {"none": {"setting": None, "stressor": None, "memory_slowdown": 1.0},
                       "high": {"setting": "cache-small", "memory_slowdown": 1.1,
                                "stressor": {"kind": "cache", "pattern": "random",
                                             "working_set_bytes": 4 << 20, "duty": 1.0, "cores": [1]}}}}


def _children() -> list:
    import psutil

    return [p for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE]


def test_characterize_resume_contract_and_numerics(tiny_db, tmp_path):
    # Processes earlier tests left are theirs to answer for: count only what this one starts.
    before = {p.pid for p in _children()}
    folder = tmp_path / "schedules"
    shutil.copytree(tiny_db["dir"], folder)
    matmul = next(n for n in tiny_db["tasks"] if "matmul" in n)
    softmax = next(n for n in tiny_db["tasks"] if "softmax" in n)
    lines = []
    kwargs = dict(calibration=small_calibration(), top_k=2, repeats=2, min_repeat_ms=5,
                  core_counts=[1, 2] if CORES >= 2 else [1], stressor_cores=1,
                  footprint_pairs=2, footprint_window_s=0.02, check_machine=False, progress=lines.append)
    char = variants.characterize(tiny_db["model"], folder, **kwargs)

    saved = json.loads((folder / variants.CHARACTERIZATION).read_text())
    assert saved["format"] == FORMAT and saved["tasks"] == char["tasks"]
    assert saved["core_counts"] == ([1, 2] if CORES >= 2 else [1])
    assert saved["levels"] == ["none", "high"]
    by = {t["name"]: t for t in saved["tasks"]}
    assert by[softmax]["skipped"] and "us" in by[softmax]["skipped"]
    assert any(softmax in line and "skip" in line for line in lines)
    mm = by[matmul]
    assert mm["valid_records"] == 4 and mm["distinct_valid"] == 3
    # top 2 distinct: the failed record (1e10) and the duplicate of the best are not candidates
    assert [c["rank"] for c in mm["candidates"]] == [0, 1]
    assert len({c["sha256"] for c in mm["candidates"]}) == 2
    assert all(c["tuned_us"] < 1e4 for c in mm["candidates"])
    for c in mm["candidates"]:
        assert c["error"] is None, c["error"]
        for n in saved["core_counts"]:
            assert variants.cell_key(n, "none") in c["cells"]
            none = c["cells"][variants.cell_key(n, "none")]
            assert none["us"] > 0 and len(none["samples_us"]) == 4
            high = c["cells"][variants.cell_key(n, "high")]
            if n < CORES:
                assert high["us"] > 0
            else:
                assert high["status"] == "not_measurable"
        if CORES >= 2:
            assert c["footprint"]["ratio"] > 0 and len(c["footprint"]["ratios"]) == 2
    assert saved["runs"][-1]["cells_measured"] > 0
    left = [p for p in _children() if p.pid not in before]
    assert not left, f"worker, probe or stressor processes left behind: {left}"

    # Resumable: a second call measures nothing new and keeps every value.
    again = variants.characterize(tiny_db["model"], folder, **kwargs)
    assert again["runs"][-1]["cells_measured"] == 0 and again["runs"][-1]["footprints_measured"] == 0
    assert len(again["runs"]) == 2
    assert again["tasks"] == saved["tasks"]
    assert saved["settings"]["caches"] == "hot" and saved["settings"]["flush_bytes"] == 0

    # Timed the other way (cold: private caches evicted before every call), nothing of
    # the hot cells is carried over: every cell is measured again, footprints kept.
    cold = variants.characterize(tiny_db["model"], folder, **{**kwargs, "caches": "cold"})
    assert cold["settings"]["caches"] == "cold" and cold["settings"]["flush_bytes"] >= 2 * 32 << 10
    assert cold["runs"][-1]["cells_measured"] == saved["runs"][-1]["cells_measured"]
    assert cold["runs"][-1]["footprints_measured"] == 0
    assert any("measured again" in line for line in lines)
    for c in next(t for t in cold["tasks"] if t["name"] == matmul)["candidates"]:
        assert c["cells"]["1c/none"]["us"] > 0 and len(c["cells"]["1c/none"]["samples_us"]) == 4
    assert variants.characterization_caches(folder) == "cold"

    # variants.json follows the contract in docs/method.md.
    var = variants.select_variants(folder / variants.CHARACTERIZATION)
    on_disk = json.loads((folder / variants.VARIANTS).read_text())
    assert on_disk == var
    assert set(on_disk) >= {"model", "target", "tasks"} and on_disk["model"] == "tiny"
    assert {t["name"] for t in on_disk["tasks"]} == set(tiny_db["tasks"])
    for t in on_disk["tasks"]:
        assert isinstance(t["best_alone_differs_under_pressure"], bool)
        assert 1 <= len(t["variants"]) <= 5
        for v in t["variants"]:
            assert set(v) >= {"id", "trace", "latency_us", "footprint"}
            assert v["latency_us"] and all(k.endswith(("/none", "/high")) for k in v["latency_us"])

    # Every candidate of a task computes the same function (both characterized ones,
    # whether or not the filter kept both).
    refs = [{"workload": mm["workload"], "record": c["record"], "sha256": c["sha256"]} for c in mm["candidates"]]
    outputs = []
    for ref in refs:
        import tvm

        lib, func = build_variant(folder, ref)
        rng = np.random.default_rng(7)
        arrays = [rng.standard_normal([int(d) for d in p.ty.shape]).astype(str(p.ty.dtype)) for p in func.params]
        tensors = [tvm.runtime.tensor(a) for a in arrays]
        lib["main"](*tensors)
        outputs.append(tensors[-1].numpy())
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-4, atol=1e-4)
    assert np.abs(outputs[0]).max() > 0

    ev = variants.evidence(folder)["models"][0]
    assert ev["model"] == "tiny" and ev["tasks"] == 2 and ev["tasks_measured"] == 1
    assert ev["model_us"]["pressure_best_pressure"] <= ev["model_us"]["pressure_best_alone"] + 1e-9


def test_bad_inputs(tmp_path, tiny_db):
    from mtcc.errors import BadInput

    with pytest.raises(BadInput):
        variants.characterize(None, tmp_path, calibration=small_calibration())          # not a schedules folder
    with pytest.raises(BadInput):
        variants.characterize(tiny_db["model"], tiny_db["dir"], calibration=small_calibration(),
                       core_counts=[CORES + 1], out=tmp_path / "c.json")
    with pytest.raises(BadInput):
        variants.evidence(tmp_path)                                                       # no variants.json
    with pytest.raises(BadInput):
        variants.select_variants(tmp_path)                                                # no characterization


def test_a_cold_search_is_what_compiles_and_its_claims_are_timed_cold(tiny_db, tmp_path):
    """A task searched with cold caches (`mtcc tune --cold-caches`) compiles from its
    cold search although its hot records time lower (tune.database.applying_copy), ranks
    its cold records first and keeps its hot ones as candidates after them, runs its cold
    best by default, and times a claim of a hot-searched candidate cold, as a pair."""
    import mtcc
    from mtcc.tune.database import RECORDS, DatabaseLines, applying_copy

    folder = tmp_path / "schedules"
    shutil.copytree(tiny_db["dir"], folder)
    matmul = next(n for n in tiny_db["tasks"] if "matmul" in n)
    records = folder / RECORDS
    lines = [json.loads(x) for x in records.read_text().splitlines() if x.strip()]
    hot = DatabaseLines(folder)
    workload = next(w for w in {r[0] for r in lines}
                    if len(hot.records_of(w)) == 5 and hot.candidates(w, 1)[0]
                    and hot.record_secs(hot.candidates(w, 1)[0][0]) > 2e-5)  # matmul's (50 us made up)
    # a cold run: the third hand schedule again, timed cold (slower than every hot time)
    by_time = sorted(hot.records_of(workload), key=hot.record_secs)
    third = by_time[2]
    cold = json.loads(json.dumps(lines[third]))
    cold[1][1] = [5e-3]
    n0 = len(lines)
    records.write_text(records.read_text() + json.dumps(cold) + "\n")
    meta = json.loads((folder / "tune.json").read_text())
    meta["runs"] = [{"records": [0, n0]}, {"records": [n0, n0 + 1], "caches": "cold", "measure_threads": 1}]
    (folder / "tune.json").write_text(json.dumps(meta))

    db = DatabaseLines(folder)
    assert db.cold_workloads == {workload} and db.record_caches(n0) == "cold" and db.record_caches(0) == "hot"
    # the cold record first; the same schedule's hot record is not a second candidate
    assert db.candidates(workload, 8)[0] == [n0, by_time[0], by_time[1]]
    applied = DatabaseLines(applying_copy(folder, tmp_path / "copy"))
    assert [applied.record_secs(i) for i in applied.records_of(workload)] == [5e-3]
    assert len(applied.records) == n0 + 1 - 5  # the task's five other records left out, no other

    kwargs = dict(calibration={"levels": {"none": {"stressor": None}}}, top_k=2, repeats=1,
                  min_repeat_ms=2, core_counts=[1], footprint_pairs=1, footprint_window_s=0.01,
                  check_machine=False, confirm_rounds=0)
    char = variants.characterize(tiny_db["model"], folder, **kwargs)
    task = next(t for t in char["tasks"] if t["name"] == matmul)
    assert "cold caches" in task["note"] and not task["skipped"]
    assert [c["id"] for c in task["candidates"]] == [f"r{n0}", f"r{by_time[0]}", f"r{by_time[1]}"]
    assert [c["searched"] for c in task["candidates"]] == ["cold", "hot", "hot"]
    assert task["candidates"][0]["tuned_threads"] == 1
    # The hot tables rank the cold best far behind (as they would: they time the hot
    # search's candidates the way those win): it still runs by default ...
    path = folder / variants.CHARACTERIZATION
    saved = json.loads(path.read_text())
    cands = next(t for t in saved["tasks"] if t["name"] == matmul)["candidates"]
    slow = 10 * max(c["cells"]["1c/none"]["us"] for c in cands)
    cands[0]["cells"]["1c/none"].update(us=slow, samples_us=[slow] * 2)
    path.write_text(json.dumps(saved))
    var = variants.select_variants(folder)
    entry = next(t for t in var["tasks"] if t["name"] == matmul)
    assert entry["measured"] and entry["default"] == f"r{n0}"
    assert next(v for v in entry["variants"] if v["id"] == f"r{n0}")["latency_us"]["1c/none"] == slow
    # ... and the hot candidates' claims against it are timed again as pairs, the way the
    # cold search timed: operands flushed
    char = variants.characterize(tiny_db["model"], folder, **{**kwargs, "confirm_rounds": 2})
    hot_cands = next(t for t in char["tasks"] if t["name"] == matmul)["candidates"][1:]
    pairs = [c["confirmed"]["1c/none"] for c in hot_cands if "1c/none" in c.get("confirmed", {})]
    # (a pair that shows one faster than the default by more than its error makes it the
    # default, and the other is timed against that one next: see below)
    assert any(p["against"] == f"r{n0}" for p in pairs), pairs
    assert all(p["caches"] == "operands flushed" and len(p["ratios"]) == 2 for p in pairs), pairs

    # Where such a pair shows a candidate faster alone by more than its error, that one
    # runs by default -- in the selection, in MetaSchedule's copy and in the bundle.
    saved = json.loads(path.read_text())
    cands = next(t for t in saved["tasks"] if t["name"] == matmul)["candidates"]
    cands[2]["confirmed"] = {"1c/none": {"against": f"r{n0}", "ratio": 0.5, "ratios": [0.49, 0.5, 0.51]}}
    cands[1].pop("confirmed", None)
    path.write_text(json.dumps(saved))
    var = variants.select_variants(folder)
    entry = next(t for t in var["tasks"] if t["name"] == matmul)
    assert entry["default"] == f"r{by_time[1]}"
    assert variants.default_records(folder)[workload] == by_time[1]
    applied = DatabaseLines(applying_copy(folder, tmp_path / "copy2", defaults=variants.default_records(folder)))
    assert [applied.record_sha(i) for i in applied.records_of(workload)] == [db.record_sha(by_time[1])]
    bundle = tmp_path / "tiny.mtcc"
    mtcc.pack(tiny_db["model"], folder, bundle, target=TARGET)
    loaded = mtcc.load(bundle)
    assert loaded.defaults[matmul] == f"r{by_time[1]}"
    # ... as the applied schedule (the model's own function), not as a listed extra
    assert next(v for v in loaded.variants[matmul] if v.id == f"r{by_time[1]}").function == matmul


def test_every_task_compiles_from_its_default_in_variants_json(tiny_db, tmp_path):
    """Not only a task searched cold: where variants.json's default is not the record
    MetaSchedule would apply (its fastest tuning time; here a pair shows the second
    fastest faster alone), MetaSchedule's copy holds that record alone for the task
    (variants.default_records, tune.database.applying_copy) -- what mtcc.compile's Relax
    VM and the packer apply -- and the bundle runs it by default as the model's own
    function.  Before, inception_v1's Relax VM ran the fastest tuning time in 15 tasks and
    read 1.04x its call plan."""
    import mtcc
    from mtcc.tune.database import DatabaseLines, applying_copy, has_cold_run

    folder = tmp_path / "schedules"
    shutil.copytree(tiny_db["dir"], folder)
    assert not has_cold_run(folder)
    matmul = next(n for n in tiny_db["tasks"] if "matmul" in n)
    kwargs = dict(calibration={"levels": {"none": {"stressor": None}}}, top_k=2, repeats=1,
                  min_repeat_ms=2, core_counts=[1], footprint_pairs=1, footprint_window_s=0.01,
                  check_machine=False, confirm_rounds=0)
    variants.characterize(tiny_db["model"], folder, **kwargs)
    path = folder / variants.CHARACTERIZATION
    saved = json.loads(path.read_text())
    fastest, second = next(t for t in saved["tasks"] if t["name"] == matmul)["candidates"]
    assert fastest["rank"] == 0
    second["confirmed"] = {"1c/none": {"against": fastest["id"], "ratio": 0.5, "ratios": [0.49, 0.5, 0.51]}}
    path.write_text(json.dumps(saved))
    entry = next(t for t in variants.select_variants(folder)["tasks"] if t["name"] == matmul)
    assert entry["default"] == second["id"]

    lines = DatabaseLines(folder)
    workload = lines.records[second["record"]][0]
    assert min(lines.records_of(workload), key=lines.record_secs) == fastest["record"]  # what MetaSchedule picks
    defaults = variants.default_records(folder)
    assert defaults[workload] == second["record"]
    applied = DatabaseLines(applying_copy(folder, tmp_path / "copy", defaults=defaults))
    assert [applied.record_sha(i) for i in applied.records_of(workload)] == [lines.record_sha(second["record"])]
    # every task variants.json names keeps its default alone, the others all their records
    kept = {w: applied.records_of(w) for w in {r[0] for r in lines.records if r is not None}}
    assert all(len(kept[w]) == (1 if w in defaults else len(lines.records_of(w))) for w in kept), kept
    bundle = tmp_path / "tiny.mtcc"
    mtcc.pack(tiny_db["model"], folder, bundle, target=TARGET)
    loaded = mtcc.load(bundle)
    assert loaded.defaults[matmul] == second["id"]
    assert next(v for v in loaded.variants[matmul] if v.id == second["id"]).function == matmul


def test_restricted_run_keeps_other_tasks(tiny_db, tmp_path):
    """A run restricted to some tasks neither measures nor forgets the others."""
    folder = tmp_path / "schedules"
    shutil.copytree(tiny_db["dir"], folder)
    matmul = next(n for n in tiny_db["tasks"] if "matmul" in n)
    softmax = next(n for n in tiny_db["tasks"] if "softmax" in n)
    kwargs = dict(calibration={"levels": {"none": {"stressor": None}}}, top_k=1, repeats=1,
                  min_repeat_ms=2, core_counts=[1], footprint_pairs=1, footprint_window_s=0.01,
                  check_machine=False)
    first = variants.characterize(tiny_db["model"], folder, tasks=[softmax], **kwargs)
    assert [t["name"] for t in first["tasks"]] == [softmax] and first["runs"][-1]["cells_measured"] == 0
    second = variants.characterize(tiny_db["model"], folder, tasks=[matmul], **kwargs)
    assert {t["name"] for t in second["tasks"]} == {softmax, matmul}
    assert second["runs"][-1]["cells_measured"] == 1
    third = variants.characterize(tiny_db["model"], folder, tasks=[softmax], **kwargs)
    mm = next(t for t in third["tasks"] if t["name"] == matmul)
    assert mm["candidates"][0]["cells"]["1c/none"]["us"] > 0


def test_tune_task_characterizes_only_that_task(tiny_db, tmp_path):
    """`mtcc tune --stage characterize --task T` (and a search of T alone, stage all)
    measures T only: another task's tables and pairs, measured on another day or
    machine, are not timed again."""
    from conftest import run_mtcc

    folder = tmp_path / "schedules"
    shutil.copytree(tiny_db["dir"], folder)
    softmax = next(n for n in tiny_db["tasks"] if "softmax" in n)
    r = run_mtcc("tune", tiny_db["model"], "--out", folder, "--stage", "characterize", "--task", softmax,
                 "--calibration", ROOT / "schedules" / "calibration" / "amd-epyc.json", "--top-k", "1",
                 "--confirm-rounds", "0", "--json", timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    char = json.loads((folder / "characterization.json").read_text())
    assert [t["name"] for t in char["tasks"]] == [softmax]
    run = char["runs"][-1]  # which tasks it measured, on which CPU
    assert run["tasks"] == [softmax] and run["cpu_model"] == char["machine"]["cpu_model"]


def test_a_budget_keeps_every_tasks_best_and_the_biggest_tasks_candidates():
    """characterize.trim_to_budget (mtcc tune --time-budget): every task keeps its best
    record and what is already measured; the rest go rank by rank to the tasks that hold
    the most time, as far as the budget (SECONDS_PER_CELL a cell) reaches."""
    from mtcc.variants.characterize import SECONDS_PER_CELL, trim_to_budget

    def task(name, us, count, measured=0):
        return {"name": name, "tuned_us": us, "count": count, "candidates": [
            {"id": f"r{rank}", "rank": rank, "error": None,
             "cells": {"1c/none": {"us": us}, "2c/none": {"us": us}} if rank < measured else {},
             "footprint": {"ratio": 1.0} if rank < measured else None} for rank in range(4)]}

    def ids(t):
        return [c["id"] for c in t["candidates"]]

    def trim(tasks, candidates):  # a candidate: 2 cells (1c, 2c at none) and its footprint
        live = [(t, c) for t in tasks for c in t["candidates"]]
        return trim_to_budget(live, SECONDS_PER_CELL * 3 * candidates, [1, 2], ["none"], footprints=True)

    conv, add, concat = task("conv", 1000.0, 2), task("add", 50.0, 1), task("concat", 20.0, 5, measured=3)
    kept = trim([add, conv, concat], 5)  # 2 best ones to measure, then 3 more: conv's 2 and add's 1
    assert (ids(conv), ids(add), ids(concat)) == (["r0", "r1", "r2"], ["r0", "r1"], ["r0", "r1", "r2"])
    assert (conv["trimmed"], add["trimmed"], concat["trimmed"]) == (1, 2, 1)
    assert len(kept) == 8 and all(c in t["candidates"] for t, c in kept)
    conv, add = task("conv", 1000.0, 2), task("add", 50.0, 1)
    trim([conv, add], 0)  # no time at all: still every task's best, which its tables need
    assert (ids(conv), ids(add)) == (["r0"], ["r0"])
    conv = task("conv", 1000.0, 2)
    trim([conv], 100)
    assert ids(conv) == ["r0", "r1", "r2", "r3"] and "trimmed" not in conv


def test_a_claim_is_read_as_the_pair_timed_in_turns(tmp_path):
    """A variant 10 % faster than the default under pressure by the tables is a claim
    (open_claims); once the two are timed as a pair (variants.confirm), the variant's
    cell is the default's x the pair's ratio: kept where the pair agrees, dropped where
    it does not (no switching for nothing)."""
    from mtcc.variants.confirm import open_claims

    def tight(record, rank, alone1, high1, alone2):
        c = cand(record, alone1, high1, alone2, 1.0)
        c["rank"] = rank
        for cell in c["cells"].values():
            if "us" in cell:
                cell["samples_us"] = [cell["us"]] * 5
        return c

    char = hand_made(tmp_path)
    char["tasks"] = [task("real", 0, 1, [tight(3, 0, 10, 11, 6), tight(4, 1, 10.1, 9.9, 6.1)])]
    claims = open_claims(char, 5)
    assert [(d["id"], v["id"], cell) for _, d, v, cell in claims] == [("r3", "r4", "1c/high")]

    variant = char["tasks"][0]["candidates"][1]
    variant["confirmed"] = {"1c/high": {"against": "r3", "ratio": 1.0, "ratios": [0.99, 1.0, 1.0, 1.01, 1.02]}}
    var = variants.select_variants(char, write=False)
    assert [v["id"] for v in var["tasks"][0]["variants"]] == ["r3"]
    assert var["tasks"][0]["default"] == "r3" and open_claims(char, 5) == []

    variant["confirmed"] = {"1c/high": {"against": "r3", "ratio": 0.85, "ratios": [0.84, 0.85, 0.85, 0.86, 0.86]}}
    var = variants.select_variants(char, write=False)
    kept = {v["id"]: v for v in var["tasks"][0]["variants"]}
    assert list(kept) == ["r3", "r4"]
    assert kept["r4"]["latency_us"]["1c/high"] == pytest.approx(11 * 0.85)
    assert kept["r4"]["latency_error_us"]["1c/high"] == pytest.approx(11 * 0.85 * 0.02)  # the 2 % floor
    assert kept["r4"]["latency_confirmed"]["1c/high"]["against"] == "r3"
    assert kept["r4"]["latency_us"]["1c/none"] == 10.1  # a cell no pair tested stays as measured
    assert open_claims(char, 5) == []


def test_a_cold_searched_task_runs_what_its_pairs_show_fastest_alone(tmp_path):
    """A task searched cold (its candidates marked "searched"): its default starts at the
    cold search's best and moves to a candidate a pair shows faster alone by more than
    the pair's error (select.faster_by_pairs); a pair timed against that new default
    reads through the default's own pair to the first one's cell (a chain)."""
    from mtcc.variants.confirm import open_claims

    def tight(record, rank, alone1, high1, alone2, searched):
        c = cand(record, alone1, high1, alone2, 1.0)
        c.update(rank=rank, searched=searched)
        for cell in c["cells"].values():
            if "us" in cell:
                cell["samples_us"] = [cell["us"]] * 5
        return c

    char = hand_made(tmp_path)
    cold, hot, other = tight(3, 0, 10, 11, 6, "cold"), tight(4, 1, 9, 10, 5, "hot"), tight(5, 2, 9.5, 9, 5.5, "hot")
    char["tasks"] = [task("real", 0, 1, [cold, hot, other])]
    assert variants.select_variants(char, write=False)["tasks"][0]["default"] == "r3"
    # within the error: the cold search's best stays the default
    hot["confirmed"] = {"1c/none": {"against": "r3", "ratio": 0.99, "ratios": [0.97, 0.99, 1.01]}}
    assert variants.select_variants(char, write=False)["tasks"][0]["default"] == "r3"
    hot["confirmed"] = {"1c/none": {"against": "r3", "ratio": 0.8, "ratios": [0.8] * 5},
                        "1c/high": {"against": "r3", "ratio": 0.9, "ratios": [0.9] * 5}}
    var = variants.select_variants(char, write=False)
    assert var["tasks"][0]["default"] == "r4"
    # r5's claims are now against r4: open, then timed (here: by hand) and read as a chain
    assert {(d["id"], v["id"]) for _, d, v, _ in open_claims(char, 5)} == {("r4", "r5")}
    other["confirmed"] = {"1c/high": {"against": "r4", "ratio": 0.8, "ratios": [0.8] * 5},
                          "1c/none": {"against": "r4", "ratio": 1.1, "ratios": [1.1] * 5}}
    var = variants.select_variants(char, write=False)
    kept = {v["id"]: v for v in var["tasks"][0]["variants"]}
    assert var["tasks"][0]["default"] == "r4" and set(kept) == {"r4", "r5"}
    assert kept["r4"]["latency_us"]["1c/high"] == pytest.approx(11 * 0.9)
    assert kept["r5"]["latency_us"]["1c/high"] == pytest.approx(11 * 0.9 * 0.8)


def test_characterization_times_a_claim_as_a_pair(tiny_db, tmp_path):
    """A claim the tables make (here planted: a candidate's cell halved) is timed again
    with the default in turns; the selection then reads the pair's ratio, not the table."""
    from mtcc.variants.confirm import open_claims

    folder = tmp_path / "schedules"
    shutil.copytree(tiny_db["dir"], folder)
    matmul = next(n for n in tiny_db["tasks"] if "matmul" in n)
    kwargs = dict(calibration={"levels": {"none": {"stressor": None}}}, top_k=2, repeats=3,
                  min_repeat_ms=5, core_counts=[1], footprint_pairs=1, footprint_window_s=0.01,
                  check_machine=False)
    variants.characterize(tiny_db["model"], folder, confirm_rounds=0, **kwargs)
    path = folder / variants.CHARACTERIZATION
    char = json.loads(path.read_text())
    default, other = next(t for t in char["tasks"] if t["name"] == matmul)["candidates"]
    assert default["rank"] == 0 and not other.get("confirmed")
    # A tenth: a claim beyond the default's own error bar (half its samples' IQR) even when
    # the tiny kernel's samples spread widely (halving it once fell within that bar)
    planted = default["cells"]["1c/none"]["us"] / 10
    other["cells"]["1c/none"].update(us=planted, samples_us=[planted] * 6)
    # ... and heavier on a neighbour, so that the default stays on the Pareto front: above
    # the default's footprint as the selector reads it (a ratio below 1 is noise and reads
    # as 1; CI once measured the default under 0.5, and "its ratio + 0.5" was no heavier)
    heavier = footprint_objective((default["footprint"] or {}).get("ratio")) + 0.5
    other["footprint"] = {"ratio": heavier, "ratios": [heavier]}
    path.write_text(json.dumps(char))
    assert [(v["id"], cell) for _, _, v, cell in open_claims(char, 5)] == [(other["id"], "1c/none")], \
        (default["cells"]["1c/none"], default["footprint"], other["footprint"])

    lines = []
    again = variants.characterize(tiny_db["model"], folder, confirm_rounds=6, progress=lines.append, **kwargs)
    assert again["runs"][-1]["cells_measured"] == 0 and again["runs"][-1]["claims_confirmed"] == 1
    pair = next(t for t in again["tasks"] if t["name"] == matmul)["candidates"][1]["confirmed"]["1c/none"]
    assert pair["against"] == default["id"] and len(pair["ratios"]) == 6
    # The two hand schedules run a 64x128x128 matmul on one core within 2x of each other.
    assert 0.5 < pair["ratio"] < 2, pair
    assert any("as a pair" in line for line in lines)
    var = variants.select_variants(folder)
    entry = next(t for t in var["tasks"] if t["name"] == matmul)
    by = {v["id"]: v for v in entry["variants"]}
    if other["id"] in by:  # kept only if the pair says it beats the default
        assert by[other["id"]]["latency_us"]["1c/none"] == pytest.approx(
            default["cells"]["1c/none"]["us"] * pair["ratio"], rel=1e-3)
    assert open_claims(again, 5) == []
    # Resumed, the pair stands: nothing is timed again.
    third = variants.characterize(tiny_db["model"], folder, confirm_rounds=6, **kwargs)
    assert third["runs"][-1]["claims_confirmed"] == 0


def committed_calibration_path() -> Path:
    """A real calibration: this CPU's committed file (or the project's VMs' one)."""
    from mtcc.interference import machine

    folder = ROOT / "schedules" / "calibration"
    mine = folder / f"{machine.cpu_slug()}.json"
    return mine if mine.exists() else folder / "amd-epyc.json"


def committed_calibration() -> dict:
    from mtcc.interference import load

    return load(committed_calibration_path())


@pytest.mark.skipif(CORES < 2, reason="needs 2 cores: the candidate and the stressor apart")
def test_characterization_runs_the_stressor_during_pressure_cells_only(stream_db, tmp_path):
    """A real characterization with the calibrated "high" level (a 64-byte-stride writer
    over 128 MiB): every pressure cell records that its stressor was busy on the free
    core while the samples were taken, and no stressor ran during the "none" cells."""
    from mtcc.interference import machine

    cal = committed_calibration()
    assert cal["usable"] and cal["levels"]["high"]["stressor"]["kind"] in ("stream", "cache")
    folder = tmp_path / "schedules"
    shutil.copytree(stream_db["dir"], folder)
    char = variants.characterize(stream_db["model"], folder, calibration=cal, levels=["none", "high"],
                                 top_k=2, repeats=4, min_repeat_ms=20, core_counts=[1], stressor_cores=1,
                                 footprint_pairs=1, footprint_window_s=0.02, check_machine=False)
    (task,) = char["tasks"]
    assert task["skipped"] is None and len(task["candidates"]) == 2
    worker_cores, free = machine.cores()[:1], machine.cores()[1:2]
    for cand in task["candidates"]:
        assert cand["error"] is None, cand["error"]
        none, high = cand["cells"]["1c/none"], cand["cells"]["1c/high"]
        ran = high["stressor"]
        # Busy on the free core, not the candidate's, while it was resumed.  Measured here:
        # cpu_s/wall_s 0.97-1.00 on a quiet machine, 0.34-0.59 while other test runs or
        # benchmarks shared core 1 (CPU time also comes in 10 ms ticks).  0.3 still fails
        # a stressor that was never resumed (0.0) or ran under a third of the time.
        assert ran["cores"] == free and not set(ran["cores"]) & set(worker_cores)
        assert ran["wall_s"] > 0 and ran["cpu_s"] > 0.3 * ran["wall_s"], (cand["id"], ran)
        # Between its samples it is SIGSTOPped: the "none" samples had no stressor running.
        assert "stressor" not in none
        assert none["paused_cpu_s"] <= 0.05 * ran["wall_s"] + 0.02, (cand["id"], none)
        assert high["paused_cpu_s"] == 0  # the session's only stressor is the level's own
    json.dumps(char)  # stays plain JSON

    # The memory-bound task itself is slower beside the stream writer -- when the two
    # vCPUs really run at once (time-shared vCPUs make any neighbour read ~2x).
    ratios = [round(c["cells"]["1c/high"]["us"] / c["cells"]["1c/none"]["us"], 3) for c in task["candidates"]]
    concurrent, sharing = vcpus_concurrent()
    report = (f"pressure/alone {ratios} for {[c['id'] for c in task['candidates']]}, vCPU sharing "
              f"{sharing}, load {machine.load_average()}")
    if not concurrent:
        pytest.skip(f"vCPUs not known to be concurrent: slowdown not asserted ({report})")
    # The level's stressor is sized by a calibration of this CPU; borrowed from another CPU
    # (an Intel Xeon VM with the AMD EPYC file: 0.983-1.004x here, where its own memory
    # probe read 1.014x beside the stressor) it promises no slowdown.
    if committed_calibration_path().stem != machine.cpu_slug():
        pytest.skip(f"no calibration of this CPU ({machine.cpu_slug()}): slowdown not asserted ({report})")
    assert min(ratios) > 1.0, report


@pytest.mark.slow
@pytest.mark.skipif(CORES < 2, reason="needs 2 cores: the model and the stressor apart")
@pytest.mark.parametrize("name", ["squeezenet", "inception_v1"])
def test_selected_variants_are_not_slower_end_to_end_under_the_stressor(example_bundle, name):
    """The selector never makes things worse (the variants issue, point 4): the whole
    model pinned to core 0, mtcc's calibrated `high` stressor on core 1, the default
    variants and those the runtime's selector picks for (1 core, high) timed in one
    process, interleaved round by round.  Selected over default, the median of the
    rounds' ratios, may exceed 1 by at most the measurement's error: half the rounds'
    interquartile range, at least the 2 % below which variant selection calls two times
    the same (MIN_RELATIVE_ERROR).  Where the tables predict no gain beyond their error,
    the selector must switch nothing (squeezenet since its block margin: its best is 2.9 %
    of a block); inception_v1's tables predict gains in 4 of its 8 blocks under `high` (its
    claims confirmed as pairs), so its case times a real switch.  Measured here
    (2026-11-27, inception_v1, 3 tasks switched): 0.970 +- 0.043.  (resnet50 was the
    switching case until its slow convolutions were searched cold: its one pressure
    variant then no longer beat the new default; before that 0.968 +- 0.051, faster in 20
    of 30 rounds -- at the edge of what 2 shared vCPUs tell.)"""
    from mtcc.bench.prediction import measure
    from mtcc.interference import machine
    from mtcc.variants.select import MIN_RELATIVE_ERROR

    path = example_bundle(name)
    before = machine.vcpu_sharing()
    report = measure(path, cores=1, rounds=15, repeat=10, calibration=committed_calibration_path(),
                     levels=["high"])
    numbers = f"{report['rows']}; vCPU sharing before {before}, after {machine.vcpu_sharing()}"
    (row,) = report["rows"]
    assert row["cell"] == "1c/high", numbers
    chosen = row.get("selected")
    if name == "inception_v1":
        assert row["switched_tasks"], f"the test's premise: the selector switches inception_v1 under high: {numbers}"
    if not row["switched_tasks"]:
        assert chosen is None, numbers
        return
    assert chosen["rounds"] == 15 and chosen["predicted_gain"] > 0, numbers
    if chosen["measured_ratio_error"] > 0.25:
        pytest.skip(f"rounds too far apart to judge a few per cent (the host was busy): {numbers}")
    assert chosen["measured_ratio"] <= 1 + max(chosen["measured_ratio_error"], MIN_RELATIVE_ERROR), numbers


def test_a_cold_sample_is_the_median_of_its_single_calls():
    """cold_samples asks for `repeat` groups of single calls, as many as the hot timing's
    calls per sample within COLD_CALLS_MIN..MAX, and gives each group's median."""
    from mtcc.variants.worker import COLD_CALLS_MAX, COLD_CALLS_MIN, cold_samples

    asked = []

    def calls(n):
        asked.append(n)
        return [float(k) for k in range(n)]

    assert cold_samples(calls, number=1, repeat=2) == [(COLD_CALLS_MIN - 1) / 2, COLD_CALLS_MIN + (COLD_CALLS_MIN - 1) / 2]
    assert cold_samples(calls, number=10 ** 6, repeat=1) == [(COLD_CALLS_MAX - 1) / 2]
    assert asked == [2 * COLD_CALLS_MIN, COLD_CALLS_MAX]


def test_a_per_round_ratio_is_its_median_and_half_its_interquartile_range():
    """The prediction benchmark's error bars (selected / default, a level's measured /
    predicted slowdown) come from the rounds' ratios: median ± half the IQR; a single
    round has no spread."""
    from mtcc.bench.prediction import median_and_error

    middle, error = median_and_error([1.4, 1.0, 1.2, 1.3, 1.1])
    assert middle == pytest.approx(1.2) and error == pytest.approx(0.15)
    assert median_and_error([1.07]) == (1.07, 0.0)

"""The committed schedules of the example models: every model packs from them without
tuning, every task has a tuned record, every kept variant, forced in turn, computes
what ONNX Runtime computes (all variants are the same function), and every committed
variants.json is what the Pareto selection makes of the committed characterization.json."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import EXAMPLES, HOST_MCPU, ROOT

TARGET_DIR = "llvm-x86-64-v4"
# Every committed schedules folder: the portable x86-64-v4 ones of every example, and
# those tuned for another level (x86-64-v3: a CPU without AVX-512) where committed.
COMMITTED = sorted(str(p.parent.relative_to(ROOT / "schedules"))
                   for p in (ROOT / "schedules").glob("*/llvm-*/database_tuning_record.json"))


def _schedules(name):
    return ROOT / "schedules" / name / TARGET_DIR


def test_every_example_has_portable_schedules():
    assert {f"{name}/{TARGET_DIR}" for name in EXAMPLES} <= set(COMMITTED)


def _selection_differences(sched) -> list[str]:
    """Where the committed variants.json differs from select_variants(characterization.json)."""
    from mtcc.variants.select import select_variants

    made = select_variants(json.loads((sched / "characterization.json").read_text()), write=False)
    committed = json.loads((sched / "variants.json").read_text())
    diffs = [k for k in sorted(set(made) | set(committed)) if k != "tasks" and made.get(k) != committed.get(k)]
    made_tasks = {t["name"]: t for t in made["tasks"]}
    committed_tasks = {t["name"]: t for t in committed.get("tasks", [])}
    diffs += [f"tasks/{n}" for n in sorted(set(made_tasks) | set(committed_tasks))
              if made_tasks.get(n) != committed_tasks.get(n)]
    if not diffs and made != committed:  # e.g. the same tasks in another order
        diffs.append("task order")
    return diffs


@pytest.mark.parametrize("folder", COMMITTED)
def test_committed_variants_match_their_characterization(folder, tmp_path):
    """variants.json is derived data: regenerating it from the committed
    characterization.json gives the committed file exactly (a stale or hand-edited
    one would pack variants nobody measured that way)."""
    import shutil

    sched = ROOT / "schedules" / folder
    assert (sched / "variants.json").is_file() and (sched / "characterization.json").is_file()
    assert _selection_differences(sched) == [], \
        f"{sched}/variants.json is stale: run `mtcc tune ... --stage characterize` (select) again"

    # The comparison sees a stale file: one latency changed in a copy of variants.json ...
    stale = tmp_path / "stale"
    shutil.copytree(sched, stale)
    doc = json.loads((stale / "variants.json").read_text())
    task = next(t for t in doc["tasks"] if t.get("measured") and t["variants"])
    cell = next(iter(task["variants"][0]["latency_us"]))
    task["variants"][0]["latency_us"][cell] *= 1.5
    (stale / "variants.json").write_text(json.dumps(doc))
    assert _selection_differences(stale) == [f"tasks/{task['name']}"]
    # ... and a characterization measured again (one cell the default's latency is read
    # from slower: its own, or for a cell confirmed as a pair, that of the candidate it
    # was timed against) without selecting again.
    shutil.copyfile(sched / "variants.json", stale / "variants.json")
    char = json.loads((stale / "characterization.json").read_text())
    default = next(v for v in task["variants"] if v["id"] == task["default"])
    cell = next(iter(default["latency_us"]))
    source = (default.get("latency_confirmed") or {}).get(cell, {}).get("against", default["id"])
    ctask = next(t for t in char["tasks"] if t["name"] == task["name"])
    cand = next(c for c in ctask["candidates"] if c["id"] == source)
    cand["cells"][cell]["us"] *= 1.5
    (stale / "characterization.json").write_text(json.dumps(char))
    assert f"tasks/{task['name']}" in _selection_differences(stale)


@pytest.mark.slow
@pytest.mark.parametrize("folder", COMMITTED)
def test_committed_schedules_pack_and_every_variant_matches_onnxruntime(models_dir, folder, tmp_path):
    import mtcc
    from mtcc import frontend
    from mtcc.bench import baselines
    from mtcc.packing import pack
    from mtcc.target import runnable_here

    name = folder.split("/")[0]
    sched = ROOT / "schedules" / folder
    meta = json.loads((sched / "tune.json").read_text())
    assert sched.name == f"llvm-{meta['mcpu']}" and meta["runs"], "tune.json must say how the schedules were made"

    model_path = models_dir / f"{name}.onnx"
    # Built for the tuned target where this CPU runs it, else the same records for this
    # CPU's level (packing for the tuned target everywhere is `make pack`'s job in CI; a
    # bundle this CPU cannot run is test_bundle_for_another_cpu_is_refused).
    target = None if runnable_here(meta["mcpu"]) else HOST_MCPU
    info = pack(model_path, sched, tmp_path / f"{name}.mtcc", target=target)
    loaded = mtcc.load(info["path"])
    has_variants = (sched / "variants.json").exists()
    assert loaded.selector["source"] == ("variants.json" if has_variants else "database")

    # No task may fall back to TVM's default schedule: the lowering and the committed
    # database must agree (a changed lowering renames or reshapes tasks).
    untuned = [t["task"] for t in loaded.selector["tasks"] if any(v.get("untuned") for v in t["variants"])]
    assert not untuned, f"{name}: tasks without a committed record: {untuned}"

    model = frontend.load(model_path)
    feeds = baselines.random_inputs(model, 0)
    want = baselines.OnnxRuntime(model).run(feeds)

    def check(got):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.shape == w.shape and g.dtype == w.dtype
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4 * float(np.abs(w).max() or 1.0))

    check(list(loaded.run_dict(feeds).values()))
    # Run k forces the k-th variant of every task that has one: each variant runs once.
    forced = set()
    for k in range(max(len(vs) for vs in loaded.variants.values())):
        loaded.reset()
        choice = {task: vs[k].id for task, vs in loaded.variants.items() if len(vs) > k}
        loaded.select(choice)
        forced.update(choice.items())
        check(list(loaded.run_dict(feeds).values()))
    assert len(forced) == info["variants"] == sum(len(vs) for vs in loaded.variants.values())


def test_bundle_for_another_cpu_is_refused(models_dir, tmp_path):
    """A committed x86-64-v4 bundle on a CPU without AVX-512 (this one, or one simulated
    with MTCC_FAKE_CPU_FEATURES): packing works, inspect says it cannot load here, and
    running it is exit 3 naming the missing extensions -- before any of its code runs."""
    import os

    from conftest import run_mtcc
    from mtcc.cpu import FAKE_ENV

    out = tmp_path / "transformer.mtcc"
    packed = run_mtcc("pack", models_dir / "transformer.onnx", "--schedules", _schedules("transformer"),
                      "-o", out, "--json")
    assert packed.returncode == 0, packed.stderr
    avx2_only = "sse4_1,sse4_2,popcnt,avx,avx2,fma,bmi1,bmi2,f16c,movbe,abm"
    env = {**os.environ, FAKE_ENV: avx2_only}
    shown = run_mtcc("inspect", out, "--json", env=env)
    assert shown.returncode == 0 and json.loads(shown.stdout)["loadable_here"] is False
    np.savez(tmp_path / "in.npz", tokens=np.zeros((1, 64, 128), np.float32))
    ran = run_mtcc("run", out, "--input", tmp_path / "in.npz", env=env)
    assert ran.returncode == 3, ran.stderr
    assert "avx512f" in ran.stderr and len(ran.stderr.strip().splitlines()) == 1

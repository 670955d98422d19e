"""The committed schedules of the example models: every model packs from them without
tuning, every task has a tuned record, and every kept variant, forced in turn,
computes what ONNX Runtime computes (all variants are the same function)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import EXAMPLES, ROOT

TARGET_DIR = "llvm-x86-64-v4"


def _schedules(name):
    return ROOT / "schedules" / name / TARGET_DIR


@pytest.mark.parametrize("name", EXAMPLES)
def test_committed_schedules_pack_and_every_variant_matches_onnxruntime(models_dir, name, tmp_path):
    import mtcc
    from mtcc import baselines, frontend, packing

    sched = _schedules(name)
    assert (sched / "database_tuning_record.json").is_file(), f"no committed schedules for {name}"
    meta = json.loads((sched / "tune.json").read_text())
    assert meta["mcpu"] == "x86-64-v4" and meta["runs"], "tune.json must say how the schedules were made"

    model_path = models_dir / f"{name}.onnx"
    info = packing.pack(model_path, sched, tmp_path / f"{name}.mtcc")
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

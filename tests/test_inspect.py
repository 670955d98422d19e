"""`mtcc inspect --json` holds the contract of docs/method.md; the API returns plain data."""
from __future__ import annotations

import json

import pytest

import mtcc
from conftest import EXAMPLES, run_mtcc, slow_params
from onnx_factory import libm_calls, save


@pytest.mark.parametrize("name", ["squeezenet", "transformer"])
def test_inspect_json_contract(models_dir, name):
    proc = run_mtcc("inspect", models_dir / f"{name}.onnx", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)  # exactly one JSON object on stdout
    for key in ("model", "inputs", "outputs", "tasks", "total_flops"):
        assert key in info
    assert info["model"] == name
    assert info["tasks"], "a real model has tasks"
    for task in info["tasks"]:
        assert {"name", "flops", "weight", "inputs"} <= set(task)
        assert task["weight"] >= 1 and task["flops"] >= 0
    assert info["total_flops"] == pytest.approx(sum(t["flops"] * t["weight"] for t in info["tasks"]))
    # every call of main belongs to a task, and counts agree with the task weights
    assert len(info["calls"]) == sum(t["weight"] for t in info["tasks"])
    names = {t["name"] for t in info["tasks"]}
    assert all(c["task"] in names for c in info["calls"])


def test_inspect_table_goes_to_stderr(models_dir):
    proc = run_mtcc("inspect", models_dir / "transformer.onnx")
    assert proc.returncode == 0, proc.stderr
    assert "layer_norm" in proc.stderr and "GFLOP" in proc.stderr


# Lowering resnet50 takes ~30 s on 2 cores (inception_v1 ~9 s, squeezenet ~4 s).
@pytest.mark.parametrize("name", slow_params(EXAMPLES, {"resnet50"}))
def test_api_counts(models_dir, name):
    info = mtcc.inspect(models_dir / f"{name}.onnx")
    json.dumps(info)  # plain data
    kinds = {t["kind"] for t in info["tasks"]}
    if name == "transformer":
        assert {"matmul", "softmax", "layer_norm"} <= kinds
    else:
        assert "conv2d" in kinds
        conv_flops = sum(t["flops"] * t["weight"] for t in info["tasks"] if t["kind"] == "conv2d")
        assert conv_flops > 0.9 * info["total_flops"]
    # published multiply-accumulate counts of the architectures, x2 for FLOPs
    expected_gflop = {"squeezenet": 0.7, "inception_v1": 3.2, "resnet50": 7.7, "transformer": 0.056}[name]
    assert info["total_flops"] / 1e9 == pytest.approx(expected_gflop, rel=0.25)


def test_inspect_names_the_tasks_left_calling_libm(models_dir, tmp_path):
    """A task whose math stays a scalar libm call (a Sin, an Atan) is named, in --json and
    as a warning under the table; the examples and the ops mtcc computes by polynomials
    (Sigmoid, Log) have none."""
    info = mtcc.inspect(save(libm_calls(), tmp_path / "libm.onnx"))
    flagged = {t["name"]: t["scalar_math"] for t in info["tasks"] if t["scalar_math"]}
    assert sorted(flagged.values()) == [["atan"], ["sin"]], info["tasks"]
    assert all(not t["scalar_math"] for t in info["tasks"] if t["kind"] in ("sigmoid", "log"))
    proc = run_mtcc("inspect", tmp_path / "libm.onnx")
    assert proc.returncode == 0 and "2 task(s) call libm" in proc.stderr, proc.stderr
    assert not any(t["scalar_math"] for t in mtcc.inspect(models_dir / "transformer.onnx")["tasks"])

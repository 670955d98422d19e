"""Bad inputs: exit code 2 and one line on stderr naming the file and what is wrong."""
from __future__ import annotations

import json

import pytest

import mtcc
from conftest import run_mtcc
from onnx_factory import save, tiny_conv, unsupported_op


def _one_line_error(proc, code: int, *needles: str) -> str:
    assert proc.returncode == code, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_missing_file(tmp_path):
    path = tmp_path / "absent.onnx"
    _one_line_error(run_mtcc("inspect", path), 2, str(path), "no such file")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    _one_line_error(run_mtcc("inspect", path), 2, str(path), "empty")


def test_truncated_file(tmp_path, models_dir):
    path = tmp_path / "cut.onnx"
    path.write_bytes((models_dir / "squeezenet.onnx").read_bytes()[:100_000])
    _one_line_error(run_mtcc("inspect", path), 2, str(path), "truncated")


def test_not_onnx(tmp_path):
    path = tmp_path / "notes.onnx"
    path.write_text("this is a text file, not a model\n" * 20)
    _one_line_error(run_mtcc("inspect", path), 2, str(path), "not an ONNX model")


def test_unsupported_operator_names_op_and_node(tmp_path):
    path = save(unsupported_op(), tmp_path / "celu.onnx")
    _one_line_error(run_mtcc("inspect", path), 2, path, "Celu", "my_celu")


def test_dynamic_dimension_needs_input_shape(tmp_path):
    path = save(tiny_conv(dynamic_batch=True), tmp_path / "dyn.onnx")
    _one_line_error(run_mtcc("inspect", path), 2, path, "'x'", "dynamic dimension 0", "'N'", "--input-shape")
    ok = run_mtcc("inspect", path, "--input-shape", "x:1x3x16x16", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["inputs"][0]["shape"] == [1, 3, 16, 16]


def test_input_shape_for_unknown_input(tmp_path):
    path = save(tiny_conv(), tmp_path / "conv.onnx")
    _one_line_error(run_mtcc("inspect", path, "--input-shape", "nope:1x3x16x16"), 2, "--input-shape", "nope")


def test_malformed_input_shape_flag(tmp_path):
    path = save(tiny_conv(), tmp_path / "conv.onnx")
    _one_line_error(run_mtcc("inspect", path, "--input-shape", "x=1,3"), 2, "--input-shape")


def test_unknown_flag_is_one_line():
    _one_line_error(run_mtcc("inspect", "--no-such-flag"), 2, "--no-such-flag")


def test_debug_shows_traceback(tmp_path):
    proc = run_mtcc("inspect", tmp_path / "absent.onnx", "--debug")
    assert proc.returncode == 2 and "Traceback" in proc.stderr


def test_initializers_listed_as_inputs_are_weights(tmp_path):
    path = save(tiny_conv(with_init_as_input=True), tmp_path / "old.onnx")
    info = mtcc.inspect(path)
    assert [i["name"] for i in info["inputs"]] == ["x"]


def test_api_raises_bad_input(tmp_path):
    with pytest.raises(mtcc.BadInput, match="no such file"):
        mtcc.inspect(tmp_path / "absent.onnx")


@pytest.mark.parametrize("opset", [9, 17])  # squeezenet's opset reads Slice from attributes
def test_conv_padded_to_the_block_runs_blocked_and_computes_the_same(tmp_path, opset):
    # A conv whose output channels miss the block of 16 by a little (30) is padded to 32
    # and sliced back, so the layout pass blocks it; one that would waste too much (20)
    # stays as it was.  Compiled (TVM's default schedules), both imports match ONNX
    # Runtime on the original model.
    import numpy as np

    from mtcc.bench import baselines
    from mtcc.frontend import tasks
    from mtcc.frontend.onnx_import import pad_conv_channels
    from mtcc.target import make_target
    from mtcc.tune import compile as build
    from conftest import HOST_MCPU
    from onnx_factory import classifier_heads

    original = classifier_heads(opset)
    padded, count = pad_conv_channels(original, 16)
    assert count == 1
    assert [n.op_type for n in padded.graph.node].count("Slice") == 1
    assert pad_conv_channels(original, 16, max_share=1.0)[1] == 2
    path = save(original, tmp_path / "heads.onnx")
    target = make_target(HOST_MCPU, 2)
    blocked = {}
    for pad in (True, False):
        model, mod = mtcc.frontend.import_model(path, pad_output_channels=pad)
        blocked[pad] = sum(t.name.startswith("fused_conv2d_NCHWc") for t in tasks.extract(mod, target).tasks)
        compiled = build.compile_module(mod, target)
        feeds = baselines.random_inputs(model, 0)
        want = baselines.OnnxRuntime(model).run(feeds)
        for got, expected in zip(compiled.session().run(feeds["x"]), want):
            assert got.shape == expected.shape
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * float(np.abs(expected).max()))
    assert (blocked[True], blocked[False]) == (1, 0), blocked


def test_batch_norm_folded_into_its_conv_computes_the_same(tmp_path):
    # Each BatchNormalization after a Conv whose output nothing else reads becomes that
    # Conv's weights and bias (also for a Conv without bias); the one whose Conv output is
    # read twice stays.  ONNX Runtime gives the same outputs before and after, and the
    # Relax import with folding (TVM's default schedules) matches ONNX Runtime on the
    # original: its fused conv tasks now end in the ReLU instead of leaving it a task.
    import numpy as np
    import onnxruntime as ort

    from mtcc.api import inspect
    from mtcc.bench import baselines
    from mtcc.frontend.onnx_import import fold_batch_norms
    from mtcc.target import make_target
    from mtcc.tune import compile as build
    from conftest import HOST_MCPU
    from onnx_factory import conv_batch_norm

    original = conv_batch_norm()
    folded, count = fold_batch_norms(original)
    assert count == 2
    ops = [n.op_type for n in folded.graph.node]
    assert ops.count("BatchNormalization") == 1 and ops.count("Conv") == 3
    assert fold_batch_norms(folded)[1] == 0
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    want = ort.InferenceSession(original.SerializeToString()).run(None, {"x": x})[0]
    got = ort.InferenceSession(folded.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))

    path = save(original, tmp_path / "conv_bn.onnx")
    for fold in (True, False):
        model, mod = mtcc.frontend.import_model(path, fold_batch_norm=fold)
        compiled = build.compile_module(mod, make_target(HOST_MCPU, 2))
        feeds = baselines.random_inputs(model, 0)
        got = compiled.session().run(feeds["x"])[0]
        want = baselines.OnnxRuntime(model).run(feeds)[0]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()))
    names = [t["name"] for t in inspect(path)["tasks"]]
    assert not any(n.startswith("fused_relu") or n == "relu" for n in names), names

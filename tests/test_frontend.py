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

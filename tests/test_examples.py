"""Example models: deterministic bytes and a sensible output spread."""
from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import onnx
import pytest

from conftest import EXAMPLES, ROOT


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.onnx"))}


def test_generation_is_deterministic(tmp_path):
    for run in ("a", "b"):
        subprocess.run([sys.executable, str(ROOT / "examples" / "make_models.py"), "--out", str(tmp_path / run)],
                       check=True, capture_output=True)
    a, b = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert sorted(a) == sorted(f"{n}.onnx" for n in EXAMPLES)
    assert a == b


@pytest.mark.parametrize("name", EXAMPLES)
def test_weights_are_random_and_outputs_spread(models_dir, name):
    import onnxruntime as ort

    model = onnx.load(str(models_dir / f"{name}.onnx"))
    onnx.checker.check_model(model)
    assert not any(n.op_type == "ConstantOfShape" for n in model.graph.node)
    big = [onnx.numpy_helper.to_array(t) for t in model.graph.initializer if np.prod(t.dims) > 64]
    assert big and all(np.unique(a).size > 16 for a in big), "weights must be random, not constant"
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    out = [sess.run(None, {inp.name: np.random.default_rng(s).standard_normal(inp.shape).astype(np.float32)})[0]
           for s in (0, 1)]
    for y in out:
        assert np.isfinite(y).all()
    if name == "transformer":  # layer-normalized hidden states
        assert 0.5 < out[0].std() < 2.0
    else:  # a softmax over 1000 classes: neither one-hot nor flat
        assert 2e-3 < out[0].max() < 0.5
        assert out[0].std() > 1e-3
    # different inputs give different outputs: the network did not saturate
    assert np.abs(out[0] - out[1]).max() > 1e-3

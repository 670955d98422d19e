"""The Relax module built with TVM (default schedules) computes what ONNX Runtime does,
on seeded random inputs and the examples' random weights."""
from __future__ import annotations

import re

import numpy as np
import onnx
import pytest

from conftest import EXAMPLES, HOST_MCPU, slow_params
from mtcc import frontend
from mtcc.bench import baselines
from mtcc.tune import compile as build
from mtcc.target import make_target
from onnx_factory import (broadcasting_reductions, fractional_powers, local_response_norms, max_pools, op_zoo,
                          pre_activation, save, softmaxes, tiny_conv, transcendentals)

# float32 with different summation orders: relative to the output's own scale.
RTOL, ATOL_SCALE = 1e-4, 1e-4


def _compare(path, input_shapes=None):
    model, mod = frontend.import_model(path, input_shapes)
    compiled = build.compile_module(mod, make_target(HOST_MCPU, 2))
    for seed in (0, 1):
        feeds = baselines.random_inputs(model, seed)
        got = compiled.session().run(*[feeds[i.name] for i in model.inputs])
        want = baselines.OnnxRuntime(model).run(feeds)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.shape == w.shape
            finite = np.abs(w[np.isfinite(w)])  # the scale of the finite values; inf and NaN must match exactly
            np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL_SCALE * float(finite.max() if finite.size else 1.0))


# Compiling resnet50 takes ~45 s on 2 cores, inception_v1 ~21 s, squeezenet ~8 s.
@pytest.mark.parametrize("name", slow_params(EXAMPLES, {"inception_v1", "resnet50"}))
def test_example_matches_onnxruntime(models_dir, name):
    _compare(models_dir / f"{name}.onnx")


def test_ops_beyond_examples(tmp_path):
    _compare(save(op_zoo(), tmp_path / "op_zoo.onnx"))


def test_constant_powers_by_square_roots_match_onnxruntime(tmp_path):
    """x ** c for c in quarters goes through square roots (frontend.tasks.legalize_power),
    LRN's beta 0.75 included; other exponents through pow.  Every output as ONNX Runtime's."""
    _compare(save(fractional_powers(), tmp_path / "powers.onnx"))


def test_local_response_norms_are_one_task_each_and_match_onnxruntime(tmp_path):
    """frontend.lrn puts each LRN back together as one task, in the blocked layout (a
    window across two channel blocks, beta through pow) and in plain NCHW (beta by
    square roots), and computes what ONNX Runtime does."""
    from mtcc.frontend.tasks import extract

    path = save(local_response_norms(), tmp_path / "lrn.onnx")
    _, mod = frontend.import_model(path)
    tasks = extract(mod, make_target(HOST_MCPU, 2)).tasks
    kinds = [task.name for task in tasks]
    assert sum(name.startswith("local_response_norm") for name in kinds) == 2, kinds
    assert not any("pool" in name or "power" in name or "divide" in name for name in kinds), kinds
    # the task's kind names the whole op (mtcc inspect, tune's per-kind reference rates)
    assert {t.kind for t in tasks if t.name.startswith("local_response_norm")} == {"lrn"}, tasks
    _compare(path)


def _libm_calls(path) -> dict[str, set[str]]:
    """{function: its math that stays a scalar libm call} after mtcc's lowering, of the
    functions legalize_with_polynomials covers: exp, log, erf, tanh, sigmoid."""
    from mtcc.frontend.tasks import legalize_and_fuse, scalar_math

    _, mod = frontend.import_model(path)
    fused = legalize_and_fuse(mod, make_target(HOST_MCPU, 2))
    return {gv.name_hint: set(scalar_math(fused[gv])) & {"exp", "log", "erf", "tanh", "sigmoid"}
            for gv in fused.get_global_vars() if gv.name_hint != "main"}


def test_softmax_with_the_polynomial_exp_matches_onnxruntime(tmp_path):
    """frontend.tasks.legalize_with_polynomials: every softmax is one task whose exp TVM
    computes by range reduction and a polynomial (no call to libm's expf, which does not
    vectorize); large logits, a middle axis and a -1e9 mask as ONNX Runtime computes them."""
    path = save(softmaxes(), tmp_path / "softmaxes.onnx")
    calls = _libm_calls(path)
    assert sum("softmax" in name for name in calls) >= 2 and not any(calls.values()), calls
    _compare(path)


def test_exp_log_erf_and_tanh_by_polynomials_match_onnxruntime(tmp_path):
    """Exp, Log, Sigmoid, Tanh, both Gelus, Elu, Softplus and LogSoftmax with no call to
    libm's exp, log, erf or tanh, across their tails (for Log: denormals, 0, negatives,
    +inf), as ONNX Runtime computes them."""
    path = save(transcendentals(), tmp_path / "transcendentals.onnx")
    calls = _libm_calls(path)
    assert len(calls) >= 5 and not any(calls.values()), calls
    _compare(path)


def test_max_min_sum_mean_with_constants_are_blocked_and_match_onnxruntime(tmp_path):
    """frontend.layout.broadcasting_reductions_as_binary_ops: a Max, Min and Mean with a
    constant after a convolution no longer stop ConvertLayout (the convolution is
    blocked, NCHW16c; they fuse with each other), and compute what ONNX Runtime does."""
    from mtcc.frontend.tasks import legalize_and_fuse

    path = save(broadcasting_reductions(), tmp_path / "reductions.onnx")
    _, mod = frontend.import_model(path)
    fused = legalize_and_fuse(mod, make_target(HOST_MCPU, 2))
    names = [gv.name_hint for gv in fused.get_global_vars()]
    assert any("conv2d_NCHWc" in name for name in names), names
    assert not any("stack" in name for name in names), names
    _compare(path)


@pytest.mark.parametrize("opset", [9, 13])
def test_pre_activation_batch_norm_and_scale_are_blocked_and_match_onnxruntime(tmp_path, opset):
    """frontend.onnx_import.batch_norms_as_scale_shift and constants_at_full_rank: a
    BatchNormalization with no conv before it and a Mul/Add by unsqueezed [C, 1, 1]
    constants (densenet121 as the zoo has it) run in the blocked layout, fused into one
    task with no subtract or divide, with no layout transform but into and out of the
    model, and compute what ONNX Runtime does."""
    from mtcc.frontend.tasks import legalize_and_fuse

    path = save(pre_activation(opset), tmp_path / "pre_activation.onnx")
    _, mod = frontend.import_model(path)
    fused = legalize_and_fuse(mod, make_target(HOST_MCPU, 2))
    funcs = {gv.name_hint: fused[gv] for gv in fused.get_global_vars() if gv.name_hint != "main"}
    assert not any("subtract" in name or "divide" in name for name in funcs), list(funcs)
    scales = [f for name, f in funcs.items() if "multiply" in name]
    assert len(scales) == 1, list(funcs)
    # what it reads and writes is NCHW16c (5-d), as the convolutions on either side
    buffers = [p.ty for p in scales[0].params if hasattr(p.ty, "shape")]
    assert len(buffers) >= 3 and all(len(b.shape) == 5 for b in buffers), buffers
    # the import a schedules folder tuned before this option existed asks for (tune.json)
    _, plain = frontend.import_model(path, per_channel_constants=False)
    assert any("subtract" in gv.name_hint for gv in legalize_and_fuse(plain, make_target(HOST_MCPU, 2)).get_global_vars())
    _compare(path)


def test_both_per_channel_rewrites_share_one_shape_inference(tmp_path, monkeypatch):
    """The BN rewrite keeps every name the constants' rewrite reads, so to_relax infers
    the ranks once for both (shape inference walks the whole model: densenet121's took
    both passes), and both still rewrite what they did."""
    from mtcc.frontend import onnx_import

    path = save(pre_activation(), tmp_path / "pre_activation.onnx")
    calls = []
    real = onnx_import._ranks
    monkeypatch.setattr(onnx_import, "_ranks", lambda proto: calls.append(1) or real(proto))
    counts = {}
    for name in ("batch_norms_as_scale_shift", "constants_at_full_rank"):
        rewrite = getattr(onnx_import, name)
        monkeypatch.setattr(onnx_import, name, lambda proto, ranks=None, _rewrite=rewrite, _name=name:
                            counts.setdefault(_name, _rewrite(proto, ranks)))
    frontend.import_model(path)
    assert {name: count for name, (_, count) in counts.items()} == {
        "batch_norms_as_scale_shift": 1, "constants_at_full_rank": 2}
    assert len(calls) == 1


def test_only_four_dimensional_operands_get_full_rank_constants(models_dir):
    """The transformer's biases (on 3-d tensors) stay as they are: its tasks, and the
    committed schedules keyed by them, do not change."""
    from mtcc.frontend.onnx_import import constants_at_full_rank

    proto = onnx.load(models_dir / "transformer.onnx")
    assert any(n.op_type == "Add" and any(i.name in n.input for i in proto.graph.initializer)
               for n in proto.graph.node)
    assert constants_at_full_rank(proto)[1] == 0
    assert constants_at_full_rank(pre_activation())[1] == 2


def test_max_pools_written_out_match_onnxruntime(tmp_path):
    """frontend.tasks.legalize_max_pool2d: pools in NCHW16c written out, with padding,
    strides and a dilation, as ONNX Runtime computes them, with no reduction axis; the one
    wider than MAX_POOL_TERMS and those in plain NCHW keep TOPI's reduction."""
    from mtcc.frontend.tasks import legalize_and_fuse

    path = save(max_pools(), tmp_path / "pools.onnx")
    _, mod = frontend.import_model(path)
    fused = legalize_and_fuse(mod, make_target(HOST_MCPU, 2))
    reductions = {gv.name_hint: re.search(r'remap\("S+R', fused[gv].script()) is not None
                  for gv in fused.get_global_vars() if "pool" in gv.name_hint}
    assert len(reductions) == 5 and sum(reductions.values()) == 3, reductions
    _compare(path)


def test_which_exponents_are_computed_by_square_roots():
    from mtcc.frontend.tasks import quarter_power

    assert quarter_power(0.75) == (0, 0.75, False)
    assert quarter_power(-2.5) == (2, 0.5, True)
    assert quarter_power(2.0) is None and quarter_power(1 / 3) is None and quarter_power(3.25) is None


@pytest.mark.slow
def test_shufflenet_beyond_examples(tmp_path):
    """A real architecture with ops the examples lack (channel shuffle via
    Reshape/Transpose, grouped convolutions), its constant weights made random."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
    import make_models

    model = make_models.zoo_model("shufflenet", seed=21)
    assert {"Transpose", "Reshape"} <= {n.op_type for n in model.graph.node}
    _compare(save(model, tmp_path / "shufflenet.onnx"))


def test_dynamic_batch_fixed_by_input_shape(tmp_path):
    _compare(save(tiny_conv(dynamic_batch=True), tmp_path / "dyn.onnx"), ["x:2x3x16x16"])

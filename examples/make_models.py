#!/usr/bin/env python3
"""Write mtcc's example ONNX models, deterministically (same bytes every run).

* squeezenet, inception_v1, resnet50: the model-zoo architectures that ship
  inside the `onnx` package (onnx/backend/test/data/light/).  There every
  weight is a `ConstantOfShape` node filled with 0.02, which saturates the
  outputs and makes any numerics comparison meaningless, so each such node is
  replaced by a seeded random initializer of a sensible scale (fan-in scaled
  for Conv/Gemm weights, around 1 for BatchNorm scales and variances).
* transformer: a small two-layer encoder (LayerNormalization, MatMul, Softmax,
  Gelu written with Erf, Reshape/Transpose) built with onnx.helper.

Usage:  python examples/make_models.py --out examples/models [--only NAME]
"""
from __future__ import annotations

import argparse
import hashlib
import math
import os
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

LIGHT_DIR = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
ZOO_MODELS = ("squeezenet", "inception_v1", "resnet50")
ALL_MODELS = ZOO_MODELS + ("transformer",)
# A seed per model so adding a model never changes the others' bytes.
SEEDS = {"squeezenet": 11, "inception_v1": 12, "resnet50": 13, "transformer": 14}
# He init keeps each layer's variance but deep nets still grow their activations
# (max pools, residual sums), so the classifier is scaled down to give logits with
# a standard deviation of about 2: the softmax output is then spread, not one-hot.
# Measured once with ONNX Runtime on N(0,1) inputs; fixed here so the bytes never
# depend on the machine's floating point.
CLASSIFIER_GAIN = {"squeezenet": 1.0, "inception_v1": 1 / 75, "resnet50": 1 / 50}


def _consumers(graph: onnx.GraphProto) -> dict[str, list[tuple[onnx.NodeProto, int]]]:
    uses: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in graph.node:
        for k, name in enumerate(node.input):
            uses.setdefault(name, []).append((node, k))
    return uses


def _role(name: str, uses) -> tuple[str, int, onnx.NodeProto | None]:
    """(op_type, input index, node) of the op that finally consumes a constant,
    looking through Reshape (inception_v1 reshapes one of its weights)."""
    for _ in range(4):
        users = uses.get(name, [])
        if not users:
            return ("", -1, None)
        node, k = users[0]
        if node.op_type == "Reshape" and k == 0:
            name = node.output[0]
            continue
        return (node.op_type, k, node)
    return ("", -1, None)


def _random_weight(rng, shape, op_type: str, index: int, node, is_classifier: bool) -> np.ndarray:
    shape = tuple(int(d) for d in shape)
    if op_type == "Conv" and index == 1:
        fan_in = max(1, int(np.prod(shape[1:])))  # shape[1] is already C_in / group
        gain = 1.0 if is_classifier else math.sqrt(2.0)  # He init under ReLU
        return rng.normal(0.0, gain / math.sqrt(fan_in), shape)
    if op_type == "Gemm" and index == 1:
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        fan_in = shape[1] if trans_b else shape[0]
        return rng.normal(0.0, 1.0 / math.sqrt(max(1, fan_in)), shape)
    if op_type == "BatchNormalization":
        if index == 1:  # scale
            return rng.uniform(0.5, 1.0, shape)
        if index == 2:  # bias
            return rng.normal(0.0, 0.1, shape)
        if index == 3:  # running mean
            return rng.normal(0.0, 0.1, shape)
        if index == 4:  # running variance, strictly positive
            return rng.uniform(0.5, 1.5, shape)
    # biases and anything else: small
    return rng.normal(0.0, 0.05, shape)


def zoo_model(name: str, seed: int | None = None, classifier_gain: float | None = None) -> onnx.ModelProto:
    """The model-zoo architecture light_<name> with ConstantOfShape weights made random
    (any of the folder's models; seed and gain default to the examples' own)."""
    model = onnx.load(str(LIGHT_DIR / f"light_{name}.onnx"))
    graph = model.graph
    rng = np.random.default_rng(SEEDS[name] if seed is None else seed)
    gain = CLASSIFIER_GAIN.get(name, 1.0) if classifier_gain is None else classifier_gain
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    uses = _consumers(graph)
    # The classifier is the last Conv/Gemm: unit gain there keeps the logits'
    # spread moderate so the softmax output is not one-hot.
    weight_users = [n for n in graph.node if n.op_type in ("Conv", "Gemm")]
    classifier = weight_users[-1] if weight_users else None

    new_nodes, new_inits = [], []
    for node in graph.node:
        if node.op_type != "ConstantOfShape":
            new_nodes.append(node)
            continue
        shape = inits[node.input[0]]
        op_type, index, user = _role(node.output[0], uses)
        value = _random_weight(rng, shape, op_type, index, user, user is classifier)
        if user is classifier:
            value = value * gain
        value = value.astype(np.float32)
        new_inits.append(numpy_helper.from_array(value, node.output[0]))

    shape_names = {n.input[0] for n in graph.node if n.op_type == "ConstantOfShape"}
    used = {i for n in new_nodes for i in n.input}
    kept_inits = [t for t in graph.initializer if t.name not in shape_names and t.name in used]
    init_names = {t.name for t in kept_inits} | {t.name for t in new_inits}
    real_inputs = [i for i in graph.input if i.name not in init_names and i.name in used]

    del graph.node[:]
    graph.node.extend(new_nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept_inits + new_inits)
    del graph.input[:]
    graph.input.extend(real_inputs)
    # IR 3 requires every initializer to be a graph input; ours are not.
    model.ir_version = max(model.ir_version, 7)
    model.producer_name = "mtcc-examples"
    model.producer_version = "1"
    graph.name = name
    onnx.checker.check_model(model)
    return model


def transformer_model(seq: int = 64, hidden: int = 128, heads: int = 4, ffn: int = 512,
                      layers: int = 2) -> onnx.ModelProto:
    """A small pre-norm encoder: the op mix of BERT-style models at toy size."""
    rng = np.random.default_rng(SEEDS["transformer"])
    head_dim = hidden // heads
    nodes, inits = [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def weight(name, shape, fan_in):
        return const(name, rng.normal(0, 1 / math.sqrt(fan_in), shape).astype(np.float32))

    def node(op, inputs, name, **attrs):
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    split_shape = const("split_heads_shape", np.array([1, seq, heads, head_dim], np.int64))
    merge_shape = const("merge_heads_shape", np.array([1, seq, hidden], np.int64))
    scale = const("attn_scale", np.array(math.sqrt(head_dim), np.float32))
    half = const("half", np.array(0.5, np.float32))
    one = const("one", np.array(1.0, np.float32))
    sqrt2 = const("sqrt2", np.array(math.sqrt(2.0), np.float32))

    x = "tokens"
    for i in range(layers):
        p = f"l{i}_"
        g1 = const(p + "ln1_g", (1 + 0.1 * rng.standard_normal(hidden)).astype(np.float32))
        b1 = const(p + "ln1_b", (0.1 * rng.standard_normal(hidden)).astype(np.float32))
        h = node("LayerNormalization", [x, g1, b1], p + "ln1", axis=-1, epsilon=1e-5)
        qkv = []
        for t in "qkv":
            w = weight(p + f"w{t}", (hidden, hidden), hidden)
            m = node("MatMul", [h, w], p + t)
            r = node("Reshape", [m, split_shape], p + t + "_heads")
            perm = [0, 2, 3, 1] if t == "k" else [0, 2, 1, 3]
            qkv.append(node("Transpose", [r], p + t + "_t", perm=perm))
        q, k, v = qkv
        s = node("MatMul", [q, k], p + "scores")
        s = node("Div", [s, scale], p + "scores_scaled")
        a = node("Softmax", [s], p + "probs", axis=-1)
        c = node("MatMul", [a, v], p + "context")
        c = node("Transpose", [c], p + "context_t", perm=[0, 2, 1, 3])
        c = node("Reshape", [c, merge_shape], p + "context_merged")
        wo = weight(p + "wo", (hidden, hidden), hidden)
        o = node("MatMul", [c, wo], p + "attn_out")
        x = node("Add", [x, o], p + "res1")
        g2 = const(p + "ln2_g", (1 + 0.1 * rng.standard_normal(hidden)).astype(np.float32))
        b2 = const(p + "ln2_b", (0.1 * rng.standard_normal(hidden)).astype(np.float32))
        h = node("LayerNormalization", [x, g2, b2], p + "ln2", axis=-1, epsilon=1e-5)
        w1 = weight(p + "w1", (hidden, ffn), hidden)
        bb1 = const(p + "b1", (0.05 * rng.standard_normal(ffn)).astype(np.float32))
        f = node("MatMul", [h, w1], p + "ffn1")
        f = node("Add", [f, bb1], p + "ffn1_b")
        # Gelu(x) = 0.5 x (1 + erf(x / sqrt 2))
        e = node("Div", [f, sqrt2], p + "gelu_div")
        e = node("Erf", [e], p + "gelu_erf")
        e = node("Add", [e, one], p + "gelu_add")
        e = node("Mul", [f, e], p + "gelu_mul")
        f = node("Mul", [e, half], p + "gelu")
        w2 = weight(p + "w2", (ffn, hidden), ffn)
        bb2 = const(p + "b2", (0.05 * rng.standard_normal(hidden)).astype(np.float32))
        f = node("MatMul", [f, w2], p + "ffn2")
        f = node("Add", [f, bb2], p + "ffn2_b")
        x = node("Add", [x, f], p + "res2")
    gf = const("lnf_g", (1 + 0.1 * rng.standard_normal(hidden)).astype(np.float32))
    bf = const("lnf_b", (0.1 * rng.standard_normal(hidden)).astype(np.float32))
    y = node("LayerNormalization", [x, gf, bf], "hidden_states", axis=-1, epsilon=1e-5)

    graph = helper.make_graph(
        nodes, "transformer",
        [helper.make_tensor_value_info("tokens", TensorProto.FLOAT, [1, seq, hidden])],
        [helper.make_tensor_value_info(y, TensorProto.FLOAT, [1, seq, hidden])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="mtcc-examples", producer_version="1")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def build(name: str) -> onnx.ModelProto:
    return transformer_model() if name == "transformer" else zoo_model(name)


def write(model: onnx.ModelProto, path: Path) -> str:
    data = model.SerializeToString(deterministic=True)
    tmp = path.with_suffix(".onnx.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # never leave a half-written model behind
    return hashlib.sha256(data).hexdigest()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="examples/models", type=Path)
    ap.add_argument("--only", choices=ALL_MODELS, action="append")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only or ALL_MODELS:
        digest = write(build(name), args.out / f"{name}.onnx")
        print(f"{args.out / (name + '.onnx')}  sha256 {digest[:16]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

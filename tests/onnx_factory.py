"""Small ONNX models made for tests: bad inputs and ops beyond the examples."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "test", inputs, outputs, initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def tiny_conv(dynamic_batch: bool = False, with_init_as_input: bool = False) -> onnx.ModelProto:
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.normal(0, 0.1, (8,)).astype(np.float32), "b")
    batch = "N" if dynamic_batch else 1
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 16, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 8, 16, 16])
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv0", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"], name="relu0")]
    inputs = [x]
    if with_init_as_input:  # old exporters list weights as graph inputs too
        inputs += [helper.make_tensor_value_info("w", TensorProto.FLOAT, [8, 3, 3, 3]),
                   helper.make_tensor_value_info("b", TensorProto.FLOAT, [8])]
    return _model(nodes, inputs, [y], [w, b])


def conv_batch_norm() -> onnx.ModelProto:
    """Conv -> BatchNormalization -> Relu twice, with a residual Add (as in resnet50), a
    Conv without bias, and one Conv whose output a second node also reads (not foldable)."""
    rng = np.random.default_rng(2)

    def init(name, shape, low=None):
        a = rng.uniform(0.5, 1.5, shape) if low == "positive" else rng.normal(0, 0.3, shape)
        return numpy_helper.from_array(a.astype(np.float32), name)

    inits = [init("w0", (8, 3, 3, 3)), init("b0", (8,)), init("w1", (8, 8, 1, 1)), init("w2", (8, 8, 3, 3))]
    for k in (0, 1, 2):
        inits += [init(f"g{k}", (8,)), init(f"beta{k}", (8,)), init(f"mean{k}", (8,)), init(f"var{k}", (8,), "positive")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16, 16])
    bn = lambda k, src, dst: helper.make_node(  # noqa: E731
        "BatchNormalization", [src, f"g{k}", f"beta{k}", f"mean{k}", f"var{k}"], [dst], name=f"bn{k}", epsilon=1e-3)
    nodes = [helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], name="conv0", pads=[1, 1, 1, 1]),
             bn(0, "c0", "n0"), helper.make_node("Relu", ["n0"], ["r0"], name="relu0"),
             helper.make_node("Conv", ["r0", "w1"], ["c1"], name="conv1"),          # no bias
             bn(1, "c1", "n1"), helper.make_node("Add", ["n1", "r0"], ["s1"], name="add1"),
             helper.make_node("Relu", ["s1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
             bn(2, "c2", "n2"), helper.make_node("Add", ["n2", "c2"], ["y"], name="add2")]  # c2 read twice
    return _model(nodes, [x], [y], inits)


def classifier_heads(opset: int = 17) -> onnx.ModelProto:
    """A stem conv, then two 1x1 heads whose output channels miss the layout's block of 16:
    30 channels with bias (pads to 32: worth it) and 20 without (32 would be 1.6x the work)."""
    rng = np.random.default_rng(3)
    init = lambda name, shape: numpy_helper.from_array(rng.normal(0, 0.3, shape).astype(np.float32), name)  # noqa: E731
    inits = [init("w0", (16, 3, 3, 3)), init("b0", (16,)), init("w1", (30, 16, 1, 1)), init("b1", (30,)),
             init("w2", (20, 16, 1, 1))]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 12, 12])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 30, 1, 1])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 20, 12, 12])
    nodes = [helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], name="stem", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c0"], ["r0"], name="relu0"),
             helper.make_node("Conv", ["r0", "w1", "b1"], ["c1"], name="head30"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("GlobalAveragePool", ["r1"], ["y"], name="pool"),
             helper.make_node("Conv", ["r0", "w2"], ["z"], name="head20")]
    return _model(nodes, [x], [y, z], inits, opset=opset)


def unsupported_op() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu0"),
             helper.make_node("Celu", ["r"], ["y"], name="my_celu", alpha=1.0)]
    return _model(nodes, [x], [y])


def op_zoo() -> onnx.ModelProto:
    """Ops none of the example models use: grouped/transposed conv, pad, resize, slice,
    gather, reductions, several activations, where, clip, pow, sqrt, instance norm."""
    rng = np.random.default_rng(7)

    def init(name, arr):
        return numpy_helper.from_array(np.asarray(arr), name)

    inits = [
        init("w_dw", rng.normal(0, 0.3, (8, 1, 3, 3)).astype(np.float32)),
        init("w_t", rng.normal(0, 0.3, (4, 8, 2, 2)).astype(np.float32)),
        init("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)),
        init("scales", np.array([1, 1, 2, 2], np.float32)),
        init("starts", np.array([1, 1], np.int64)), init("ends", np.array([17, 17], np.int64)),
        init("axes", np.array([2, 3], np.int64)),
        init("idx", np.array([0, 2, 5, 7], np.int64)),
        init("in_scale", rng.uniform(0.5, 1.5, 4).astype(np.float32)),
        init("in_bias", rng.normal(0, 0.1, 4).astype(np.float32)),
        init("two", np.array(2.0, np.float32)), init("zero", np.array(0.0, np.float32)),
        init("eps", np.array(1e-3, np.float32)),
        init("rm_axes", np.array([2, 3], np.int64)),
    ]
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w_dw"], ["dw"], name="depthwise", group=8, pads=[1, 1, 1, 1]),
        n("LeakyRelu", ["dw"], ["lr"], name="leaky", alpha=0.1),
        n("Pad", ["lr", "pads"], ["pd"], name="pad", mode="reflect"),
        n("Slice", ["pd", "starts", "ends", "axes"], ["sl"], name="slice"),
        n("Gather", ["sl", "idx"], ["g"], name="gather", axis=1),
        n("InstanceNormalization", ["g", "in_scale", "in_bias"], ["inorm"], name="inorm"),
        n("ConvTranspose", ["inorm", "w_t"], ["ct"], name="deconv", strides=[2, 2]),
        n("Resize", ["ct", "", "scales"], ["rs"], name="resize", mode="nearest"),
        n("Sigmoid", ["rs"], ["sg"], name="sigmoid"),
        n("Tanh", ["rs"], ["th"], name="tanh"),
        n("Greater", ["th", "zero"], ["gt"], name="greater"),
        n("Where", ["gt", "sg", "th"], ["wh"], name="where"),
        n("Clip", ["wh", "zero", "two"], ["cl"], name="clip"),
        n("Pow", ["cl", "two"], ["pw"], name="pow"),
        n("Add", ["pw", "eps"], ["pe"], name="add_eps"),
        n("Sqrt", ["pe"], ["sq"], name="sqrt"),
        n("ReduceMean", ["sq", "rm_axes"], ["y"], name="reduce_mean", keepdims=1),
        n("HardSigmoid", ["ct"], ["hs"], name="hardsigmoid"),
        n("GlobalMaxPool", ["hs"], ["y2"], name="gmp"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 16, 16])
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 1, 1]),
            helper.make_tensor_value_info("y2", TensorProto.FLOAT, [1, 8, 1, 1])]
    return _model(nodes, [x], outs, inits, opset=18)


def save(model: onnx.ModelProto, path) -> str:
    onnx.save(model, str(path))
    return str(path)


def fractional_powers() -> onnx.ModelProto:
    """LRN (beta 0.75, as inception_v1's) and Pow with constant exponents that mtcc
    computes with square roots (quarters, negative ones too) and one it leaves to pow."""
    exponents = {"p_half": 0.5, "p_three_quarters": 0.75, "p_minus_quarter": -0.25, "p_five_quarters": 1.25,
                 "p_nine_quarters": 2.25, "p_three": 3.0, "p_third": 1.0 / 3.0}
    inits = [numpy_helper.from_array(np.array(e, np.float32), name) for name, e in exponents.items()]
    inits.append(numpy_helper.from_array(np.array(0.1, np.float32), "tenth"))
    n = helper.make_node
    nodes = [n("LRN", ["x"], ["lrn"], name="lrn", size=5, alpha=1e-4, beta=0.75, bias=1.0),
             n("Abs", ["lrn"], ["positive"], name="abs"),
             n("Add", ["positive", "tenth"], ["base"], name="shift")]
    outs = [helper.make_tensor_value_info("lrn", TensorProto.FLOAT, [1, 8, 6, 6])]
    for name in exponents:
        nodes.append(n("Pow", ["base", name], [f"y_{name}"], name=f"pow_{name}"))
        outs.append(helper.make_tensor_value_info(f"y_{name}", TensorProto.FLOAT, [1, 8, 6, 6]))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 6, 6])
    return _model(nodes, [x], outs, inits)


def local_response_norms() -> onnx.ModelProto:
    """LRNs where mtcc makes each one task: after a convolution whose output is blocked
    (32 channels: NCHW16c), with a window that crosses the 16-channel blocks and a beta
    for pow (0.6); and on plain NCHW (6 channels), beta in quarters."""
    rng = np.random.default_rng(5)
    w = numpy_helper.from_array(rng.normal(0, 0.3, (32, 16, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.normal(0, 0.1, (32,)).astype(np.float32), "b")
    w2 = numpy_helper.from_array(rng.normal(0, 0.3, (32, 32, 1, 1)).astype(np.float32), "w2")
    n = helper.make_node
    nodes = [n("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             n("LRN", ["c"], ["blocked"], name="lrn_blocked", size=7, alpha=2e-3, beta=0.6, bias=2.0),
             n("Conv", ["blocked", "w2"], ["c2"], name="conv2"),
             n("LRN", ["p"], ["plain"], name="lrn_plain", size=3, alpha=1e-2, beta=0.75, bias=1.0)]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 8, 8])
    p = helper.make_tensor_value_info("p", TensorProto.FLOAT, [1, 6, 5, 5])
    outs = [helper.make_tensor_value_info("c2", TensorProto.FLOAT, [1, 32, 8, 8]),
            helper.make_tensor_value_info("plain", TensorProto.FLOAT, [1, 6, 5, 5])]
    return _model(nodes, [x, p], outs, [w, b, w2])


def max_pools() -> onnx.ModelProto:
    """Max pools after a convolution whose output is blocked (32 channels: NCHW16c),
    which mtcc writes out term by term: with padding and stride 2, with a dilation and
    uneven padding, and a window wider than MAX_POOL_TERMS, which stays TOPI's; and
    pools in plain NCHW (5 channels), TOPI's: ceil_mode and uneven padding, a 1x1 window."""
    rng = np.random.default_rng(6)
    w = numpy_helper.from_array(rng.normal(0, 0.3, (32, 16, 3, 3)).astype(np.float32), "w")
    n = helper.make_node
    nodes = [n("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             n("MaxPool", ["c"], ["blocked"], name="pool_blocked", kernel_shape=[3, 3], strides=[2, 2],
               pads=[1, 1, 1, 1]),
             n("MaxPool", ["c"], ["dilated"], name="pool_dilated", kernel_shape=[2, 3], strides=[1, 2],
               pads=[0, 1, 1, 0], dilations=[2, 1]),
             n("MaxPool", ["p"], ["plain"], name="pool_plain", kernel_shape=[3, 2], strides=[2, 2],
               pads=[1, 0, 0, 1], ceil_mode=1),
             n("MaxPool", ["p"], ["single"], name="pool_single", kernel_shape=[1, 1], strides=[2, 2]),
             n("MaxPool", ["c"], ["wide"], name="pool_wide", kernel_shape=[9, 9], pads=[4, 4, 4, 4])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 9, 9])
    p = helper.make_tensor_value_info("p", TensorProto.FLOAT, [1, 5, 11, 10])
    shapes = {"blocked": [1, 32, 5, 5], "dilated": [1, 32, 8, 4], "plain": [1, 5, 6, 5], "single": [1, 5, 6, 5],
              "wide": [1, 32, 9, 9]}
    outs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in shapes.items()]
    return _model(nodes, [x, p], outs, [w])


def softmaxes() -> onnx.ModelProto:
    """Softmax, which mtcc computes with TVM's polynomial exp (frontend.tasks.
    legalize_softmax): over the last axis and a middle one, of logits scaled up to
    hundreds (exp's range reduction at work), and of logits plus an attention-style mask
    (-1e9 where masked, far below exp's clamp at -88)."""
    rng = np.random.default_rng(7)
    mask = np.where(rng.random((1, 1, 6, 40)) < 0.3, -1e9, 0.0).astype(np.float32)
    inits = [numpy_helper.from_array(np.array(60.0, np.float32), "scale"),
             numpy_helper.from_array(mask, "mask")]
    n = helper.make_node
    nodes = [n("Mul", ["x", "scale"], ["logits"], name="scale_up"),
             n("Softmax", ["logits"], ["last"], name="softmax_last", axis=-1),
             n("Softmax", ["x"], ["middle"], name="softmax_middle", axis=1),
             n("Add", ["x", "mask"], ["masked_logits"], name="mask"),
             n("Softmax", ["masked_logits"], ["masked"], name="softmax_masked", axis=-1)]
    shape = [2, 3, 6, 40]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    outs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name in ("last", "middle", "masked")]
    return _model(nodes, [x], outs, inits)


def transcendentals() -> onnx.ModelProto:
    """Ops whose exp, log, erf or tanh mtcc computes by polynomials (frontend.tasks.
    legalize_with_polynomials), directly or inside TVM's import of them: Exp, Log,
    Sigmoid, Tanh, Gelu (erf and tanh forms), Elu, Softplus, LogSoftmax, on inputs
    scaled to +-40 (the tails, where exp over- and underflows, and tanh and the sigmoid
    saturate); Log also of values from 1e-44 (denormal) to 1e38, of zeros, of negatives
    (NaN) and of +inf."""
    magnitudes = np.float32([0.0, 1e-44, 1e-39, 1e-30, 1e-5, 0.5, 1.0, 1.5, 2.0, 1e5, 1e30, 1e38])
    inits = [numpy_helper.from_array(np.array(8.0, np.float32), "scale"),
             numpy_helper.from_array(np.array(0.25, np.float32), "quarter"),
             numpy_helper.from_array(np.tile(magnitudes, 32).reshape(2, 4, 48), "magnitudes"),
             numpy_helper.from_array(np.array(np.inf, np.float32), "infinity")]
    n = helper.make_node
    nodes = [n("Mul", ["x", "scale"], ["wide"], name="scale_up"),
             n("Mul", ["x", "quarter"], ["narrow"], name="scale_down"),
             n("Mul", ["x", "magnitudes"], ["spread"], name="spread"),  # signs from x: NaN where negative
             n("Max", ["x", "infinity"], ["infinite"], name="infinite"),
             n("Exp", ["narrow"], ["exp"], name="exp"),
             n("Log", ["spread"], ["log"], name="log"),
             n("Log", ["infinite"], ["log_infinity"], name="log_infinity"),
             n("Sigmoid", ["wide"], ["sigmoid"], name="sigmoid"),
             n("Tanh", ["wide"], ["tanh"], name="tanh"),
             n("Gelu", ["wide"], ["gelu"], name="gelu"),
             n("Gelu", ["x"], ["gelu_tanh"], name="gelu_tanh", approximate="tanh"),
             n("Elu", ["wide"], ["elu"], name="elu"),
             n("Softplus", ["x"], ["softplus"], name="softplus"),
             n("LogSoftmax", ["wide"], ["log_softmax"], name="log_softmax", axis=-1)]
    shape = [2, 4, 48]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    outs = [helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, shape) for node in nodes[4:]]
    return _model(nodes, [x], outs, inits, opset=20)


def libm_calls() -> onnx.ModelProto:
    """Sin and Atan, which stay calls to libm, beside a Sigmoid and a Log, which mtcc
    computes by polynomials."""
    n = helper.make_node
    names = ("sin", "atan", "sigmoid", "log")
    nodes = [n(op, ["x"], [name], name=name) for op, name in zip(("Sin", "Atan", "Sigmoid", "Log"), names)]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 32])
    outs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 8, 32]) for name in names]
    return _model(nodes, [x], outs)


def broadcasting_reductions() -> onnx.ModelProto:
    """A convolution (16 channels: NCHW16c) whose output goes through a Max, Min and Mean
    with a scalar or a per-channel constant (TVM's importer: broadcast, stack, reduce),
    which ConvertLayout could not block, and Sums (which the importer spells as adds)."""
    rng = np.random.default_rng(8)
    inits = [numpy_helper.from_array(rng.normal(0, 0.3, (16, 16, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(np.array(0.1, np.float32), "floor"),
             numpy_helper.from_array(np.array(0.8, np.float32), "ceiling"),
             numpy_helper.from_array(rng.normal(0, 0.5, (16, 1, 1)).astype(np.float32), "per_channel")]
    n = helper.make_node
    nodes = [n("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             n("Max", ["c", "floor"], ["above"], name="max"),
             n("Min", ["above", "ceiling"], ["clamped"], name="min"),
             n("Sum", ["clamped", "per_channel", "floor"], ["shifted"], name="sum"),
             n("Mean", ["shifted", "per_channel"], ["averaged"], name="mean"),
             n("Sum", ["averaged", "c"], ["y"], name="residual")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 8, 8])
    return _model(nodes, [x], [y], inits)


def pre_activation(opset: int = 9) -> onnx.ModelProto:
    """A DenseNet block as caffe2 exported the zoo's densenet121 (opset 9): a conv, its
    output concatenated with its input (a conv's too), a BatchNormalization there (no conv before it to
    fold into), a Scale written as Mul and Add by [C] constants unsqueezed to [C, 1, 1]
    (Unsqueeze's axes an attribute before opset 13, an input since), ReLU and a conv."""
    rng = np.random.default_rng(9)

    def init(name, arr):
        return numpy_helper.from_array(np.asarray(arr, np.float32), name)

    inits = [init("w0", rng.normal(0, 0.3, (16, 16, 3, 3))),
             init("w1", rng.normal(0, 0.3, (16, 16, 3, 3))), init("w2", rng.normal(0, 0.2, (16, 32, 1, 1))),
             init("bn_scale", rng.uniform(0.5, 1.5, 32)), init("bn_bias", rng.normal(0, 0.1, 32)),
             init("bn_mean", rng.normal(0, 0.5, 32)), init("bn_var", rng.uniform(0.5, 2.0, 32)),
             init("scale", rng.uniform(0.5, 1.5, 32)), init("shift", rng.normal(0, 0.2, 32))]
    n = helper.make_node
    if opset >= 13:
        inits.append(numpy_helper.from_array(np.array([1, 2], np.int64), "axes"))
        unsqueeze = [n("Unsqueeze", [name, "axes"], [f"{name}_3d"], name=f"unsqueeze_{name}") for name in ("scale", "shift")]
    else:
        unsqueeze = [n("Unsqueeze", [name], [f"{name}_3d"], name=f"unsqueeze_{name}", axes=[1, 2])
                     for name in ("scale", "shift")]
    nodes = [n("Conv", ["x", "w0"], ["c0"], name="conv0", pads=[1, 1, 1, 1]),
             n("Conv", ["c0", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             n("Concat", ["c0", "c1"], ["cat"], name="concat", axis=1),
             n("BatchNormalization", ["cat", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["bn"], name="bn",
               epsilon=1e-5),
             *unsqueeze,
             n("Mul", ["bn", "scale_3d"], ["scaled"], name="scale_mul"),
             n("Add", ["scaled", "shift_3d"], ["shifted"], name="scale_add"),
             n("Relu", ["shifted"], ["r"], name="relu"),
             n("Conv", ["r", "w2"], ["y"], name="conv2")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 8, 8])
    return _model(nodes, [x], [y], inits, opset=opset)

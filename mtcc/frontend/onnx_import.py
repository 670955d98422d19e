"""ONNX → Relax: read, check, fix input shapes, import with TVM's Relax ONNX frontend.

Every problem with the input becomes a `BadInput` whose one-line message names
the file and, where there is one, the node, op type or input at fault.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from ..errors import BadInput


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    dtype: str

    def as_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass
class Model:
    """An ONNX model with every input shape fixed, ready to import."""

    path: Path
    name: str
    sha256: str
    proto: "onnx.ModelProto"  # noqa: F821
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    opset: int
    op_types: dict[str, int] = field(default_factory=dict)


_SHAPE_RE = re.compile(r"^(?P<name>.+):(?P<dims>\d+(?:[x,]\d+)*)$")


def parse_input_shapes(specs: Iterable[str] | Mapping[str, Iterable[int]] | None) -> dict[str, tuple[int, ...]]:
    """"NAME:1x3x224x224" (several allowed; NAME may itself contain ':') → {NAME: dims}."""
    if not specs:
        return {}
    if isinstance(specs, Mapping):
        return {k: tuple(int(d) for d in v) for k, v in specs.items()}
    shapes: dict[str, tuple[int, ...]] = {}
    for spec in specs:
        m = _SHAPE_RE.match(spec.strip())
        if not m:
            raise BadInput(f"--input-shape {spec!r}: expected NAME:DIMS such as data:1x3x224x224")
        dims = tuple(int(d) for d in re.split(r"[x,]", m.group("dims")))
        if any(d <= 0 for d in dims):
            raise BadInput(f"--input-shape {spec!r}: every dimension must be positive")
        shapes[m.group("name")] = dims
    return shapes


def _dtype_name(elem_type: int) -> str:
    import numpy as np
    from onnx import helper

    try:
        return str(np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)))
    except Exception:  # noqa: BLE001 - an exotic element type; keep the ONNX name
        return f"onnx:{elem_type}"


def _read(path: Path):
    import onnx
    from google.protobuf.message import DecodeError

    if not path.exists():
        raise BadInput(f"{path}: no such file")
    if path.is_dir():
        raise BadInput(f"{path}: is a directory, expected an ONNX model file")
    if path.stat().st_size == 0:
        raise BadInput(f"{path}: empty file, expected an ONNX model")
    data = path.read_bytes()
    try:
        proto = onnx.load_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise BadInput(f"{path}: not an ONNX model or truncated (protobuf parse failed: {e})") from None
    # Random bytes sometimes parse as an (odd) protobuf: demand a real graph.
    if not proto.HasField("graph") or len(proto.graph.node) == 0 or not proto.opset_import:
        raise BadInput(f"{path}: not an ONNX model (no graph, nodes or opset)")
    return proto, hashlib.sha256(data).hexdigest()


def _check(proto, path: Path) -> None:
    import onnx

    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "invalid model"
        raise BadInput(f"{path}: onnx.checker rejected the model: {first}") from None


def _check_ops_supported(proto, path: Path) -> None:
    """Name the first node whose op TVM's importer cannot convert, before importing."""
    from tvm.relax.frontend.onnx import onnx_frontend

    supported = set(onnx_frontend._get_convert_map()) | {"If", "Constant"}  # noqa: SLF001
    for node in proto.graph.node:
        domain = node.domain or "ai.onnx"
        if domain not in ("ai.onnx", "") or node.op_type not in supported:
            where = f"node '{node.name}'" if node.name else f"node #{list(proto.graph.node).index(node)}"
            raise BadInput(
                f"{path}: operator {node.op_type} (domain {domain}, {where}) is not supported by "
                "TVM's Relax ONNX importer"
            )


def load(path: str | Path, input_shapes=None, for_tvm: bool = True) -> Model:
    """Read and check an ONNX model and fix its input shapes (raises BadInput).
    `for_tvm`: also check that TVM's importer converts every op (the compile side; a
    baseline that hands the file to ONNX Runtime needs neither that nor TVM's compiler)."""
    from onnx import shape_inference

    path = Path(path)
    proto, digest = _read(path)
    _check(proto, path)
    shapes = parse_input_shapes(input_shapes)
    graph = proto.graph

    # Initializers may also be listed as graph inputs (old exporters): they are
    # weights, not inputs, and get bound as constants.
    init_names = {t.name for t in graph.initializer}
    real_inputs = [i for i in graph.input if i.name not in init_names]
    if len(real_inputs) != len(graph.input):
        del graph.input[:]
        graph.input.extend(real_inputs)

    unknown = set(shapes) - {i.name for i in real_inputs}
    if unknown:
        names = ", ".join(sorted(i.name for i in real_inputs)) or "none"
        raise BadInput(f"--input-shape: {path} has no input named {sorted(unknown)[0]!r} (inputs: {names})")

    inputs = []
    for inp in real_inputs:
        ttype = inp.type.tensor_type
        dims = ttype.shape.dim
        if inp.name in shapes:
            fixed = shapes[inp.name]
            if ttype.HasField("shape") and len(dims) != len(fixed):
                raise BadInput(f"--input-shape {inp.name}: model input has rank {len(dims)}, got {len(fixed)} dims")
            for k, d in enumerate(dims):
                if d.HasField("dim_value") and d.dim_value > 0 and d.dim_value != fixed[k]:
                    raise BadInput(
                        f"--input-shape {inp.name}: dimension {k} is fixed to {d.dim_value} in {path}, got {fixed[k]}"
                    )
            del dims[:]
            for v in fixed:
                ttype.shape.dim.add().dim_value = v
        else:
            if not ttype.HasField("shape"):
                raise BadInput(
                    f"{path}: input '{inp.name}' has no shape; pass --input-shape {inp.name}:DIMS"
                )
            for k, d in enumerate(dims):
                if not (d.HasField("dim_value") and d.dim_value > 0):
                    sym = f" ('{d.dim_param}')" if d.dim_param else ""
                    raise BadInput(
                        f"{path}: input '{inp.name}' has dynamic dimension {k}{sym}; pass "
                        f"--input-shape {inp.name}:" + "x".join(
                            str(x.dim_value) if x.dim_value > 0 else "N" for x in dims)
                    )
        inputs.append(TensorInfo(inp.name, tuple(int(d.dim_value) for d in ttype.shape.dim),
                                 _dtype_name(ttype.elem_type)))

    if for_tvm:
        _check_ops_supported(proto, path)

    try:
        inferred = shape_inference.infer_shapes(proto)
    except Exception:  # noqa: BLE001 - inference is best effort; Relax knows the shapes too
        inferred = proto
    outputs = []
    for out in inferred.graph.output:
        ttype = out.type.tensor_type
        dims = tuple(int(d.dim_value) if d.HasField("dim_value") else -1 for d in ttype.shape.dim)
        outputs.append(TensorInfo(out.name, dims, _dtype_name(ttype.elem_type)))

    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 1)
    op_types: dict[str, int] = {}
    for node in graph.node:
        op_types[node.op_type] = op_types.get(node.op_type, 0) + 1
    return Model(path=path, name=path.stem, sha256=digest, proto=proto, inputs=inputs,
                 outputs=outputs, opset=opset, op_types=op_types)


def _simplify_for_import(proto):
    """Same-meaning rewrites of two ops whose Relax import blocks layout conversion:
    n-ary Sum (imported as broadcast+stack+sum) becomes a chain of Add, and inference-time
    Dropout (imported as a tuple) becomes Identity.  Returns a copy; ONNX Runtime keeps
    running the original as the numerics reference."""
    from onnx import helper

    if not any(n.op_type in ("Sum", "Dropout") for n in proto.graph.node):
        return proto
    used = {i for n in proto.graph.node for i in n.input} | {o.name for o in proto.graph.output}
    out = type(proto)()
    out.CopyFrom(proto)
    nodes = []
    for node in out.graph.node:
        if node.op_type == "Sum" and len(node.input) >= 2:
            acc = node.input[0]
            for k, term in enumerate(node.input[1:], start=1):
                last = k == len(node.input) - 1
                res = node.output[0] if last else f"{node.output[0]}__sum{k}"
                nodes.append(helper.make_node("Add", [acc, term], [res], name=f"{node.name}__add{k}"))
                acc = res
        elif node.op_type == "Sum":
            nodes.append(helper.make_node("Identity", [node.input[0]], [node.output[0]], name=node.name))
        elif node.op_type == "Dropout" and (len(node.output) < 2 or node.output[1] not in used):
            nodes.append(helper.make_node("Identity", [node.input[0]], [node.output[0]], name=node.name))
        else:
            nodes.append(node)
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    return out


def _batch_norm_parameters(bn, inits) -> tuple:
    """(s, beta, mean) in float64 of an inference-time BatchNormalization whose four
    parameters are initializers: y = s (x - mean) + beta, s = scale / sqrt(var + eps)."""
    import numpy as np
    from onnx import numpy_helper

    eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
    scale, beta, mean, var = (numpy_helper.to_array(inits[n]).astype(np.float64) for n in bn.input[1:])
    return scale / np.sqrt(var + eps), beta, mean


def fold_batch_norms(proto):
    """Inference-time BatchNormalization folded into the Conv before it: y = s (conv(x)
    - mean) + beta with s = scale / sqrt(var + eps) is the convolution with weights
    W * s (per output channel) and bias (b - mean) s + beta.  Only where the Conv's
    weights, bias and the BN's four parameters are initializers and the BN is the Conv's
    only reader.  Returns (a copy with the pairs folded, how many), or (proto, 0)."""
    import collections

    import numpy as np
    from onnx import helper, numpy_helper

    graph = proto.graph
    inits = {t.name: t for t in graph.initializer}
    readers = collections.Counter([name for node in graph.node for name in node.input]
                                  + [out.name for out in graph.output])
    producer = {o: k for k, node in enumerate(graph.node) for o in node.output}
    replaced: dict[int, list] = {}   # a Conv's index -> [the Conv that writes its BN's output]; a BN's -> []
    new_inits = []
    for k, bn in enumerate(graph.node):
        if bn.op_type != "BatchNormalization" or len(bn.output) != 1 or len(bn.input) != 5:
            continue
        conv = graph.node[producer[bn.input[0]]] if bn.input[0] in producer else None
        if (conv is None or conv.op_type != "Conv" or readers[bn.input[0]] != 1
                or any(n not in inits for n in [conv.input[1], *bn.input[1:]])
                or (len(conv.input) > 2 and conv.input[2] not in inits)):
            continue
        s, beta, mean = _batch_norm_parameters(bn, inits)
        weight = numpy_helper.to_array(inits[conv.input[1]])
        bias = (numpy_helper.to_array(inits[conv.input[2]]).astype(np.float64) if len(conv.input) > 2
                else np.zeros(weight.shape[0]))
        base = conv.name or conv.output[0]
        w_name, b_name = f"{base}__folded_weight", f"{base}__folded_bias"
        new_inits += [
            numpy_helper.from_array((weight.astype(np.float64) * s.reshape(-1, *[1] * (weight.ndim - 1)))
                                    .astype(weight.dtype), w_name),
            numpy_helper.from_array(((bias - mean) * s + beta).astype(weight.dtype), b_name)]
        node = helper.make_node("Conv", [conv.input[0], w_name, b_name], [bn.output[0]], name=conv.name)
        node.attribute.extend(conv.attribute)
        replaced[producer[bn.input[0]]] = [node]
        replaced[k] = []
    return _rewritten(proto, replaced, new_inits), len(replaced) // 2


def _ranks(proto) -> dict[str, int] | None:
    """Every tensor's rank that ONNX shape inference finds, or None where it fails."""
    from onnx import shape_inference

    try:
        graph = shape_inference.infer_shapes(proto).graph
    except Exception:  # noqa: BLE001 - onnx raises several kinds; the callers then change nothing
        return None
    return {v.name: len(v.type.tensor_type.shape.dim) for v in [*graph.value_info, *graph.input, *graph.output]
            if v.type.tensor_type.HasField("shape")}


def batch_norms_as_scale_shift(proto, ranks=None):
    """Inference-time BatchNormalization left after fold_batch_norms (no Conv before it:
    a pre-activation network's BN -> ReLU -> Conv, a BN after a concatenation) as a
    Mul and an Add by two per-channel constants, y = x * s + (beta - mean * s) with s =
    scale / sqrt(var + eps), shaped [1, C, 1, ...] (constants_at_full_rank says why).
    TVM's importer keeps such a BN as batch_norm, which FuseOps cuts at (it returns a
    tuple) and ConvertLayout cannot block: in densenet121 each one was a task of four
    passes (subtract, divide, multiply, add) in plain NCHW, apart from the Mul/Add/ReLU
    after it, with layout transforms around both.  Only where the four parameters are
    initializers and the input's rank is known.  `ranks`: a callable giving _ranks() of
    `proto` (to_relax shares one with constants_at_full_rank, so shape inference runs
    once).  Returns (a copy with those BNs replaced, how many), or (proto, 0)."""
    from onnx import helper, numpy_helper

    graph = proto.graph
    inits = {t.name: t for t in graph.initializer}
    candidates = [k for k, bn in enumerate(graph.node) if bn.op_type == "BatchNormalization"
                  and len(bn.output) == 1 and len(bn.input) == 5 and all(n in inits for n in bn.input[1:])]
    ranks = (ranks or (lambda: _ranks(proto)))() if candidates else None
    if not ranks:
        return proto, 0
    replaced: dict[int, list] = {}
    new_inits = []
    for k in candidates:
        bn = graph.node[k]
        rank = ranks.get(bn.input[0])
        if rank is None or rank < 2:
            continue
        s, beta, mean = _batch_norm_parameters(bn, inits)
        if any(p.ndim != 1 or p.shape != s.shape for p in (s, beta, mean)):
            continue  # not per channel (opset 7's spatial=0)
        shape = (1, -1, *[1] * (rank - 2))  # channels on axis 1
        dtype = numpy_helper.to_array(inits[bn.input[1]]).dtype
        base = bn.name or bn.output[0]
        s_name, shift_name, scaled = f"{base}__scale", f"{base}__shift", f"{bn.output[0]}__scaled"
        new_inits += [numpy_helper.from_array(s.reshape(shape).astype(dtype), s_name),
                      numpy_helper.from_array((beta - mean * s).reshape(shape).astype(dtype), shift_name)]
        replaced[k] = [helper.make_node("Mul", [bn.input[0], s_name], [scaled], name=f"{base}__mul"),
                       helper.make_node("Add", [scaled, shift_name], [bn.output[0]], name=f"{base}__add")]
    return _rewritten(proto, replaced, new_inits), len(replaced)


BROADCASTING_BINARY_OPS = ("Add", "Sub", "Mul", "Div")


# Per-channel constants are small; the weights, which never are one, are not read.
MAX_CONSTANT_ELEMENTS = 1 << 16


def _constant_values(proto) -> dict[str, object]:
    """{tensor name: numpy value} of every small initializer and every Unsqueeze of one
    (how caffe2's exports shape a per-channel scale: [C] -> [C, 1, 1]), without running
    the graph."""
    import math

    import numpy as np
    from onnx import numpy_helper

    values = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer
              if math.prod(t.dims) <= MAX_CONSTANT_ELEMENTS}
    for node in proto.graph.node:
        if node.op_type != "Unsqueeze" or node.input[0] not in values:
            continue
        axes = next((list(a.ints) for a in node.attribute if a.name == "axes"), None)  # before opset 13
        if axes is None and len(node.input) > 1 and node.input[1] in values:
            axes = [int(v) for v in values[node.input[1]]]
        if axes is not None:
            value = values[node.input[0]]
            values[node.output[0]] = np.expand_dims(value, [a % (value.ndim + len(axes)) for a in axes])
    return values


def constants_at_full_rank(proto, ranks=None):
    """A constant operand of Add/Sub/Mul/Div on a 4-d tensor with fewer dimensions (a
    caffe-style per-channel scale [C, 1, 1]) given as a 4-d initializer with leading
    ones, which ONNX's broadcasting reads the same way.  Relax's ConvertLayout keeps a
    binary op with a lower-rank operand in plain NCHW: measured on conv -> Mul/Add
    [C,1,1] -> ReLU -> conv, two layout transforms and a task of its own, where with
    [1,C,1,1] the Mul/Add/ReLU fused into the first conv's blocked task.  Only 4-d
    tensors (the convolutions' data): the transformer's biases on 3-d tensors keep their
    tasks (and their committed schedules).  `ranks`: a callable giving _ranks() of `proto`
    or of the model batch_norms_as_scale_shift rewrote into it: that keeps every name
    but its `__scaled` ones, which only its Adds read, by constants already at full
    rank.  Returns (a copy, how many ops), or (proto, 0)."""
    from onnx import helper, numpy_helper

    graph = proto.graph
    values = _constant_values(proto)
    candidates = [k for k, node in enumerate(graph.node) if node.op_type in BROADCASTING_BINARY_OPS
                  and len(node.input) == 2 and sum(n in values for n in node.input) == 1
                  and 1 <= next(values[n] for n in node.input if n in values).ndim < 4]
    ranks = (ranks or (lambda: _ranks(proto)))() if candidates else None
    if not ranks:
        return proto, 0
    replaced: dict[int, list] = {}
    new_inits: dict[str, object] = {}
    for k in candidates:
        node = graph.node[k]
        const = next(n for n in node.input if n in values)
        other = next(n for n in node.input if n not in values)
        if ranks.get(other) != 4:
            continue
        name = f"{const}__rank4"
        if name not in new_inits:
            value = values[const]
            new_inits[name] = numpy_helper.from_array(value.reshape((1,) * (4 - value.ndim) + value.shape), name)
        inputs = [name if n == const else n for n in node.input]
        replaced[k] = [helper.make_node(node.op_type, inputs, list(node.output), name=node.name)]
    return _rewritten(proto, replaced, list(new_inits.values())), len(replaced)


def _rewritten(proto, replaced: dict[int, list], new_inits: list):
    """A copy of `proto` with the node at each index of `replaced` replaced by its list of
    nodes and `new_inits` added; parameters nobody reads any more leave the file.  `proto`
    itself when nothing is replaced."""
    if not replaced:
        return proto
    out = type(proto)()
    out.CopyFrom(proto)
    nodes = [n for k, node in enumerate(out.graph.node) for n in replaced.get(k, [node])]
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    used = {i for node in nodes for i in node.input}
    kept = [t for t in [*out.graph.initializer, *new_inits] if t.name in used]
    del out.graph.initializer[:]
    out.graph.initializer.extend(kept)
    return out


# Padding a conv's output channels to the block pays while the zero channels cost less
# than the plain-NCHW fallback loses: tuned NCHW convs run at ~0.6x their blocked speed
# (frontend.layout), so a quarter more work is a safe bound (1000 -> 1008 adds 0.8 %).
MAX_PADDED_SHARE = 0.25


def pad_conv_channels(proto, block: int, max_share: float = MAX_PADDED_SHARE):
    """Every Conv whose output channels do not divide by the layout's `block` (a
    1000-class head) gets zero weights and bias for the missing channels, so the layout
    pass can block it, and a Slice back to the real channels after it.  Only where the
    layout would block the padded conv (groups == 1, input channels a multiple of the
    block or a stem's few), the weights (and bias) are initializers, and the padding adds
    at most `max_share` of the work.  Returns (a copy for TVM's importer with those convs
    padded, how many), or (proto, 0)."""
    import numpy as np
    from onnx import helper, numpy_helper

    from .layout import STEM_MAX_CHANNELS

    graph = proto.graph
    inits = {t.name: t for t in graph.initializer}
    replaced: dict[int, list] = {}   # a Conv's index -> the nodes that replace it
    new_inits = []
    for k, conv in enumerate(graph.node):
        if conv.op_type != "Conv" or conv.input[1] not in inits:
            continue
        weight = numpy_helper.to_array(inits[conv.input[1]])
        groups = next((a.i for a in conv.attribute if a.name == "group"), 1)
        out_ch, in_ch = weight.shape[0], weight.shape[1]
        padded = -(-out_ch // block) * block
        has_bias = len(conv.input) > 2 and conv.input[2] != ""
        if (weight.ndim != 4 or groups != 1 or padded == out_ch or padded > out_ch * (1 + max_share)
                or not (in_ch % block == 0 or in_ch <= STEM_MAX_CHANNELS)
                or (has_bias and conv.input[2] not in inits)):
            continue
        base = conv.name or conv.output[0]
        w_name, b_name, wide = f"{base}__padded_weight", f"{base}__padded_bias", f"{conv.output[0]}__padded"
        bias = numpy_helper.to_array(inits[conv.input[2]]) if has_bias else np.zeros(out_ch, weight.dtype)
        new_inits += [
            numpy_helper.from_array(np.concatenate([weight, np.zeros((padded - out_ch, *weight.shape[1:]), weight.dtype)]), w_name),
            numpy_helper.from_array(np.concatenate([bias, np.zeros(padded - out_ch, bias.dtype)]), b_name)]
        wide_conv = helper.make_node("Conv", [conv.input[0], w_name, b_name], [wide], name=conv.name)
        wide_conv.attribute.extend(conv.attribute)
        # Slice in its opset-10 form (starts/ends/axes as inputs) whatever the model's
        # opset: the copy only feeds TVM's importer, which reads no other form.
        names = [f"{base}__slice_{what}" for what in ("starts", "ends", "axes")]
        new_inits += [numpy_helper.from_array(np.array(v, np.int64), n)
                      for v, n in zip(([0], [out_ch], [1]), names)]
        cut = helper.make_node("Slice", [wide, *names], [conv.output[0]], name=f"{base}__slice")
        replaced[k] = [wide_conv, cut]
    return _rewritten(proto, replaced, new_inits), len(replaced)


def to_relax(model: Model, fold_batch_norm: bool = True, pad_output_channels: bool = True,
             per_channel_constants: bool = True):
    """Import with TVM's Relax ONNX frontend, weights bound as constants; with
    `fold_batch_norm`, every BatchNormalization that follows a Conv is folded into its
    weights first (fold_batch_norms()): the convolution's task then ends in its bias,
    residual add and ReLU instead of leaving ReLU and add+ReLU as tasks of their own.
    With `pad_output_channels`, a conv whose output channels miss the blocked layout's
    block by a little is padded to it (pad_conv_channels()), so it runs blocked too.
    With `per_channel_constants`, a per-channel constant of a binary op on a 4-d tensor is
    made 4-d (constants_at_full_rank()), and with folding on, a BatchNormalization with
    no Conv before it becomes a multiply and an add by such constants
    (batch_norms_as_scale_shift()): both then run in the blocked layout, fused."""
    from tvm.relax.frontend.onnx import from_onnx

    from .layout import BLOCK

    shape_dict = {i.name: list(i.shape) for i in model.inputs}
    dtype_dict = {i.name: i.dtype for i in model.inputs}
    try:
        # The importer prints its own lines (e.g. "Error converting operator X"): keep
        # them out of the user's terminal and fold the useful part into our one line.
        with warnings.catch_warnings(), _captured_output() as captured:
            warnings.simplefilter("ignore")
            proto = _simplify_for_import(model.proto)
            if fold_batch_norm:
                proto, _ = fold_batch_norms(proto)
            ranks = functools.cache(functools.partial(_ranks, proto))  # at most once, if asked
            if fold_batch_norm and per_channel_constants:
                proto, _ = batch_norms_as_scale_shift(proto, ranks)
            if per_channel_constants:
                proto, _ = constants_at_full_rank(proto, ranks)
            if pad_output_channels:
                proto, _ = pad_conv_channels(proto, BLOCK)
            mod = from_onnx(proto, shape_dict=shape_dict, dtype_dict=dtype_dict, keep_params_in_input=False)
    except Exception as e:  # noqa: BLE001 - TVM raises many kinds; report one line
        msg = str(e).strip().splitlines()
        detail = next((ln for ln in reversed(msg) if ln.strip()), type(e).__name__)
        op = re.search(r"Error converting operator (\w+)", captured.text())
        where = f" in operator {op.group(1)}" if op else ""
        raise BadInput(f"{model.path}: TVM's ONNX importer failed{where}: {type(e).__name__}: "
                       f"{detail[:300]}") from None
    _fill_output_shapes(model, mod)
    return mod


class _Captured:
    def __init__(self, file):
        self._file = file

    def text(self) -> str:
        self._file.seek(0)
        return self._file.read().decode(errors="replace")


@contextlib.contextmanager
def _captured_output():
    """Capture what C++ and Python print to fds 1 and 2 while the importer runs."""
    import sys
    import tempfile

    with tempfile.TemporaryFile() as tmp:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(tmp.fileno(), 1)
        os.dup2(tmp.fileno(), 2)
        try:
            yield _Captured(tmp)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _fill_output_shapes(model: Model, mod) -> None:
    """ONNX shape inference can leave outputs unknown; Relax always knows them."""
    from tvm import relax

    ret = mod["main"].ret_ty  # TVM 0.27 calls struct info "ty"
    fields = ret.fields if isinstance(ret, relax.TupleType) else [ret]
    if len(fields) != len(model.outputs):
        return
    for k, (info, f) in enumerate(zip(model.outputs, fields)):
        if isinstance(f, relax.TensorType) and f.shape is not None:
            shape = tuple(int(d) for d in f.shape.values)
            model.outputs[k] = TensorInfo(info.name, shape, str(f.dtype))


def import_model(path: str | Path, input_shapes=None, fold_batch_norm: bool = True,
                 pad_output_channels: bool = True, per_channel_constants: bool = True):
    """(Model, Relax IRModule) in one call.  The options: see to_relax; a schedules folder
    records which import its workloads came from (tune.database.import_options)."""
    model = load(path, input_shapes)
    return model, to_relax(model, fold_batch_norm, pad_output_channels, per_channel_constants)

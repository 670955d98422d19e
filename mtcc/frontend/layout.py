"""Blocked data layout for convolutions (NCHW{b}c data, OIHW{b}i{b}o weights).

Tuned NCHW convolutions reach only ~0.6x ONNX Runtime on x86; the same convolution
in NCHW16c reaches parity (docs/tvm-notes.md), because the innermost 16 channels map
onto one AVX-512 register.  Relax's ConvertLayout propagates the blocked layout
through element-wise ops, pools and concats, so layout transforms remain only
where the graph enters or leaves the blocked region, and FoldConstant pre-blocks
the weights at compile time.  Relax's default conv2d legalization cannot lower a
blocked layout, so this module supplies the TE compute for it.
"""
from __future__ import annotations

LAYOUTS = ("NCHWc", "NCHW")
DEFAULT_LAYOUT = "NCHWc"
BLOCK = 16  # fp32 lanes of one AVX-512 register


def conv2d_nchwc(data, kernel, strides, padding, dilation, out_dtype):
    """conv2d over data [N, C/b, H, W, b] and kernel [O/b, C/b, KH, KW, b, b].
    Separate reduce axes (outer channels, kh, kw, inner channels) give MetaSchedule a
    clean space to tile; groups == 1 only (grouped convs stay NCHW)."""
    from tvm import te, topi

    n, _, height, width, _ = (int(v) for v in data.shape)
    out_outer, in_outer, kh_size, kw_size, in_block, out_block = (int(v) for v in kernel.shape)
    sh, sw = (int(v) for v in strides)
    dh, dw = (int(v) for v in dilation)
    pt, pl, pb, pr = (int(v) for v in padding)
    out_h = (height + pt + pb - (kh_size - 1) * dh - 1) // sh + 1
    out_w = (width + pl + pr - (kw_size - 1) * dw - 1) // sw + 1
    if pt or pl or pb or pr:
        data = topi.nn.pad(data, [0, 0, pt, pl, 0], [0, 0, pb, pr, 0], name="pad")
    ico = te.reduce_axis((0, in_outer), "ico")
    ici = te.reduce_axis((0, in_block), "ici")
    kh = te.reduce_axis((0, kh_size), "kh")
    kw = te.reduce_axis((0, kw_size), "kw")
    return te.compute(
        (n, out_outer, out_h, out_w, out_block),
        lambda b, oco, oh, ow, oci: te.sum(
            data[b, ico, oh * sh + kh * dh, ow * sw + kw * dw, ici].astype(out_dtype)
            * kernel[oco, ico, kh, kw, ici, oci].astype(out_dtype),
            axis=[ico, kh, kw, ici],
        ),
        name="conv2d_NCHWc",
    )


def legalize_conv2d(bb, call):
    """LegalizeOps hook: blocked layouts get conv2d_nchwc, plain ones Relax's default."""
    from tvm.relax.transform.legalize_ops.nn import _nn_conv2d

    attrs = call.attrs
    if len(attrs.data_layout) == 4 and len(attrs.kernel_layout) == 4:
        return _nn_conv2d(bb, call)
    out_dtype = str(attrs.out_dtype) if attrs.out_dtype is not None else ""
    if out_dtype in ("", "void", "None"):
        out_dtype = str(call.args[0].ty.dtype)
    in_block = int(call.args[1].ty.shape[4])
    # A stem conv (NCHW3c in, NCHW16c out) gets its own name so adding it left the
    # names of the other convs' tasks, and the schedules keyed by them, as they were.
    hint = "conv2d_NCHWc" if in_block == BLOCK else f"conv2d_NCHW{in_block}c"
    return bb.call_te(conv2d_nchwc, call.args[0], call.args[1], attrs.strides, attrs.padding,
                      attrs.dilation, out_dtype, primfunc_name_hint=hint)


# Widest input a conv may take whole (all channels as one block) and still be blocked on
# its output: the 3-channel image of a CNN's stem.
STEM_MAX_CHANNELS = 4


def _choose(call, block: int) -> dict:
    """ConvertLayout callback: block a conv when both channel counts divide by the block;
    every other op: no wish.  Only one block size between convs: with a second (8 for a
    1000-class head) ConvertLayout fails on the reduction that follows ("Invalid layout
    axis 8b").  A stem conv (3 input channels) reads its input as one block of 3 and
    writes NCHW16c: tuned in plain NCHW it ran at ~30 GFLOP/s, 17 % of squeezenet."""
    if getattr(call.op, "name", None) != "relax.nn.conv2d":
        return {}
    in_ch = int(call.args[0].ty.shape[1])
    out_ch = int(call.args[1].ty.shape[0])
    if call.attrs.groups == 1 and out_ch % block == 0:
        if in_ch % block == 0:
            return {"relax.nn.conv2d": [f"NCHW{block}c", f"OIHW{block}i{block}o"]}
        if in_ch <= STEM_MAX_CHANNELS:
            return {"relax.nn.conv2d": [f"NCHW{in_ch}c", f"OIHW{in_ch}i{block}o", f"NCHW{block}c"]}
    return {"relax.nn.conv2d": ["NCHW", "OIHW"]}


# TVM's importer spells an ONNX Max, Min, Sum or Mean of n inputs as broadcast_to each
# input to the common shape, stack, then reduce over the new axis.
_BINARY_OF_REDUCTION = {"relax.max": "maximum", "relax.min": "minimum", "relax.sum": "add", "relax.mean": "add"}


def _shape(expr) -> list | None:
    shape = getattr(expr.ty, "shape", None)
    return None if shape is None else [int(d) for d in shape]


def broadcasting_reductions_as_binary_ops(mod):
    """Such a Max/Min/Sum/Mean with a constant or broadcast input (Max(x, 0.1)) as a chain
    of binary ops on the inputs themselves (maximum, minimum, add; / n for a Mean).
    ConvertLayout cannot infer a layout for the stack of a constant, nor for a
    broadcast_to from a lower rank, and fails ("Invalid SLayout"), so a conv model with
    a Max(x, 0.1) could not be blocked; binary ops broadcast the same way and carry any
    layout.  Those of same-shape computed inputs stay as they are, and so do the
    examples' tasks and the schedules keyed by them."""
    from functools import reduce

    import tvm
    from tvm import relax
    from tvm.relax.expr_functor import PyExprMutator, mutator

    from .rewrite import rewrite_main

    found = []

    @mutator
    class Rewriter(PyExprMutator):
        def visit_call_(self, call):
            call = super().visit_call_(call)
            reduction = getattr(call.op, "name", None)
            if reduction not in _BINARY_OF_REDUCTION or len(call.args) != 1:
                return call
            if [int(a) for a in (call.attrs.axis or [])] != [0] or call.attrs.keepdims:
                return call
            stacked = self.lookup_binding(call.args[0]) if isinstance(call.args[0], relax.Var) else None
            if getattr(getattr(stacked, "op", None), "name", None) != "relax.stack" or int(stacked.attrs.axis) != 0:
                return call
            parts = stacked.args[0]
            parts = self.lookup_binding(parts) if isinstance(parts, relax.Var) else parts
            if not isinstance(parts, relax.Tuple):
                return call
            inputs = []
            for part in parts.fields:
                bound = self.lookup_binding(part) if isinstance(part, relax.Var) else part
                if getattr(getattr(bound, "op", None), "name", None) == "relax.broadcast_to":
                    inputs.append(bound.args[0])
                elif isinstance(bound, tvm.ir.Constant):  # FoldConstant broadcast it already
                    inputs.append(bound)
                else:
                    inputs.append(part)
            target = _shape(call)
            if target is None or not any(_shape(i) != target or isinstance(i, tvm.ir.Constant) for i in inputs):
                return call
            found.append(reduction)
            binary = getattr(relax.op, _BINARY_OF_REDUCTION[reduction])
            out = reduce(binary, inputs)
            if reduction == "relax.mean":
                out = relax.op.divide(out, relax.const(len(inputs), str(call.ty.dtype)))
            return out

    out = rewrite_main(mod, Rewriter(mod), found)
    # the stacks and broadcasts it left unused
    return out if out is mod else relax.transform.DeadCodeElimination()(out)


def _has_conv2d(mod) -> bool:
    from tvm import relax

    found = []
    for func in mod.functions.values():
        if isinstance(func, relax.Function):
            relax.analysis.post_order_visit(
                func, lambda node: found.append(node) if isinstance(node, relax.Call)
                and getattr(node.op, "name", None) == "relax.nn.conv2d" else None)
    return bool(found)


def convert(mod, layout: str, block: int = BLOCK):
    """Rewrite conv2d layouts of a Relax module (batch norm already decomposed).  A
    module without a convolution is left as it is: ConvertLayout would change nothing
    in it, yet fails on ops whose layouts it cannot infer (the stack TVM's importer
    makes of a two-input Max or Min)."""
    from tvm import relax

    from ..errors import BadInput

    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r} (choose from {', '.join(LAYOUTS)})")
    if layout == "NCHW" or not _has_conv2d(mod):
        return mod
    mod = broadcasting_reductions_as_binary_ops(mod)
    try:
        return relax.transform.ConvertLayout({}, lambda call: _choose(call, block))(mod)
    except Exception as e:  # noqa: BLE001 - TVM's InternalError names no op
        raise BadInput(f"blocking the convolutions' layout (NCHW{block}c) failed in TVM's ConvertLayout: "
                       f"{str(e).splitlines()[-1]}; tune with --layout NCHW (plain convolutions)") from None

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


def convert(mod, layout: str, block: int = BLOCK):
    """Rewrite conv2d layouts of a Relax module (batch norm already decomposed)."""
    from tvm import relax

    if layout == "NCHW":
        return mod
    if layout != "NCHWc":
        raise ValueError(f"unknown layout {layout!r} (choose from {', '.join(LAYOUTS)})")
    return relax.transform.ConvertLayout({}, lambda call: _choose(call, block))(mod)

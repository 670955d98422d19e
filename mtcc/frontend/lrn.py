"""Local response normalization (ONNX LRN) as one task.

TVM's ONNX importer spells LRN as nine ops: x*x, expand_dims, an avg_pool3d over the
channel axis, squeeze, *alpha, +bias, **beta and x / that.  Once the convolutions run
in a blocked layout (NCHW16c), ConvertLayout cannot carry the channel-axis pool, so
the chain also gains two layout transforms, and it fuses into six tasks.  In
inception_v1 they took 3.0 ms of 34 on one core (2.3 for the second LRN alone: every
pass reads and writes 2.3 MB at 1 ns an element).  This pass puts the chain back
together after ConvertLayout, as one TE compute over the layout x is in: per element,
the sum of the squares of the `size` channels around it, then x / (bias + alpha *
sum / size) ** beta -- the same arithmetic, one read of the window, one write.
"""
from __future__ import annotations

from dataclasses import dataclass


def _blocked_to_plain(index_map, block: int) -> bool:
    """Does this layout_transform map NCHW{block}c indices to NCHW ones?"""
    if len(index_map.initial_indices) != 5 or len(index_map.final_indices) != 4:
        return False
    for probe in ([0, 1, 2, 3, 4], [0, 2, 5, 1, block - 1]):
        n, outer, h, w, inner = probe
        got = [int(v) for v in index_map.map_indices(probe)]
        if got != [n, outer * block + inner, h, w]:
            return False
    return True


def _plain_to_blocked(index_map, block: int) -> bool:
    """Does this layout_transform map NCHW indices to NCHW{block}c ones?"""
    if len(index_map.initial_indices) != 4 or len(index_map.final_indices) != 5:
        return False
    for channel in (3, block + 1, 2 * block - 1):
        got = [int(v) for v in index_map.map_indices([0, channel, 2, 3])]
        if got != [0, channel // block, 2, 3, channel % block]:
            return False
    return True


@dataclass(frozen=True)
class _Chain:
    """The constants of one matched LRN chain: the window's size and how many channels
    it reaches before the centre, the arithmetic's constants, and the channel block of
    x's layout (None: plain NCHW)."""

    size: int
    before: int
    alpha: float
    bias: float
    beta: float
    block: int | None


def match(divide, lookup) -> tuple[object, _Chain] | None:
    """(x, constants) when `divide` is x / (the importer's LRN chain of x), else None.
    `lookup(var)` gives the value bound to a variable (None if unbound)."""
    from tvm import relax

    from .tasks import scalar_constant, tvm_op

    def call_of(expr, op_name, nargs=None):
        value = lookup(expr) if isinstance(expr, relax.Var) else expr
        if isinstance(value, relax.Call) and value.op.same_as(tvm_op(op_name)):
            if nargs is None or len(value.args) == nargs:
                return value
        return None

    if not divide.op.same_as(tvm_op("relax.divide")):
        return None
    x, denominator = divide.args
    ndim = len(x.ty.shape) if hasattr(x.ty, "shape") and x.ty.shape is not None else None
    block = None
    if ndim == 5:
        block = int(x.ty.shape[4])
        back = call_of(denominator, "relax.layout_transform")
        if back is None or not _plain_to_blocked(back.attrs.index_map, block):
            return None
        denominator = back.args[0]
    elif ndim != 4:
        return None
    chain = {}  # from the divide back to the squares
    for op_name, nargs in (("relax.power", 2), ("relax.add", 2), ("relax.multiply", 2), ("relax.squeeze", 1),
                           ("relax.nn.avg_pool3d", 1), ("relax.expand_dims", 1)):
        value = call_of(denominator, op_name, nargs)
        if value is None:
            return None
        chain[op_name] = value
        denominator = value.args[0]
    power, add, scale, squeeze, pool, expand = chain.values()
    beta, bias, alpha = (scalar_constant(op.args[1]) for op in (power, add, scale))
    if None in (beta, bias, alpha):
        return None
    if [int(a) for a in squeeze.attrs.axis] != [1] or [int(a) for a in expand.attrs.axis] != [1]:
        return None
    attrs = pool.attrs
    size = int(attrs.pool_size[0])
    padding = [int(p) for p in attrs.padding]
    if ([int(s) for s in attrs.pool_size[1:]] != [1, 1] or any(int(s) != 1 for s in attrs.strides)
            or any(int(d) != 1 for d in attrs.dilation) or not attrs.count_include_pad or attrs.ceil_mode
            or str(attrs.layout) != "NCDHW" or padding[1:3] + padding[4:] != [0, 0, 0, 0]
            or padding[0] + padding[3] != size - 1):
        return None
    squares = expand.args[0]
    if block is not None:
        plain = call_of(squares, "relax.layout_transform")
        if plain is None or not _blocked_to_plain(plain.attrs.index_map, block):
            return None
        squares = plain.args[0]
    square = call_of(squares, "relax.multiply", 2)
    if square is None or not (square.args[0].same_as(x) and square.args[1].same_as(x)):
        return None
    return x, _Chain(size, padding[0], alpha, bias, beta, block)


def lrn_compute(x, chain: _Chain):
    """TE: x / (bias + alpha * (sum of squares over the channel window) / size) ** beta,
    x in NCHW or NCHW{block}c."""
    from tvm import te, tirx

    from .tasks import power_expr, quarter_power

    shape = [int(v) for v in x.shape]
    block = chain.block
    channels = shape[1] * block if block else shape[1]
    window = te.reduce_axis((0, chain.size), "window")

    def element(index, channel):
        if block:
            return x[index[0], channel // block, index[2], index[3], channel % block]
        return x[index[0], channel, index[2], index[3]]

    def square_sum(*index):
        channel = index[1] * block + index[4] if block else index[1]
        source = channel + window - chain.before
        value = element(index, source)
        inside = tirx.all(source >= 0, source < channels)
        return te.sum(tirx.if_then_else(inside, value * value, tirx.const(0, x.dtype)), axis=window)

    sums = te.compute(shape, square_sum, name="square_sum")
    plan = quarter_power(chain.beta)

    def normalized(*index):
        base = (tirx.const(chain.bias, x.dtype)
                + sums(*index) * tirx.const(chain.alpha / chain.size, x.dtype))
        scale = power_expr(base, plan, x.dtype) if plan else tirx.power(base, tirx.const(chain.beta, x.dtype))
        return x(*index) / scale

    return te.compute(shape, normalized, name="T_lrn")


def fuse_local_response_norms(mod):
    """Every LRN chain of main as one call of lrn_compute.  The chain's other bindings are
    left in place, unused, for LegalizeOps to name as before and DeadCodeElimination to
    drop after it: the tasks after an LRN keep their names (fused_conv2d_NCHWc1_add3_relu2,
    not ..._add2_...), and the committed schedules and variants keyed by them still apply."""
    from tvm import relax
    from tvm.relax.expr_functor import PyExprMutator, mutator

    from .rewrite import rewrite_main

    found = []

    @mutator
    class Rewriter(PyExprMutator):
        def visit_call_(self, call):
            call = super().visit_call_(call)
            matched = match(call, self.lookup_binding) if isinstance(call, relax.Call) else None
            if matched is None:
                return call
            x, chain = matched
            found.append(chain)
            return self.builder_.call_te(lambda data: lrn_compute(data, chain), x,
                                         primfunc_name_hint="local_response_norm")

    return rewrite_main(mod, Rewriter(mod), found)


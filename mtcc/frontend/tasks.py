"""Operator tasks and the model's call sequence.

The Relax module is legalized and fused exactly as `tvm.compile` would, then
MetaSchedule's own `extract_tasks` gives the distinct fused TIR functions it
will tune (structurally equal functions are one task, used `count` times).
The ordered `call_tir` bindings of the fused `main` are the call sequence that
later stages cut into layer blocks.
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import asdict, dataclass, field

from . import layout as layout_pass
from . import lrn
from .layout import DEFAULT_LAYOUT


@dataclass
class Task:
    name: str                 # MetaSchedule's task name (the first fused function's name)
    kind: str                 # the anchor op, e.g. conv2d, matmul, softmax
    ops: list[str]            # every op fused into it, in order
    flops: float              # per call
    count: int                # calls in the model (MetaSchedule's task weight)
    inputs: list[dict]        # [{"shape", "dtype"}] of the arguments
    outputs: list[dict]
    functions: list[str] = field(default_factory=list)  # fused functions that are this task

    @property
    def total_flops(self) -> float:
        return self.flops * self.count


@dataclass
class Call:
    index: int
    task: str
    function: str
    output: str               # the Relax variable it binds


@dataclass
class TaskGraph:
    tasks: list[Task]
    calls: list[Call]
    extracted: list = field(default_factory=list, repr=False)  # MetaSchedule's ExtractedTasks

    @property
    def task_of_function(self) -> dict[str, str]:
        """Fused function name -> its task's name."""
        return {c.function: c.task for c in self.calls}

    @property
    def total_flops(self) -> float:
        return sum(t.total_flops for t in self.tasks)

    def task(self, name: str) -> Task:
        return next(t for t in self.tasks if t.name == name)

    def as_dict(self) -> dict:
        return {"tasks": [asdict(t) for t in self.tasks], "calls": [asdict(c) for c in self.calls]}


# Ops that decide a task's kind when fused with element-wise epilogues, most
# important first (a conv2d+add+relu is a conv2d task).
_ANCHORS = ("conv2d_NCHWc", "conv2d", "conv1d", "conv3d", "conv2d_transpose", "matmul", "dense", "batch_matmul",
            "softmax", "layer_norm", "group_norm", "lrn", "local_response_norm", "max_pool2d", "avg_pool2d",
            "adaptive_avg_pool2d", "mean", "sum", "max", "concatenate", "transpose", "reshape")


# Anchors of another name than their kind (frontend.lrn names its fused LRN
# "local_response_norm").
_KIND_OF_ANCHOR = {"conv2d_NCHWc": "conv2d", "local_response_norm": "lrn"}


# Op names that contain "_" (fused function names join op names with "_").
_MULTI_WORD = {"conv2d_NCHWc", "te_layout_transform", "local_response_norm", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "layer_norm", "group_norm",
               "batch_norm", "rms_norm", "strided_slice", "expand_dims", "batch_matmul",
               "conv2d_transpose", "broadcast_to", "full_like", "zeros_like", "ones_like",
               "layout_transform", "scatter_elements", "gather_elements", "gather_nd",
               "image_resize2d", "collapse_sum_like", "log_softmax"}


def _split_ops(func_name: str) -> list[str]:
    """'fused_conv2d8_add3_relu3' -> ['conv2d', 'add', 'relu'] (numbers are TVM's de-dup suffixes)."""
    base = func_name[len("fused_"):] if func_name.startswith("fused_") else func_name
    words = [re.sub(r"\d+$", "", w) if not w.endswith(("1d", "2d", "3d")) else w for w in base.split("_")]
    words = [w for w in words if w]
    ops, i = [], 0
    while i < len(words):
        for n in (4, 3, 2):  # longest known multi-word name first
            cand = "_".join(words[i:i + n])
            if len(words) - i >= n and cand in _MULTI_WORD:
                ops.append(cand)
                i += n
                break
        else:
            ops.append(words[i])
            i += 1
    return ops


def _kind(ops: list[str]) -> str:
    for anchor in _ANCHORS:
        if anchor in ops:
            return _KIND_OF_ANCHOR.get(anchor, anchor)
    return ops[0] if ops else "unknown"


def _buffer_infos(prim_func) -> tuple[list[dict], list[dict]]:
    """Shapes of a destination-passing PrimFunc: the last params are outputs."""
    # TVM 0.27: a buffer parameter is a Var whose type (`ty`) is a BufferType.
    bufs = [p.ty for p in prim_func.params if hasattr(p.ty, "shape")]
    infos = [{"shape": [int(d) for d in b.shape], "dtype": str(b.dtype)} for b in bufs]
    n_out = 1
    return infos[:-n_out], infos[-n_out:]


def function_key(func) -> int:
    """What makes two PrimFuncs the same task: their structure, whatever their name."""
    import tvm_ffi

    return tvm_ffi.structural_hash(func.without_attr("global_symbol"))


def same_schedule(a, b) -> bool:
    """Whether two PrimFuncs are the same code (names and the is-scheduled mark aside)."""
    import tvm_ffi

    def norm(f):
        return f.without_attr("global_symbol").with_attr("tirx.is_scheduled", True)

    return bool(tvm_ffi.structural_equal(norm(a), norm(b)))


def task_flops(workload_mod) -> float:
    """FLOPs of one call of a task (TVM's estimate; data movement has none)."""
    from tvm.s_tir.analysis import estimate_tir_flops

    try:
        return float(estimate_tir_flops(workload_mod))
    except Exception:  # noqa: BLE001 - data movement ops have none to count
        return 0.0


# The dtypes mtcc's vectorizable rewrites apply to (legalize_with_polynomials,
# legalize_power, legalize_max_pool2d, the LRN's compute); others keep TVM's own legalization.
REWRITTEN_DTYPES = ("float32", "float16")


def scalar_constant(expr) -> float | None:
    """The value of a scalar (or one-element) Relax constant, else None."""
    import tvm

    if not isinstance(expr, tvm.ir.expr.Constant):
        return None
    value = expr.value.numpy()
    return float(value.reshape(())) if value.size == 1 else None


# LLVM turns TIR's exp, log, erf and tanh into a scalar call to libm per element (expf,
# logf, erff), which no loop around them can vectorize: the transformer's GELU ran 4x slower
# than its matmul alone, its two 4x64x64 softmaxes at 0.6-1.1 GFLOP/s (14-16 % of it).
# TVM's own approximations (range reduction and polynomials, float32 error ~1e-7, as
# ONNX Runtime's kernels approximate these too) and polynomial_log_expr are plain
# arithmetic that vectorizes.
def _polynomial_sigmoid(x):
    from tvm import te, topi, tirx

    exp_minus_x = topi.fast_exp(topi.negative(x))
    one = tirx.const(1, x.dtype)
    return te.compute(x.shape, lambda *index: one / (one + exp_minus_x(*index)), name="T_sigmoid")


def _polynomial_gelu(x):
    from tvm import topi, tirx

    half = tirx.const(0.5, x.dtype)
    return x * (half + topi.fast_erf(x * tirx.const(0.5 ** 0.5, x.dtype)) * half)


def _polynomial_gelu_tanh(x):
    from tvm import topi, tirx

    def const(value):
        return tirx.const(value, x.dtype)

    inner = const((2 / math.pi) ** 0.5) * (x + const(0.044715) * x * x * x)
    return const(0.5) * x * (const(1) + topi.fast_tanh(inner))


def polynomial_log_expr(value):
    """log(value) of a float32 TIR expression without libm: the exponent read off the
    bits, the mantissa m in [sqrt(1/2), sqrt(2)) through 2 atanh((m - 1) / (m + 1)) to
    the 9th power (error ~1 ulp); 0 -> -inf, +inf -> +inf, negatives and NaN -> NaN,
    denormals scaled up first.  TVM has no fast_log; libm's logf per element ran 8x
    slower than this on 16384 values (91 against 11 µs)."""
    from tvm import tirx

    def const(v, dtype="float32"):
        return tirx.const(v, dtype)

    tiny = value < const(1.17549435e-38)  # below the smallest normal float32
    scaled = tirx.Select(tiny, value * const(8388608.0), value)  # x 2^23
    bits = tirx.reinterpret("int32", scaled)
    exponent = ((bits >> 23) & 0xFF) - tirx.Select(tiny, const(150, "int32"), const(127, "int32"))
    mantissa = tirx.reinterpret("float32", (bits & 0x007FFFFF) | 0x3F800000)  # in [1, 2)
    upper = mantissa > const(1.41421356)
    m = tirx.Select(upper, mantissa * const(0.5), mantissa)
    e = tirx.Cast("float32", exponent + tirx.Select(upper, const(1, "int32"), const(0, "int32")))
    s = (m - const(1)) / (m + const(1))
    s2 = s * s
    series = const(2) * s * (const(1) + s2 * (const(1 / 3) + s2 * (const(1 / 5) + s2 * (const(1 / 7)
                                                                                      + s2 * const(1 / 9)))))
    # ln 2 in two parts, so that e * ln 2 keeps float32 precision up to e = 128
    result = e * const(0.693145751953125) + (e * const(1.4286068203094172e-06) + series)
    result = tirx.Select(value == const(0), const(float("-inf")), result)
    result = tirx.Select(value == const(float("inf")), const(float("inf")), result)
    # NaN read off the bits: a fast-math compare (value != value) folds to false
    not_a_number = (tirx.reinterpret("int32", value) & 0x7FFFFFFF) > 0x7F800000
    return tirx.Select(tirx.any(value < const(0), not_a_number), const(float("nan")), result)


def _polynomial_log(x):
    from tvm import te, topi

    if x.dtype != "float32":
        return topi.log(x)
    return te.compute(x.shape, lambda *index: polynomial_log_expr(x(*index)), name="T_log")


def _polynomial_log_softmax(x, axis: int):
    from tvm import topi

    shifted = topi.subtract(x, topi.max(x, axis, keepdims=True))
    return topi.subtract(shifted, _polynomial_log(topi.sum(topi.fast_exp(shifted), axis, keepdims=True)))


@functools.cache
def _polynomial_rewrites() -> dict:
    """Relax op -> (TE compute with TVM's vectorizable approximations, function name,
    the integer attributes the compute takes after the input)."""
    from tvm import topi

    return {"relax.erf": (topi.fast_erf, "erf", ()),
            "relax.exp": (topi.fast_exp, "exp", ()),
            "relax.log": (_polynomial_log, "log", ()),
            "relax.tanh": (topi.fast_tanh, "tanh", ()),
            "relax.sigmoid": (_polynomial_sigmoid, "sigmoid", ()),
            "relax.nn.gelu": (_polynomial_gelu, "gelu", ()),
            "relax.nn.gelu_tanh": (_polynomial_gelu_tanh, "gelu_tanh", ()),
            "relax.nn.softmax": (topi.nn.fast_softmax, "softmax", ("axis",)),
            "relax.nn.log_softmax": (_polynomial_log_softmax, "log_softmax", ("axis",))}


def legalize_with_polynomials(bb, call):
    """LegalizeOps hook for the ops of _polynomial_rewrites: TVM's approximations (in
    float16 its fast_exp and fast_tanh, and _polynomial_log, are exp, tanh and log again;
    fast_erf has its own)."""
    name = call.op.name
    if str(call.args[0].ty.dtype) not in REWRITTEN_DTYPES:
        return tvm_op(name).get_attr("FLegalize")(bb, call)
    compute, hint, attrs = _polynomial_rewrites()[name]
    return bb.call_te(compute, call.args[0], *(int(getattr(call.attrs, a)) for a in attrs), primfunc_name_hint=hint)


# TIR math that LLVM turns into a scalar libm call per element on x86 (seen in the
# assembly: expf@PLT, logf@PLT, sinf@PLT, ...; sqrt, rsqrt, fabs, floor and round
# vectorize).  legalize_with_polynomials rewrites the common ones; `mtcc inspect` names
# any left, e.g. a Sin or a Pow, so a user knows why such a task runs at ~1 GFLOP/s
# whatever the schedule.
SCALAR_LIBM_MATH = frozenset({"exp", "exp2", "exp10", "expm1", "log", "log2", "log10", "log1p", "pow", "erf",
                              "tanh", "sigmoid", "sin", "cos", "tan", "asin", "acos", "atan", "atan2", "sinh",
                              "cosh", "asinh", "acosh", "atanh"})


def scalar_math(func) -> list[str]:
    """The SCALAR_LIBM_MATH calls in a PrimFunc (as TVMScript prints them: T.log(...))."""
    return sorted(set(re.findall(r"\bT\.(\w+)\(", func.script())) & SCALAR_LIBM_MATH)


def quarter_power(exponent: float) -> tuple[int, float, bool] | None:
    """(whole part, fraction, negative) of a constant exponent that square roots and
    multiplications compute exactly enough -- |e| = n + f, f in 1/4, 1/2, 3/4, n <= 2 --
    or None (integer exponents and others stay TVM's pow)."""
    magnitude = abs(float(exponent))
    whole, fraction = divmod(magnitude, 1.0)
    if fraction not in (0.25, 0.5, 0.75) or whole > 2:
        return None
    return int(whole), fraction, exponent < 0


def legalize_power(bb, call):
    """LegalizeOps hook: x ** c for a constant c in quarters (LRN's beta = 0.75) as square
    roots and multiplications, which vectorize, instead of a scalar call to libm's powf
    per element: inception_v1's two LRNs spent 4.5 ms of its 42 in powf, at 0.3 GFLOP/s.
    NaN below 0 as pow; elsewhere float32 rounding apart (tests/test_numerics.py
    compares LRN and seven exponents with ONNX Runtime)."""
    from tvm import te

    base, exponent = call.args
    value = scalar_constant(exponent)
    plan = quarter_power(value) if value is not None and str(base.ty.dtype) in REWRITTEN_DTYPES else None
    if plan is None:
        return tvm_op("relax.power").get_attr("FLegalize")(bb, call)

    def power(x):
        return te.compute(x.shape, lambda *index: power_expr(x(*index), plan, x.dtype), name="T_power")

    return bb.call_te(power, base, primfunc_name_hint="power")


def power_expr(value, plan: tuple[int, float, bool], dtype: str):
    """value ** exponent for quarter_power's plan of the exponent, as a TIR expression."""
    from tvm import tirx

    whole, fraction, negative = plan
    root2 = tirx.sqrt(value)
    root4 = tirx.sqrt(root2)
    out = {0.25: root4, 0.5: root2, 0.75: root2 * root4}[fraction]
    for _ in range(whole):
        out = out * value
    return tirx.const(1, dtype) / out if negative else out


# Largest window legalize_max_pool2d spells out term by term; larger ones stay TOPI's.
MAX_POOL_TERMS = 64


def legalize_max_pool2d(bb, call):
    """LegalizeOps hook: a max pool in NCHW{b}c as the max of its window's elements
    written out (kh x kw terms, bounds checked only where a window can leave the input),
    without a reduction axis.  TOPI's pool reduces over the window in the innermost
    loops, so MetaSchedule (which offers a pool only 5-10 candidates) cannot vectorize
    the channel block: inception_v1's 13 pools ran at 5-30 GFLOP/s, 1.2 ms of 31.
    Written out, the innermost loop is the channel block, which vectorizes.  Plain NCHW
    keeps TOPI's: there the innermost loop would be the width (13 in inception_v1's two
    such pools, 2.3x slower written out)."""
    from functools import reduce

    from tvm import te, tirx

    attrs = call.attrs
    data = call.args[0]
    layout = str(attrs.layout)
    blocked = re.fullmatch(r"NCHW\d+c", layout) is not None
    kh_size, kw_size = (int(v) for v in attrs.pool_size)
    if (str(attrs.out_layout) != layout or not blocked
            or str(data.ty.dtype) not in REWRITTEN_DTYPES or kh_size * kw_size > MAX_POOL_TERMS):
        return tvm_op("relax.nn.max_pool2d").get_attr("FLegalize")(bb, call)
    sh, sw = (int(v) for v in attrs.strides)
    dh, dw = (int(v) for v in attrs.dilation)
    top, left = int(attrs.padding[0]), int(attrs.padding[1])
    out_shape = [int(v) for v in call.ty.shape]
    height, width = int(data.ty.shape[2]), int(data.ty.shape[3])
    out_h, out_w = out_shape[2:4]

    def checks(index, k, stride, dilation, before, size, out_size):
        """The bounds checks of one window offset that can fail for some output index."""
        first, last = k * dilation - before, (out_size - 1) * stride + k * dilation - before
        return ([index >= 0] if first < 0 else []) + ([index < size] if last >= size else [])

    def pool(x):
        lowest = tirx.min_value(x.dtype)

        def element(n, c, oh, ow, *inner):
            terms = []
            for kh in range(kh_size):
                for kw in range(kw_size):
                    h, w = oh * sh + kh * dh - top, ow * sw + kw * dw - left
                    value = x[(n, c, h, w, *inner)]
                    inside = (checks(h, kh, sh, dh, top, height, out_h)
                              + checks(w, kw, sw, dw, left, width, out_w))
                    terms.append(tirx.if_then_else(tirx.all(*inside), value, lowest) if inside else value)
            return reduce(tirx.max, terms)

        return te.compute(out_shape, element, name="pool_max")

    return bb.call_te(pool, data, primfunc_name_hint="max_pool2d")


def legalize_and_fuse(mod, target, layout: str = DEFAULT_LAYOUT):
    """The lowering every stage shares (tasks, tuning, compiling): batch norm decomposed,
    convolutions put in `layout`, ops legalized to TIR and fused.  Tuning records only
    apply to the functions this produces, so nothing else may lower differently."""
    import tvm
    from tvm import relax

    with target, tvm.transform.PassContext(opt_level=3):
        mod = relax.transform.DecomposeOpsForInference()(mod)
        mod = relax.transform.FoldConstant()(mod)  # lets the layout flow through batch norm
        mod = layout_pass.convert(mod, layout)
        mod = lrn.fuse_local_response_norms(mod)  # after the layout: the chain's transforms go too
        return tvm.transform.Sequential([
            relax.transform.LegalizeOps({"relax.nn.conv2d": layout_pass.legalize_conv2d,
                                         **dict.fromkeys(_polynomial_rewrites(), legalize_with_polynomials),
                                         "relax.power": legalize_power,
                                         "relax.nn.max_pool2d": legalize_max_pool2d}),
            relax.transform.DeadCodeElimination(),  # what fuse_local_response_norms left unused
            relax.transform.AnnotateTIROpPattern(),
            relax.transform.FoldConstant(),  # pre-blocks the weights at compile time
            relax.transform.FuseOps(),
            relax.transform.FuseTIR(),
        ])(mod)


def _call_sequence(fused) -> list[tuple[str, str]]:
    """(function name, bound variable) of every call_tir in main, in program order."""
    from tvm import relax

    call_tir = tvm_op("relax.call_tir")
    seq = []
    for block in fused["main"].body.blocks:
        for binding in block.bindings:
            value = binding.value
            if isinstance(value, relax.Call) and value.op.same_as(call_tir):
                seq.append((value.args[0].name_hint, binding.var.name))
    return seq


def tvm_op(name: str):
    import tvm

    return tvm.ir.Op.get(name)


def extract(mod, target, layout: str = DEFAULT_LAYOUT) -> TaskGraph:
    """Tasks (with FLOPs, counts, shapes) and the ordered calls of main."""
    return extract_fused(legalize_and_fuse(mod, target, layout), target)


def extract_fused(fused, target) -> TaskGraph:
    """extract() for a module that legalize_and_fuse already lowered."""
    import tvm.s_tir.meta_schedule as ms

    extracted = ms.relax_integration.extract_tasks(fused, target)
    # Map every fused function to its task by structure, as extract_tasks did.
    task_of_key = {}
    tasks = []
    for ext in extracted:
        func = ext.dispatched[0]["main"]
        ins, outs = _buffer_infos(func)
        ops = _split_ops(ext.task_name)
        task = Task(name=ext.task_name, kind=_kind(ops), ops=ops, flops=task_flops(ext.dispatched[0]),
                    count=int(ext.weight), inputs=ins, outputs=outs)
        task_of_key.setdefault(function_key(func), task)
        tasks.append(task)

    calls = []
    for fname, var in _call_sequence(fused):
        task = task_of_key.get(function_key(fused[fname]))
        if task is None:  # should not happen: extract_tasks saw the same functions
            continue
        if fname not in task.functions:
            task.functions.append(fname)
        calls.append(Call(index=len(calls), task=task.name, function=fname, output=var))
    # Order tasks by first use so tables read like the model, input to output.
    first_use = {}
    for call in calls:
        first_use.setdefault(call.task, call.index)
    tasks.sort(key=lambda t: first_use.get(t.name, len(calls)))
    return TaskGraph(tasks=tasks, calls=calls, extracted=list(extracted))

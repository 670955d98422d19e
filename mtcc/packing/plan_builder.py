"""Making the call plan (see mtcc.bundle.plan for what it is).

The fused module (`frontend.tasks.legalize_and_fuse`, with a tuning database applied
or not) goes through the same Relax passes that `tvm.compile` runs before code
generation -- RewriteDataflowReshape, ToNonDataflow, CallTIRRewrite and
StaticPlanBlockMemory -- and the resulting `main` is read binding by binding:

    storage = R.memory.alloc_storage(R.shape([bytes]), ...)     -> a storage block
    alloc   = R.memory.alloc_tensor(storage, offset, shape, dt) -> a view of it
    alloc   = R.builtin.alloc_tensor(shape, dt, ...)            -> an own buffer (outputs)
    f(a, b, const, alloc)                                       -> one call
    lv      = alloc                                             -> an alias
    lv      = R.reshape(x, shape)                               -> a view of x

So the memory plan is TVM's own (the VM's), and the calls are exactly those the VM
makes, to the same PrimFuncs.  Anything else in `main` (packed calls, dynamic
shapes, control flow) is refused with a one-line reason.
"""
from __future__ import annotations

import numpy as np

from ..bundle.plan import Plan, PlanCall, Slot
from ..frontend.tasks import function_key


def _ints(shape) -> list[int]:
    try:
        return [int(d) for d in shape]
    except (TypeError, ValueError):
        raise ValueError(f"call plan: dynamic shape {shape} is not supported") from None



def _task_names(mod, functions: list[str]) -> dict[str, str]:
    """Group functions by structure (as MetaSchedule's extract_tasks does); a task is
    named after its first function in call order."""
    by_hash: dict[int, str] = {}
    out = {}
    for fn in functions:
        if fn in out:
            continue
        h = function_key(mod[fn])
        out[fn] = by_hash.setdefault(h, fn)
    return out



def lower_for_plan(fused_mod):
    """The Relax passes of tvm.compile's CPU pipeline that fix calls and memory."""
    import tvm
    from tvm import relax

    return tvm.transform.Sequential([
        relax.transform.RewriteDataflowReshape(),
        relax.transform.ToNonDataflow(),
        relax.transform.RemovePurityChecking(),
        relax.transform.CallTIRRewrite(),
        relax.transform.StaticPlanBlockMemory(),
    ])(fused_mod)



def make_plan(fused_mod, task_of: dict[str, str] | None = None):
    """(Plan, IRModule of the PrimFuncs main calls, each with global_symbol = its name).

    `fused_mod`: the module of `tasks.legalize_and_fuse` (optionally with a database
    applied).  `task_of`: function -> task name (e.g. from a TaskGraph's calls); by
    default structurally equal functions are one task named after the first."""
    import tvm
    from tvm import relax, tirx

    lowered = lower_for_plan(fused_mod)
    main = lowered["main"]
    op = tvm.ir.Op.get
    ALLOC_STORAGE, ALLOC_TENSOR = op("relax.memory.alloc_storage"), op("relax.memory.alloc_tensor")
    BUILTIN_ALLOC, RESHAPE = op("relax.builtin.alloc_tensor"), op("relax.reshape")

    slots: list[Slot] = []
    storages: list[int] = []
    weights: dict[str, np.ndarray] = {}
    env: dict = {}          # relax Var -> slot id | storage ("S", i) | tuple of those
    const_slot: dict = {}   # relax Constant -> slot id
    raw_calls: list[tuple[str, list[int]]] = []

    def new_slot(**kw) -> int:
        slots.append(Slot(**kw))
        return len(slots) - 1

    def tensor_info(ty):
        if not isinstance(ty, relax.TensorType) or ty.shape is None:
            raise ValueError(f"call plan: expected a tensor of known shape, got {ty}")
        return _ints(ty.shape.values), str(ty.dtype)

    def value_of(expr):
        if isinstance(expr, relax.Var):
            if expr not in env:
                raise ValueError(f"call plan: {expr.name} used before it is bound")
            return env[expr]
        if isinstance(expr, tvm.ir.Constant):
            if expr not in const_slot:
                key = f"c{len(weights)}"
                arr = expr.value.numpy()
                weights[key] = arr
                const_slot[expr] = new_slot(kind="const", shape=list(arr.shape), dtype=str(arr.dtype), name=key)
            return const_slot[expr]
        if isinstance(expr, relax.Tuple):
            return tuple(value_of(f) for f in expr.fields)
        if isinstance(expr, relax.TupleGetItem):
            return value_of(expr.tuple_value)[expr.index]
        raise ValueError(f"call plan: unsupported argument {type(expr).__name__}: {str(expr)[:80]}")

    def flat_slots(v) -> list[int]:
        if isinstance(v, tuple):
            return [s for x in v for s in flat_slots(x)]
        if isinstance(v, int):
            return [v]
        raise ValueError("call plan: a storage block used as a tensor")

    for p in main.params:
        shape, dtype = tensor_info(p.ty)
        env[p] = new_slot(kind="input", shape=shape, dtype=dtype, name=p.name)
    inputs = [env[p] for p in main.params]

    for block in main.body.blocks:
        for b in block.bindings:
            if not isinstance(b, relax.VarBinding):
                raise ValueError(f"call plan: unsupported binding {type(b).__name__} in main")
            v = b.value
            if isinstance(v, relax.Call) and isinstance(v.op, tvm.ir.GlobalVar):
                fn = v.op.name_hint
                if not isinstance(lowered[fn], tirx.PrimFunc):
                    raise ValueError(f"call plan: main calls Relax function {fn}; only PrimFunc calls are planned")
                raw_calls.append((fn, [s for a in v.args for s in flat_slots(value_of(a))]))
                continue
            if isinstance(v, relax.Call) and v.op.same_as(ALLOC_STORAGE):
                nbytes = int(np.prod(_ints(v.args[0].values), dtype=np.int64))
                storages.append(nbytes)
                env[b.var] = ("S", len(storages) - 1)
            elif isinstance(v, relax.Call) and v.op.same_as(ALLOC_TENSOR):
                _, sid = value_of(v.args[0])
                offset = int(v.args[1].value)
                shape, dtype = tensor_info(b.var.ty)
                env[b.var] = new_slot(kind="storage", shape=shape, dtype=dtype, storage=sid, offset=offset)
            elif isinstance(v, relax.Call) and v.op.same_as(BUILTIN_ALLOC):
                shape, dtype = tensor_info(b.var.ty)
                env[b.var] = new_slot(kind="own", shape=shape, dtype=dtype)
            elif isinstance(v, relax.Call) and v.op.same_as(RESHAPE):
                src = value_of(v.args[0])
                shape, dtype = tensor_info(b.var.ty)
                env[b.var] = new_slot(kind="view", shape=shape, dtype=dtype, base=src)
            elif isinstance(v, (relax.Var, tvm.ir.Constant, relax.Tuple, relax.TupleGetItem)):
                env[b.var] = value_of(v)
            else:
                what = v.op.name if isinstance(v, relax.Call) and hasattr(v.op, "name") else type(v).__name__
                raise ValueError(f"call plan: unsupported binding {b.var.name} = {what} in main")

    outputs = flat_slots(value_of(main.body.body))

    # Destination passing: the trailing arguments a PrimFunc writes are its outputs.
    names = _task_names(lowered, [fn for fn, _ in raw_calls])
    if task_of:
        names.update({fn: task_of[fn] for fn in names if fn in task_of})
    # CallTIRRewrite allocates a fresh tensor for every output, right before the call:
    # the outputs are the trailing arguments no earlier call has touched.
    calls, used = [], set()
    for i, (fn, args) in enumerate(raw_calls):
        n_in = len(args)
        while n_in > 0 and slots[args[n_in - 1]].kind in ("storage", "own") and args[n_in - 1] not in used:
            n_in -= 1
        if n_in == len(args):
            raise ValueError(f"call plan: call {i} to {fn} writes no fresh buffer")
        used.update(args)
        calls.append(PlanCall(index=i, task=names[fn], function=fn, args=args[:n_in], outputs=args[n_in:]))

    funcs = {}
    for fn, _ in raw_calls:
        if fn not in funcs:
            funcs[fn] = lowered[fn].with_attr("global_symbol", fn)
    prim_funcs = tvm.IRModule({tvm.ir.GlobalVar(fn): f for fn, f in funcs.items()})
    return Plan(calls=calls, slots=slots, storages=storages, inputs=inputs, outputs=outputs,
                weights=weights), prim_funcs



def build_library(prim_funcs, target):
    """One shared library holding every PrimFunc of `prim_funcs`, callable by name."""
    import tvm

    with target:
        return tvm.tirx.build(prim_funcs, target=target)


"""The call plan: the ordered PrimFunc calls of a model's lowered `main`, with every
buffer allocated once, so that a runtime can stop between calls (layer blocks) and
send each call to any variant of its task (each variant its own function in one
shared library).

How the plan is made: the fused module (`tasks.legalize_and_fuse`, with a tuning
database applied or not) goes through the same Relax passes that `tvm.compile` runs
before code generation -- RewriteDataflowReshape, ToNonDataflow, CallTIRRewrite and
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

Slots: every tensor the calls touch is a slot -- a model input, a constant (weight),
a view into a storage block, an own buffer, or a reshaped view of another slot.
`Plan` is plain data: JSON for the structure, a `.npz` file (no pickle) for the
weights.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

FORMAT = "mtcc-plan/1"


@dataclass
class Slot:
    kind: str                 # "input" | "const" | "storage" (view of a block) | "own" | "view" (of `base`)
    shape: list[int]
    dtype: str
    name: str = ""            # input name or weight key
    storage: int = -1         # "storage": index into Plan.storages
    offset: int = 0           # "storage": byte offset in the block
    base: int = -1            # "view": the slot it reshapes

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


@dataclass
class PlanCall:
    index: int
    task: str                 # the task this call belongs to (variants are chosen per task)
    function: str             # the function the lowered module calls (the default choice)
    args: list[int]           # slots read
    outputs: list[int]        # slots written (destination passing: passed after args)


@dataclass
class Plan:
    calls: list[PlanCall]
    slots: list[Slot]
    storages: list[int]       # byte size of each planned storage block
    inputs: list[int]         # slots, in main's parameter order
    outputs: list[int]        # slots, in main's return order
    weights: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # not in JSON

    # -- queries ---------------------------------------------------------------------
    @property
    def tasks(self) -> dict[str, list[str]]:
        """task -> the functions of the lowered module that are this task."""
        out: dict[str, list[str]] = {}
        for c in self.calls:
            fns = out.setdefault(c.task, [])
            if c.function not in fns:
                fns.append(c.function)
        return out

    def memory(self) -> dict:
        """Bytes: planned (storage blocks + own buffers) vs one buffer per intermediate."""
        own = sum(s.nbytes for s in self.slots if s.kind == "own")
        planned = sum(self.storages) + own
        naive = sum(s.nbytes for s in self.slots if s.kind == "storage") + own
        weights = sum(s.nbytes for s in self.slots if s.kind == "const")
        return {"planned": planned, "naive": naive, "weights": weights}

    # -- serialization (no pickle) -------------------------------------------------------
    def to_dict(self) -> dict:
        return {"format": FORMAT, "calls": [asdict(c) for c in self.calls],
                "slots": [asdict(s) for s in self.slots], "storages": list(self.storages),
                "inputs": list(self.inputs), "outputs": list(self.outputs)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict, weights: dict[str, np.ndarray] | None = None) -> "Plan":
        if d.get("format") != FORMAT:
            raise ValueError(f"call plan: unknown format {d.get('format')!r} (expected {FORMAT})")
        return cls(calls=[PlanCall(**c) for c in d["calls"]], slots=[Slot(**s) for s in d["slots"]],
                   storages=[int(b) for b in d["storages"]], inputs=list(d["inputs"]),
                   outputs=list(d["outputs"]), weights=dict(weights or {}))

    @classmethod
    def from_json(cls, text: str, weights: dict[str, np.ndarray] | None = None) -> "Plan":
        return cls.from_dict(json.loads(text), weights)

    def save(self, directory) -> None:
        """plan.json + weights.npz (keys are the const slots' names)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "plan.json").write_text(self.to_json())
        np.savez(directory / "weights.npz", **self.weights)

    @classmethod
    def load(cls, directory) -> "Plan":
        directory = Path(directory)
        with np.load(directory / "weights.npz", allow_pickle=False) as z:
            weights = {k: z[k] for k in z.files}
        return cls.from_json((directory / "plan.json").read_text(), weights)


# ---------------------------------------------------------------------------------------
# Making a plan
# ---------------------------------------------------------------------------------------

def _ints(shape) -> list[int]:
    try:
        return [int(d) for d in shape]
    except (TypeError, ValueError):
        raise ValueError(f"call plan: dynamic shape {shape} is not supported") from None


def _task_names(mod, functions: list[str]) -> dict[str, str]:
    """Group functions by structure (as MetaSchedule's extract_tasks does); a task is
    named after its first function in call order."""
    import tvm_ffi

    by_hash: dict[int, str] = {}
    out = {}
    for fn in functions:
        if fn in out:
            continue
        h = tvm_ffi.structural_hash(mod[fn].without_attr("global_symbol"))
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


# ---------------------------------------------------------------------------------------
# Running a plan
# ---------------------------------------------------------------------------------------

class PlanExecutor:
    """Runs a Plan against a library holding its functions (and their variants).

        ex = PlanExecutor(lib, plan)           # weights default to plan.weights
        ex.run(x)                              # -> [np.ndarray]
        ex.set_inputs(x); ex.run_range(0, k); ex.run_range(k, len(plan.calls)); ex.get_outputs()
        ex.select({"fused_conv2d_add_relu": "fused_conv2d_add_relu__v1"})   # variant per task
    """

    def __init__(self, lib, plan: Plan, weights: dict[str, np.ndarray] | None = None, device=None):
        import tvm

        self.lib, self.plan = lib, plan
        self.device = device or tvm.cpu()
        weights = plan.weights if weights is None else weights
        self._storage = [tvm.runtime.empty((max(n, 1),), "uint8", self.device) for n in plan.storages]
        self.tensors: list = [None] * len(plan.slots)
        for i, s in enumerate(plan.slots):
            self.tensors[i] = self._make(i, s, weights)
        self._funcs: dict[str, object] = {}
        self.choice: list[str] = [c.function for c in plan.calls]
        self._bound = [(self._func(c.function), tuple(self.tensors[j] for j in c.args + c.outputs))
                       for c in plan.calls]

    def _make(self, i: int, s: Slot, weights):
        import tvm

        if s.kind == "const":
            arr = weights[s.name]
            if list(arr.shape) != s.shape or str(arr.dtype) != s.dtype:
                raise ValueError(f"call plan: weight {s.name} is {arr.dtype}{list(arr.shape)}, "
                                 f"the plan expects {s.dtype}{s.shape}")
            return tvm.runtime.tensor(np.ascontiguousarray(arr), self.device)
        if s.kind == "storage":
            return self._storage[s.storage]._create_view(s.shape, s.dtype, s.offset)
        if s.kind in ("input", "own"):
            return tvm.runtime.empty(s.shape, s.dtype, self.device)
        if s.kind == "view":
            base = self.tensors[s.base]
            if base is None:
                base = self.tensors[s.base] = self._make(s.base, self.plan.slots[s.base], weights)
            return base._create_view(s.shape, s.dtype, 0)
        raise ValueError(f"call plan: unknown slot kind {s.kind!r}")

    def _func(self, name: str):
        f = self._funcs.get(name)
        if f is None:
            f = self.lib.get_function(name)  # raises if the library lacks it
            if f is None:
                raise KeyError(f"call plan: the library has no function {name!r}")
            self._funcs[name] = f
        return f

    def __len__(self) -> int:
        return len(self._bound)

    # -- variant choice ------------------------------------------------------------------
    def select(self, choice: dict[str, str], start: int = 0, end: int | None = None) -> None:
        """Call `choice[task]` for every call of `task` in [start, end) (all calls by
        default); tasks not named keep their current function."""
        end = len(self._bound) if end is None else end
        for i in range(start, end):
            fn = choice.get(self.plan.calls[i].task)
            if fn is not None and fn != self.choice[i]:
                self._bound[i] = (self._func(fn), self._bound[i][1])
                self.choice[i] = fn

    def reset_choice(self) -> None:
        for i, c in enumerate(self.plan.calls):
            self._bound[i] = (self._func(c.function), self._bound[i][1])
            self.choice[i] = c.function

    # -- running ---------------------------------------------------------------------------
    def set_inputs(self, *arrays: np.ndarray) -> None:
        if len(arrays) != len(self.plan.inputs):
            raise ValueError(f"call plan: {len(self.plan.inputs)} inputs expected, got {len(arrays)}")
        for slot, a in zip(self.plan.inputs, arrays):
            s = self.plan.slots[slot]
            a = np.ascontiguousarray(a, dtype=s.dtype)
            if list(a.shape) != s.shape:
                raise ValueError(f"call plan: input {s.name} must be {s.shape}, got {list(a.shape)}")
            self.tensors[slot].copyfrom(a)

    def run_range(self, start: int, end: int) -> None:
        for f, args in self._bound[start:end]:
            f(*args)

    def get_outputs(self) -> list[np.ndarray]:
        return [self.tensors[s].numpy() for s in self.plan.outputs]

    def run(self, *arrays: np.ndarray) -> list[np.ndarray]:
        self.set_inputs(*arrays)
        self.run_range(0, len(self._bound))
        return self.get_outputs()

    def time_calls(self, repeat: int = 1) -> list[float]:
        """Seconds per call (best of `repeat`), inputs as last set."""
        best = [float("inf")] * len(self._bound)
        for _ in range(repeat):
            for i, (f, args) in enumerate(self._bound):
                t = time.perf_counter()
                f(*args)
                best[i] = min(best[i], time.perf_counter() - t)
        return best


def build_library(prim_funcs, target):
    """One shared library holding every PrimFunc of `prim_funcs`, callable by name."""
    import tvm

    with target:
        return tvm.tirx.build(prim_funcs, target=target)

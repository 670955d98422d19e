"""Running a call plan against a library holding its functions (and their variants)."""
from __future__ import annotations

import time

import numpy as np

from ..bundle.plan import Plan, Slot


def device_weights(plan: Plan, weights: dict[str, np.ndarray] | None = None, device=None) -> dict:
    """The plan's weights as device tensors, made once, to share between executors."""
    import tvm

    device = device or tvm.cpu()
    weights = plan.weights if weights is None else weights
    return {name: tvm.runtime.tensor(np.ascontiguousarray(arr), device) for name, arr in weights.items()}


class PlanExecutor:
    """Runs a Plan against a library holding its functions (and their variants).

        ex = PlanExecutor(lib, plan)           # weights default to plan.weights
        ex.run(x)                              # -> [np.ndarray]
        ex.set_inputs(x); ex.run_range(0, k); ex.run_range(k, len(plan.calls)); ex.get_outputs()
        ex.select({"fused_conv2d_add_relu": "fused_conv2d_add_relu__v1"})   # variant per task
    """

    def __init__(self, lib, plan: Plan, weights: dict | None = None, device=None):
        """`weights`: numpy arrays (copied to the device), or tensors from
        device_weights() -- shared, not copied, by every executor given them (the lanes
        of a tenant share one copy of a model's weights)."""
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
        self._bound = [(self._func(c.function), self._call_args(c)) for c in plan.calls]
        self._aliased: dict[int, np.ndarray] = {}   # input slot -> the array its calls read in place
        self._out_views: tuple = ((), [])           # (ids of the arrays, their TVM views)
        self._host_views: dict[int, np.ndarray | None] = {}  # slot -> numpy over its memory (_host_view)

    def _make(self, i: int, s: Slot, weights):
        import tvm

        if s.kind == "const":
            arr = weights[s.name]
            if isinstance(arr, tvm.runtime.Tensor):
                return arr
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

    def _call_args(self, call) -> tuple:
        """The tensors a call is given: its arguments, then its outputs."""
        return tuple(self.tensors[j] for j in call.args + call.outputs)

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

    # -- inputs and outputs in place --------------------------------------------------------
    def read_inputs_from(self, arrays: list[np.ndarray]) -> None:
        """Let the calls read the inputs where `arrays` live (a tenant's shared-memory
        arena: contiguous, 64-byte aligned) instead of copying them in at every run: the
        caller writes each request's inputs there, and set_inputs with these very
        arrays copies nothing.  The copy it saves cost 50-270 µs per request in a tenant
        (TVM's copyfrom between a block's kernels, caches cold), for a 32 KB input."""
        import tvm

        aliased = {}
        for slot, a in zip(self.plan.inputs, arrays):
            s = self.plan.slots[slot]
            if list(a.shape) != s.shape or str(a.dtype) != s.dtype or not a.flags.c_contiguous:
                raise ValueError(f"call plan: input {s.name} must be a contiguous {s.dtype}{s.shape}")
            aliased[slot] = a
            self.tensors[slot] = tvm.runtime.from_dlpack(a)
        remade = set(aliased)
        while True:  # views of an input (reshapes), and views of those, follow it
            stale = [i for i, s in enumerate(self.plan.slots) if s.kind == "view" and s.base in remade and i not in remade]
            if not stale:
                break
            for i in stale:
                self.tensors[i] = self._make(i, self.plan.slots[i], None)
                remade.add(i)
        self._bound = [(f, self._call_args(c)) for (f, _), c in zip(self._bound, self.plan.calls)]
        self._aliased = aliased
        self._host_views.clear()

    def write_outputs_to(self, arrays: list[np.ndarray]) -> None:
        """Copy the outputs into `arrays` (contiguous, 64-byte aligned) inside TVM, with
        no numpy array made on the way (get_outputs makes one per output)."""
        import tvm

        key = tuple(id(a) for a in arrays)
        if self._out_views[0] != key:
            self._out_views = (key, [tvm.runtime.from_dlpack(a) for a in arrays])
        for slot, view in zip(self.plan.outputs, self._out_views[1]):
            self.tensors[slot].copyto(view)

    def _host_view(self, slot: int) -> np.ndarray | None:
        """A numpy array over the memory of slot's tensor (no copy, made once), or None
        for a dtype numpy lacks.  numpy copies a request's inputs in and its outputs out
        at memcpy speed; TVM's copyfrom and numpy() took ~14 µs each for the
        transformer's 32 KB (1.5 µs this way), a tenth of the model's run on 2 cores."""
        if slot not in self._host_views:
            try:
                self._host_views[slot] = np.from_dlpack(self.tensors[slot])
            except (TypeError, ValueError, BufferError, RuntimeError):
                self._host_views[slot] = None
        return self._host_views[slot]

    # -- running ---------------------------------------------------------------------------
    def set_inputs(self, *arrays: np.ndarray) -> None:
        if len(arrays) != len(self.plan.inputs):
            raise ValueError(f"call plan: {len(self.plan.inputs)} inputs expected, got {len(arrays)}")
        for slot, a in zip(self.plan.inputs, arrays):
            if self._aliased.get(slot) is a:  # the calls read it in place already
                continue
            s = self.plan.slots[slot]
            a = np.asarray(a)
            if list(a.shape) != s.shape:
                raise ValueError(f"call plan: input {s.name} must be {s.shape}, got {list(a.shape)}")
            view = self._host_view(slot)
            if view is None:
                self.tensors[slot].copyfrom(np.ascontiguousarray(a, dtype=s.dtype))
            else:
                np.copyto(view, a, casting="unsafe")  # as ascontiguousarray(a, dtype) converted it

    def run_range(self, start: int, end: int) -> None:
        for f, args in self._bound[start:end]:
            f(*args)

    def get_outputs(self) -> list[np.ndarray]:
        """Copies: the plan's next run writes over its own memory."""
        out = []
        for slot in self.plan.outputs:
            view = self._host_view(slot)
            out.append(self.tensors[slot].numpy() if view is None else view.copy())
        return out

    def run(self, *arrays: np.ndarray) -> list[np.ndarray]:
        self.set_inputs(*arrays)
        self.run_range(0, len(self._bound))
        return self.get_outputs()

    def call_times(self) -> list[float]:
        """One inference, inputs as last set, call by call: the seconds of each call."""
        out = []
        for f, args in self._bound:
            t = time.perf_counter()
            f(*args)
            out.append(time.perf_counter() - t)
        return out

    def time_call(self, k: int, *, number: int, repeat: int, flush_bytes: int = 0) -> list[float]:
        """Call k alone on its own arguments, as characterization times a candidate
        (TVM's time_evaluator): `repeat` samples, each the mean seconds of `number` calls
        back to back; with `flush_bytes`, that many bytes are written before every
        sample, evicting the private caches as the other calls of a model would."""
        evaluator = self.lib.time_evaluator(self.choice[k], self.device, number=number, repeat=repeat,
                                            cache_flush_bytes=flush_bytes)
        return list(evaluator(*self._bound[k][1]).results)

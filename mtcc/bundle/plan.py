"""The call plan, as a bundle stores it: the ordered PrimFunc calls of a model's lowered
`main`, with every buffer allocated once, so that a runtime can stop between calls
(layer blocks) and send each call to any variant of its task (each variant its own
function in one shared library).

Slots: every tensor the calls touch is a slot -- a model input, a constant (weight),
a view into a storage block, an own buffer, or a reshaped view of another slot.
`Plan` is plain data: JSON for the structure, .npy members (no pickle) for the
weights.  Making a plan is the packer's job (mtcc.packing.plan_builder), running one the
runtime's (mtcc.runtime.executor); both meet here, in the bundle format.
"""
from __future__ import annotations

import json
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


"""Shared memory between the server and its tenants: tensors never travel through pipes.

Per lane, one segment holds
  - a control block (int64 words the server writes and the lane reads at every block
    boundary: no round trip in the common case), and
  - an arena: every model input, then every output, at 64-byte aligned offsets
    computed the same way on both sides from the manifest.
Segments are created by the server (which unlinks them on close; Python's resource
tracker unlinks them if the server dies first) and attached by the tenant.
"""
from __future__ import annotations

from dataclasses import dataclass
from multiprocessing import shared_memory

import numpy as np

ALIGN = 64
# Control words.
YIELD = 0          # server -> lane: stop at the next boundary (someone waits for the cores)
NEIGHBOUR_MILLI = 1  # server -> lane: expected slowdown from what neighbours run, x1000
NEIGHBOURS = 2     # server -> lane: how many other lanes run now
CONTROL_WORDS = 8
CONTROL_BYTES = CONTROL_WORDS * 8


@dataclass
class Field:
    name: str
    shape: tuple
    dtype: str
    offset: int

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


def layout(inputs: list[dict], outputs: list[dict]) -> tuple[list[Field], list[Field], int]:
    """(input fields, output fields, total bytes) after the control block."""
    offset = CONTROL_BYTES

    def place(items):
        nonlocal offset
        fields = []
        for item in items:
            offset = (offset + ALIGN - 1) // ALIGN * ALIGN
            f = Field(item["name"], tuple(int(d) for d in item["shape"]), str(item["dtype"]), offset)
            fields.append(f)
            offset += f.nbytes
        return fields

    ins = place(inputs)
    outs = place(outputs)
    return ins, outs, max(offset, CONTROL_BYTES)


class LaneMemory:
    """One lane's segment, as numpy views: `.control`, `.inputs[name]`, `.outputs[name]`."""

    def __init__(self, inputs: list[dict], outputs: list[dict], name: str | None = None):
        ins, outs, size = layout(inputs, outputs)
        self.owner = name is None
        self.segment = (shared_memory.SharedMemory(create=True, size=size) if self.owner
                        else _attach(name))
        buf = self.segment.buf
        self.control = np.ndarray((CONTROL_WORDS,), np.int64, buf, 0)
        self.inputs = {f.name: np.ndarray(f.shape, f.dtype, buf, f.offset) for f in ins}
        self.outputs = {f.name: np.ndarray(f.shape, f.dtype, buf, f.offset) for f in outs}
        if self.owner:
            self.control[:] = 0

    @property
    def name(self) -> str:
        return self.segment.name

    def close(self) -> None:
        # Views first: a segment with live exports cannot close.
        self.control = self.inputs = self.outputs = None
        try:
            self.segment.close()
        except BufferError:
            pass
        if self.owner:
            try:
                self.segment.unlink()
            except FileNotFoundError:
                pass


def _attach(name: str):
    """Attach without registering with this process's resource tracker: the server owns
    the segment (a tenant that exits must not unlink it)."""
    try:
        return shared_memory.SharedMemory(name=name, track=False)  # Python 3.13+
    except TypeError:
        from multiprocessing import resource_tracker

        segment = shared_memory.SharedMemory(name=name)
        try:
            resource_tracker.unregister(segment._name, "shared_memory")  # noqa: SLF001 - 3.11 has no track=False
        except Exception:  # noqa: BLE001 - best effort: at worst a warning at exit
            pass
        return segment

"""What the runtime knows of a model before running it: its blocks, the variants of
every task with their latency tables, and predictions built from them.

Read from the bundle's manifest, call plan and selector (no library loaded), so the
scheduler in the server process and the tenants share one view.  Every prediction
comes from measured cells; a cell that was not measured is filled by the nearest
measured one, never by assuming linear speed-up:

- more cores than any measured count: the latency at the most cores measured;
- a level that was not measurable at these cores (no free core for the stressor):
  the latency at these cores alone x that level's slowdown at the largest core count
  where it was measured.

The tables were measured where the bundle was packed, at few core counts.  A server
measures every block alone at each of its core counts when it starts and `calibrate`s
its profile with them: from then on a block's prediction at level `none` with the
default variants is what this machine measured, and other variants and levels keep
their tables' ratio to it.  So a block's cores on a 16-core server come from how it
scaled there, not from the 1- and 2-core cells of the packing machine.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path

from ..bundle import container
from ..bundle.container import PLAN_MEMBER, SELECTOR_MEMBER
from ..cells import LEVEL_ORDER, cell_key, parse_cell

LEVELS = LEVEL_ORDER


@dataclass
class Variant:
    """One compiled variant of a task, as the bundle's selector lists it."""
    task: str
    id: str
    function: str
    latency_us: dict          # {"<cores>c/<level>": µs}
    footprint: float | None   # how much this variant slows a memory-bound neighbour (1.0 = not at all)
    latency_error_us: dict = field(default_factory=dict)  # the cells' error bars, where measured

    @classmethod
    def from_selector(cls, task: str, entry: dict) -> "Variant":
        footprint = entry.get("footprint")
        return cls(task, entry["id"], entry["function"], dict(entry.get("latency_us") or {}),
                   float(footprint) if footprint else None, dict(entry.get("latency_error_us") or {}))


@dataclass
class BlockInfo:
    index: int
    start: int                # first call
    end: int                  # one past the last call
    calls: dict[str, int] = field(default_factory=dict)   # task -> calls of it in the block


def predict(table: dict, cores: int, level: str = "none") -> float | None:
    """µs of one call at (cores, level) from a latency table (see the module doc)."""
    if not table:
        return None
    measured = sorted({parse_cell(k)[0] for k in table})
    usable = [c for c in measured if c <= cores] or measured[:1]
    c = usable[-1]
    key = cell_key(c, level)
    if key in table:
        return float(table[key])
    alone = table.get(cell_key(c, "none"))
    if alone is None:
        return None
    # The level's slowdown where it was measured (largest such core count).
    for c2 in reversed(measured):
        if cell_key(c2, level) in table and cell_key(c2, "none") in table and table[cell_key(c2, "none")]:
            return float(alone) * float(table[cell_key(c2, level)]) / float(table[cell_key(c2, "none")])
    return float(alone)


class ModelProfile:
    """A model as the scheduler and the selector see it."""

    def __init__(self, manifest: dict, plan: dict, selector: dict, path: str | None = None):
        self.path = path
        self.name = manifest["model"]["name"]
        self.inputs = list(manifest["inputs"])
        self.outputs = list(manifest["outputs"])
        self.call_tasks = [c["task"] for c in plan["calls"]]
        self.variants: dict[str, list[Variant]] = {}
        self.default: dict[str, str] = {}
        for t in selector["tasks"]:
            self.default[t["task"]] = t["default"]
            self.variants[t["task"]] = [Variant.from_selector(t["task"], v) for v in t["variants"]]
        self.blocks = []
        for b in manifest["blocks"]:
            block = BlockInfo(int(b.get("index", len(self.blocks))), int(b["start"]), int(b["end"]))
            for task in self.call_tasks[block.start:block.end]:
                block.calls[task] = block.calls.get(task, 0) + 1
            self.blocks.append(block)
        if not self.blocks:  # a bundle without blocks runs as one
            self.blocks = [BlockInfo(0, 0, len(self.call_tasks), {})]
            for task in self.call_tasks:
                self.blocks[0].calls[task] = self.blocks[0].calls.get(task, 0) + 1
        self._call_us: dict = {}  # predictions are asked for at every dispatch: computed once
        self._tables: dict = {}
        self._factor: dict = {}   # (block, cores) -> measured here / table (calibrate)
        self.measured_block_us: dict[int, list[float]] = {}
        self._block_ends = [b.end for b in self.blocks]
        cells = {k for vs in self.variants.values() for v in vs for k in v.latency_us}
        self.core_counts = sorted({parse_cell(k)[0] for k in cells}) or [1]

    @classmethod
    def from_bundle(cls, path) -> "ModelProfile":
        """Verified, but without the CPU check: the scheduler may plan for any bundle."""
        bundle = container.open_bundle(path, check_environment=False)
        return cls(bundle.manifest, bundle.json(PLAN_MEMBER), bundle.json(SELECTOR_MEMBER), str(Path(path)))

    def block_of(self, call: int) -> int:
        """Index of the block holding call `call` (the last block past the end)."""
        return min(bisect.bisect_right(self._block_ends, call), len(self.blocks) - 1)

    # -- predictions -----------------------------------------------------------------
    def variant(self, task: str, vid: str) -> Variant:
        return next(v for v in self.variants[task] if v.id == vid)

    def call_error_us(self, task: str, vid: str, cores: int, level: str = "none") -> float:
        """The error bar of call_us (0 where the bundle has none): the cell's own, filled in
        like a latency (predict) where that cell was not measured."""
        errors = self.variant(task, vid).latency_error_us
        return float(predict(errors, cores, level) or 0.0) if errors else 0.0

    def call_us(self, task: str, vid: str, cores: int, level: str = "none") -> float:
        key = (task, vid, cores, level)
        value = self._call_us.get(key)
        if value is None:
            value = predict(self.variant(task, vid).latency_us, cores, level)
            if value is None:  # an unmeasured task: its default's, else nothing to count
                value = predict(self.variant(task, self.default[task]).latency_us, cores, level)
            value = self._call_us[key] = value or 0.0
        return value

    def calibrate(self, block_us_by_cores: dict) -> None:
        """Install this machine's measured µs of every block ({cores: [µs of block k]},
        default variants, alone): see the module doc."""
        factor = {}
        for cores, row in block_us_by_cores.items():
            if len(row) != len(self.blocks):
                raise ValueError(f"{self.name}: {len(row)} block times for {len(self.blocks)} blocks")
            for block, us in enumerate(row):
                table = self._table_block_us(block, int(cores), "none", None)
                factor[(block, int(cores))] = float(us) / table if table > 0 and us > 0 else 1.0
        self._factor = factor
        self.measured_block_us = {int(c): [round(float(us), 2) for us in row] for c, row in sorted(block_us_by_cores.items())}
        self._tables.clear()

    def factor(self, block: int, cores: int) -> float:
        """Measured / table µs of a block at `cores` (the most measured cores up to it)."""
        if not self._factor:
            return 1.0
        counts = [c for c in self.measured_block_us if c <= cores] or sorted(self.measured_block_us)[:1]
        return self._factor.get((block, max(counts)), 1.0)

    def _table_block_us(self, block: int, cores: int, level: str, choice: dict | None) -> float:
        b = self.blocks[block]
        return sum(n * self.call_us(task, (choice or {}).get(task, self.default[task]), cores, level)
                   for task, n in b.calls.items())

    def block_us(self, block: int, cores: int, level: str = "none", choice: dict | None = None) -> float:
        """Predicted µs of a block for a variant choice {task: id} (default variants)."""
        return self.factor(block, cores) * self._table_block_us(block, cores, level, choice)

    def _memo(self, key, compute):
        """compute(), kept in the tables for the default variants (key None: another choice,
        computed each time); calibrate() forgets them."""
        if key is None:
            return compute()
        if key not in self._tables:
            self._tables[key] = compute()
        return self._tables[key]

    def model_us(self, cores: int, level: str = "none", choice: dict | None = None) -> float:
        # default variants: asked for every request by the model-wise policies
        return self._memo(("model", cores, level) if choice is None else None,
                          lambda: sum(self.block_us(k, cores, level, choice) for k in range(len(self.blocks))))

    def block_slowdowns(self, block: int, cores: int, choice: dict | None = None) -> dict[str, float]:
        """Predicted slowdown of a block under each level (its tables: "<c>c/<level>" over
        "<c>c/none"); levels no table of the block measured are left out."""
        def compute() -> dict[str, float]:
            alone = self.block_us(block, cores, "none", choice)
            out = {"none": 1.0}
            measured = {parse_cell(k)[1] for task in self.blocks[block].calls
                        for v in self.variants[task] for k in v.latency_us}
            for level in LEVELS[1:]:
                if level in measured and alone:
                    out[level] = self.block_us(block, cores, level, choice) / alone
            return out
        # default variants: asked at every block by the simulator
        return self._memo(("slowdowns", block, cores) if choice is None else None, compute)

    def cost_tables(self, granularity: str, total_cores: int) -> tuple[dict, dict]:
        """({c: [µs of item k on c cores]}, {c: [µs of items k.. to the end]}) for c = 1 ..
        total_cores, items being blocks ("block") or calls ("call", default variants):
        what the policies plan with, computed once per profile."""
        key = (granularity, total_cores)
        if key not in self._tables:
            if granularity == "block":
                count, cost = len(self.blocks), self.block_us
            else:
                tasks = self.call_tasks
                count = len(tasks)

                def cost(k, c):
                    return self.factor(self.block_of(k), c) * self.call_us(tasks[k], self.default[tasks[k]], c)
            costs = {c: [cost(k, c) for k in range(count)] for c in range(1, total_cores + 1)}
            suffix = {}
            for c, row in costs.items():
                acc, out = 0.0, [0.0] * count
                for k in range(count - 1, -1, -1):
                    acc += row[k]
                    out[k] = acc
                suffix[c] = out
            self._tables[key] = (costs, suffix)
        return self._tables[key]

    def block_footprint(self, block: int, choice: dict | None = None) -> float:
        """The pressure a block puts on neighbours: its variants' footprints weighted by
        their share of the block's time alone on one core."""
        def compute() -> float:
            total, weighted = 0.0, 0.0
            for task, n in self.blocks[block].calls.items():
                v = self.variant(task, (choice or {}).get(task, self.default[task]))
                us = n * (self.call_us(task, v.id, 1) or 1.0)
                total += us
                weighted += us * (v.footprint or 1.0)
            return weighted / total if total else 1.0
        return self._memo(("footprint", block) if choice is None else None, compute)

    def scales(self, block: int, cores: int, gain: float = 0.9) -> bool:
        """Whether `cores` make the block at least (1 - gain) faster than one core does;
        a block that does not scale is never given more than one core."""
        return self.block_us(block, cores) <= gain * self.block_us(block, 1)

"""`mtcc tune MODEL --time-budget MINUTES`: a model's whole search in one command and a
fixed wall time, by the same steps for any model (no task named by hand):

1. a first round: one small batch (FIRST_BATCH) for every task without records, timed
   on the target's cores, so every task has records early;
2. refine rounds on the target's cores until SEARCH_SHARE of the budget, then refine
   rounds timed on one thread until SEARCH_SHARE + REFINE_SHARE: each round gives the
   REFINE_TASKS tasks with the most time to win by the records so far (tune.refine)
   their own trials, in batches of up to 32;
3. the rest of the budget is characterization's (the CLI runs it after this, with the
   candidates trimmed to fit: variants.characterize.trim_to_budget).

Why rounds and not MetaSchedule's own scheduler after the first round: it keeps the
batch size of the first round, and a batch's evolutionary search costs the same
whatever its size (about 28 s on inception_v1's convolutions here once the cost model
is trained), so batches of 8 cost 3.5 s a trial where a refine round's 24 cost 1.2-1.7 s.

Not yet enough for a big model: on inception_v1 (84 tasks, about 60 convolutions) an hour
of it on 2 vCPUs leaves most convolutions with their first batch, and built to 1.3-1.4x
the time of the committed schedules' (docs/results.md, "A one-command tune within a time
budget"): rounds of eight tasks do not reach them all.

Each step is a run of tune.driver.tune with a deadline, listed in tune.json with its
own command line, so a folder made this way says how.  The evolutionary search draws
RECIPE_POPULATION schedules per batch instead of MetaSchedule's 512 (driver.DEFAULT_POPULATION).

The rounds share their cost model (CostModels): MetaSchedule makes a fresh XGBoost model
for every tune_tasks call, which ranks candidates at random until it has 100 samples and
then knows only that round's trials, so a refine round's batches of 24 were picked by a
model that had seen a few hundred trials at most, none of the earlier rounds'.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..errors import BadInput
from ..progress import Progress as TextProgress, say
from . import driver

# Shares of the budget.  On inception_v1 (84 tasks, 2 vCPUs) characterization took 23
# minutes for 487 candidates; the first round (a batch for every task, which MetaSchedule
# lets nothing interrupt) 15 minutes.
SEARCH_SHARE = 0.50
REFINE_SHARE = 0.20
# Candidates per task in the first round: a batch's search costs 7-15 s here before the
# cost model is trained, whatever its size, and a candidate ~1 s more.
FIRST_BATCH = 8
REFINE_TASKS = 8
RECIPE_POPULATION = 256
# A refine round is started only while MIN_ROUND_S is left before its step's deadline (or,
# for short budgets, a tenth of the time from the start to that deadline): a round
# re-imports the model and makes its tasks' search contexts before its first batch.
MIN_ROUND_S = 60.0


class CostModels:
    """One XGBoost cost model per thread count the candidates are timed on (None: the
    target's cores), carried from round to round: a later round's search is ranked by
    everything the recipe measured before it on those threads.  Kept apart by threads
    because MetaSchedule normalizes each workload's costs by its fastest record: a
    1-thread time beside 2-thread ones would read as a slow schedule."""

    def __init__(self):
        self._models: dict = {}

    def for_threads(self, threads: int | None):
        if threads not in self._models:
            import tvm.s_tir.meta_schedule as ms

            self._models[threads] = ms.cost_model.XGBModel()
        return self._models[threads]


@dataclass
class RecipeResult:
    """The runs the recipe made; `last` is the search's final state (its task table)."""

    budget_s: float
    steps: list[dict] = field(default_factory=list)
    last: driver.TuneResult | None = None
    trials_before: int = 0   # the folder's records before the first step

    def as_dict(self) -> dict:
        """The last step's summary (its task table, the folder's total) with the counts
        and the time of the whole recipe, not of its last step; each step's own in
        `time_budget.steps`."""
        out = self.last.as_dict() if self.last is not None else {}
        new = sum(s["trials_new"] for s in self.steps)
        wall = sum(s["wall_s"] for s in self.steps)
        out.update(trials_requested=None, trials_existing=self.trials_before, trials_new=new, wall_s=round(wall, 2),
                   seconds_per_trial=round(wall / new, 3) if new else None)
        out.pop("refined", None)  # the last step's pick: each step lists its own
        out["time_budget"] = {"budget_s": round(self.budget_s, 1), "steps": self.steps, "search_s": round(wall, 1)}
        return out


def least_round_s(to_deadline_s: float) -> float:
    """The least time left before a step's deadline for which a refine round starts, for a
    step whose deadline is `to_deadline_s` after the recipe's start (MIN_ROUND_S)."""
    return min(MIN_ROUND_S, to_deadline_s / 10)


def step_deadlines(start: float, budget_s: float) -> tuple[float, float]:
    """(end of the main search, end of the refine rounds) for a budget started at `start`."""
    return start + SEARCH_SHARE * budget_s, start + (SEARCH_SHARE + REFINE_SHARE) * budget_s


def search_within(model_path, *, budget_s: float, target, out, command: str | None,
                  notes: TextProgress = None, listeners=(), **options) -> RecipeResult:
    """Steps 1 and 2 of the recipe into `out` within their shares of `budget_s` seconds
    from now.  `options`: the rest of driver.tune's import options (layout, input_shapes,
    fold_batch_norm, rpc, seed)."""
    start = time.monotonic()
    search_end, refine_end = step_deadlines(start, budget_s)
    result = RecipeResult(budget_s)
    cost_models = CostModels()

    def run(label: str, **kwargs) -> driver.TuneResult:
        began = time.monotonic()
        say(notes, f"{label} (until {max(0.0, kwargs['deadline'] - start) / 60:.1f} min of the "
                   f"{budget_s / 60:g}-minute budget)")
        step = driver.tune(model_path, target=target, out=out, listeners=listeners,
                           command=f"{command} [{label}]" if command else None,
                           population=RECIPE_POPULATION,
                           cost_model=cost_models.for_threads(kwargs.get("measure_threads")), **options, **kwargs)
        result.steps.append({"step": label, "trials_new": step.trials_new, "wall_s": round(time.monotonic() - began, 1),
                             "stopped_at_deadline": step.stopped_at_deadline,
                             **({"refined": step.refined} if step.refined is not None else {})})
        if result.last is None:
            result.trials_before = step.trials_existing
        result.last = step
        say(notes, f"{label}: {step.trials_new} trials in {time.monotonic() - began:.0f} s"
                   + (" (stopped at its deadline)" if step.stopped_at_deadline else ""))
        return step

    run("first round, all cores", first_round=FIRST_BATCH, deadline=search_end)
    # (each driver.tune puts TVM_NUM_THREADS back as it found it: the 1-thread rounds leave
    # nothing to characterization, next in this process)
    for label, threads, deadline in (("all cores", None, search_end), ("1 thread", 1, refine_end)):
        min_round = least_round_s(deadline - start)
        round_no = 0
        while deadline - time.monotonic() >= min_round:
            round_no += 1
            try:
                step = run(f"refine round {round_no}, {label}", refine=REFINE_TASKS, measure_threads=threads,
                           deadline=deadline)
            except BadInput as e:  # no task is behind its kind any more
                say(notes, f"refine round {round_no}, {label}: nothing to refine ({e})")
                break
            if step.trials_new == 0:
                break
    return result

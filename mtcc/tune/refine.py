"""Which tasks a second search should go back to (`mtcc tune --resume --refine K`, and
with `--cold-caches`: tasks_to_search_cold).

MetaSchedule's gradient task scheduler shares one budget across a model's tasks by
their expected gain; with ~1000 trials for 70 tasks (inception_v1) the small ones end
with 5-15 trials each, at half the GFLOP/s of their neighbours, and together they are
a tenth of the model.  A refine run gives the K tasks with the most time left to win
their own budget.  The estimate reads only the task summary of the records (what
tune.json lists), so it is the same rule for any model:

    time left to win = calls x best time x (1 - GFLOP/s / reference GFLOP/s)

where the reference is the 90th percentile of the GFLOP/s of the model's tasks of the
same kind (conv2d, matmul, ...): what its best-tuned code of that kind reaches on this
machine.  A kind with one task has nothing to compare with (a softmax at 1.5 GFLOP/s
is not behind a matmul at 110), and tasks without FLOPs (layout transforms) are never
picked.
"""
from __future__ import annotations

import statistics

REFERENCE_PERCENTILE = 90
# Trials a refine run adds per picked task when --trials is not given: on inception_v1,
# 36 more each lifted 20 small convolutions from 30-80 to 60-110 GFLOP/s at one thread.
TRIALS_PER_TASK = 48


def reference_gflops(rates: list[float]) -> float:
    """The REFERENCE_PERCENTILE of `rates` (one rate: itself)."""
    rates = sorted(rates)
    if len(rates) < 2:
        return rates[0]
    return statistics.quantiles(rates, n=100, method="inclusive")[REFERENCE_PERCENTILE - 1]


def time_to_win(task: dict, reference: float) -> float:
    """µs per inference the task would save at `reference` GFLOP/s (0 if it is there)."""
    gflops, best = task.get("gflops"), task.get("best_us")
    if not gflops or not best or not reference:
        return 0.0
    return task.get("count", 1) * best * max(0.0, 1.0 - gflops / reference)


def references(tasks: list[dict]) -> dict:
    """{kind: reference GFLOP/s} over the tasks that have a GFLOP/s figure."""
    by_kind: dict = {}
    for t in tasks:
        if t.get("gflops"):
            by_kind.setdefault(t.get("kind"), []).append(float(t["gflops"]))
    return {kind: reference_gflops(rates) for kind, rates in by_kind.items()}


def tasks_to_refine(tasks: list[dict], count: int) -> list[dict]:
    """The `count` tasks with the most time to win, most first (ties by name); each
    a task summary row {"name", "kind", "count", "trials", "best_us", "gflops"}."""
    ref = references(tasks)
    gain = {t["name"]: time_to_win(t, ref.get(t.get("kind"), 0.0)) for t in tasks}
    ranked = sorted((t for t in tasks if gain[t["name"]] > 0), key=lambda t: (-gain[t["name"]], t["name"]))
    return ranked[:count]


# `--cold-caches --refine K`: the tasks whose best code loses most when its operands come
# from memory, as inside a model whose other calls passed through the caches.  Timed alone,
# hot and with every operand but the input flushed (what a cold search times), resnet50's
# best convolutions read 1.40-1.52x slower flushed where they ran 1.22-1.33x slower in the
# model than in their tables, and 1.01-1.05x where they ran within 5 % of them (2026-11-27).
COLD_MIN_RATIO = 1.10


def cold_time_to_win(task: dict) -> float:
    """µs per inference the task loses to cold operands: calls x (flushed - hot) of its
    best record, where flushed/hot reaches COLD_MIN_RATIO (0 otherwise, or unmeasured)."""
    hot, flushed = task.get("hot_us"), task.get("flushed_us")
    if not hot or not flushed or flushed < COLD_MIN_RATIO * hot:
        return 0.0
    return task.get("count", 1) * (flushed - hot)


def tasks_to_search_cold(tasks: list[dict], count: int) -> list[dict]:
    """The `count` tasks with the most time lost to cold operands, most first (ties by
    name); rows as tasks_to_refine's, with "hot_us" and "flushed_us" measured."""
    ranked = sorted((t for t in tasks if cold_time_to_win(t) > 0), key=lambda t: (-cold_time_to_win(t), t["name"]))
    return ranked[:count]


def refine_budget(picked: list[dict], trials: int | None) -> int:
    """--trials for the picked tasks: as given, else what they hold plus TRIALS_PER_TASK each."""
    if trials is not None:
        return trials
    return sum(int(t.get("trials") or 0) for t in picked) + TRIALS_PER_TASK * len(picked)

"""Characterization and the Pareto filter: from one tuning database to a few variants per task.

The paper's second finding (docs/method.md): among the candidates the tuner already
measured, some lose little alone and much less under pressure from neighbours.
This package measures them and keeps the ones worth keeping:

    char = characterize("model.onnx", "schedules/model/llvm-x86-64-v4")  # -> characterization.json
    var = select_variants(char, out="schedules/model/llvm-x86-64-v4")    # -> variants.json
    ev = evidence("schedules/model/llvm-x86-64-v4")                      # the numbers for the note

    cells         names of latency-table cells ("1c/none", "2c/high")
    worker        the measuring worker process (build a record, time it, loop it)
    characterize  which cells to measure, a measuring session, the stage
    store         characterization.json: load, carry over, atomic save
    pareto        the non-dominated filter (any objectives)
    confirm       every claim a variant beats its default, timed again as a pair in turns
    select        characterization.json -> variants.json
    evidence      what the variants are worth on paper (per-kernel sums)

Characterization (`characterize`, module characterize)
---------------------------------
For every task of the model found in the database, the `top_k` fastest *distinct*
valid records (distinct trace JSON; failed records skipped) are each applied to
their workload and built as a standalone function, then timed with TVM's
`time_evaluator` on random arguments at every core count x interference level:

- the candidate runs in a worker process pinned to the first n cores with
  TVM_NUM_THREADS=n (one warm worker per core count: TVM reads the thread count
  once per process), the level's calibrated stressor on the remaining cores;
- on a machine with C cores nothing can run beside a candidate that holds all C,
  so the cells (C cores, level != none) are recorded as not measurable, not
  invented;
- levels take turns round by round for each candidate (the stressors stay
  started and are SIGSTOPped between rounds), so each sees the same drift of a
  shared machine; a cell's value is the lower quartile of its samples (each
  sample the mean of calls filling >= `min_repeat_ms`), for the reason given in
  mtcc.interference.probes.robust_time;
- footprint: the calibration's memory probe runs on the second core, alone and
  beside the candidate looping on the first, in interleaved pairs; footprint is
  the median ratio (1.0 = harmless neighbour).

Tasks whose best tuned time is under `min_task_us` are not characterized (their
variant choice cannot matter); the result says so.  Results are written after
every candidate, atomically (temp file + os.replace); a rerun measures only the
missing (candidate, cores, level) cells.  When the calibration's levels change,
the pressure cells are dropped and measured again; "none" cells and footprints
are kept.

The Pareto filter (`select_variants`, module select)
-------------------------------------
Per task, over candidates with a complete set of objectives (all lower is better):

- latency_alone:    latency at P cores, level none;
- latency_pressure: latency at P cores, at the strongest level measured
  ("high" where the calibration has it);
- footprint:        the probe's slowdown beside the candidate (below 1 reads as 1,
  rounded to 0.01: noise must not keep a variant);
- latency_alone_max_cores: latency at the machine's C cores, level none, when
  C != P (on a 2-core machine P = 1 and C = 2).

P is the largest core count at which the strongest level is measurable, so the
first two compare the same core count and their difference is interference
alone, not thread scaling.  The fourth objective keeps the best variant for a
tenant holding the whole machine (pareto_front always keeps the best on every
objective).  At most `max_variants` (default 5, as in the paper) per task.
`best_alone_differs_under_pressure` compares the first two objectives.

Then no switching for nothing (`worth_keeping`): the task's default (the tuner's best,
rank 0) stays, and a front member is kept only when it beats every variant kept before
it in some latency cell by more than the two cells' errors (half the interquartile range
of the cell's samples, at least MIN_RELATIVE_ERROR), or in footprint by more than theirs.
Each variant's cells carry their errors (`latency_error_us`).
"""
from ..cells import LEVEL_ORDER, cell_key, default_core_counts, parse_cell
from .characterize import characterize, characterize_and_select
from .evidence import evidence
from .select import VARIANTS, default_records, load_variants, select_variants
from .store import CHARACTERIZATION, FORMAT, characterization_caches

__all__ = ["LEVEL_ORDER", "cell_key", "parse_cell", "default_core_counts", "characterize",
           "characterize_and_select", "evidence", "select_variants", "load_variants", "default_records", "VARIANTS",
           "CHARACTERIZATION", "FORMAT", "characterization_caches"]

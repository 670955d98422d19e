"""`mtcc bench BUNDLE...`: requests served within their latency targets, for every mtcc
policy against ONNX Runtime and OpenVINO, in one run; and the same policies on many
simulated cores.

The method (docs/results.md shows runs on 2 and 16 cores):

- Load: seeded Poisson arrivals, the same request rate for every model of the mix.
- Targets: X x a model's isolated latency on B cores (mtcc's, measured at the start by
  the server itself), the same absolute ms for every system; a grid of (X, B).
- Figure of merit: the highest total rate at which every model has >= 99 % of its
  requests within target (`search.RateSearch`), warm-up excluded.  One trial of every
  system in turn, so a drift of the shared machine hits all alike.
- At one fixed rate (`rate`, default model-fcfs's best at the headline target): p50 /
  p99 / mean per model, the latency CDFs and the core-grant timeline.
- The host's vCPU sharing is read before the run, after every round and at the end, and
  written beside the results.
- `simulate`: the runtime's own policy objects on 16 / 32 / 64 simulated cores
  (`simulate.Simulator`), its error first measured against the real runs.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BadInput
from ..interference import machine
from ..progress import Progress, say
from ..runtime.heap import freeze_startup_heap
from ..runtime.policies import POLICIES
from ..runtime.profile import ModelProfile
from .baselines import random_feeds
from .load import drive, poisson_arrivals, summarize
from .search import REQUIRED_SHARE, RateSearch
from .simulate import DEFAULT_UNIT_OVERHEAD_US

# Presets of the example models.  The medium mix puts a 0.4 ms model beside two 6-40 ms
# ones: a short request behind a long one is what block boundaries are for.
MIXES = {"light": ("squeezenet", "transformer"),
         "medium": ("squeezenet", "inception_v1", "transformer"),
         "heavy": ("resnet50", "inception_v1")}
MTCC_POLICIES = ("block-adaptive", "block", "layer", "model-edf", "model-fcfs")
BASELINE_LAYOUTS = {"onnxruntime": (("onnxruntime", "pinned"), ("onnxruntime", "shared")),
                    "openvino": (("openvino", "pinned"), ("openvino", "shared"), ("openvino-default", "pinned"))}
HEADLINE = "block-adaptive"
REFERENCE = "model-fcfs"
WARMUP_SHARE = 0.1          # the first 10 % of every trial (at most WARMUP_MAX_S) is not counted
WARMUP_MAX_S = 1.0
SIMULATED_REQUESTS = 1500   # per simulated trial: 15 misses make the 99 % line


@dataclass(frozen=True)
class Target:
    """X x the isolated latency on `base` cores ("all" or a count)."""
    factor: float
    base: str = "all"

    @property
    def label(self) -> str:
        return f"{self.factor:g}x@{self.base if self.base == 'all' else self.base + 'c'}"

    def ms(self, isolated_by_cores: dict[int, float], all_cores: int) -> float:
        cores = all_cores if self.base == "all" else int(self.base)
        if cores not in isolated_by_cores:
            raise BadInput(f"--qos {self.label}: the isolated latency on {cores} cores was not measured "
                           f"(measured: {sorted(isolated_by_cores)})")
        return self.factor * isolated_by_cores[cores]


def parse_target(text: str) -> Target:
    """"2" -> 2x the all-core latency; "4@1" or "4@1c" -> 4x the 1-core latency; a
    Target's label ("2x@all") gives the same Target back."""
    factor, _, base = str(text).partition("@")
    factor = factor.removesuffix("x")  # a label ("2x@all") reads back as itself
    base = base.rstrip("c") or "all"
    try:
        value = float(factor)
        if value <= 0 or (base != "all" and int(base) < 1):
            raise ValueError
    except ValueError:
        raise BadInput(f"--qos {text!r}: expected X or X@B (X > 0 times the isolated latency on B cores, "
                       "e.g. 2, 1.5@1, 4@all)") from None
    return Target(value, base)


DEFAULT_GRID = tuple(Target(x, b) for b in ("all", "1") for x in (1.5, 2.0, 4.0))


@dataclass(frozen=True)
class System:
    kind: str                  # "mtcc" | "onnxruntime" | "openvino" | "openvino-default"
    option: str                # the policy (mtcc) or the layout (pinned | shared)

    @property
    def label(self) -> str:
        return f"mtcc {self.option}" if self.kind == "mtcc" else f"{self.kind}/{self.option}"

    def row(self) -> dict:
        return ({"system": "mtcc", "policy": self.option} if self.kind == "mtcc"
                else {"system": self.kind, "layout": self.option})


def systems_for(policies, baselines) -> list[System]:
    out = [System("mtcc", p) for p in policies]
    for name in baselines:
        out += [System(kind, layout) for kind, layout in BASELINE_LAYOUTS[name]]
    return out


def _open(system: System, bundles: dict, onnx: dict, cores, qos_ms: dict | None, lanes: int | None = None):
    if system.kind == "mtcc":
        import mtcc

        return mtcc.Server({n: str(p) for n, p in bundles.items()}, cores=cores, policy=system.option, qos_ms=qos_ms,
                           lanes=lanes)
    from .baseline_server import BaselineServer

    return BaselineServer({n: str(p) for n, p in onnx.items()}, system=system.kind, layout=system.option, cores=cores)


def trial_length(rate: float, duration_s: float, min_requests: int) -> float:
    """Seconds of one trial: `duration_s`, longer at low rates so that at least
    `min_requests` arrive (a 99 % figure from 30 requests means nothing)."""
    return max(duration_s, min_requests / rate)


def trial(server, models: list[str], rate: float, duration_s: float, seed: int, feeds: dict,
          qos_ms: dict) -> dict:
    """One run at `rate` requests/s (all models together, equal shares); the share
    within target is the worst model's, over requests after the warm-up."""
    per_model = {m: rate / len(models) for m in models}
    arrivals = poisson_arrivals(per_model, duration_s, seed)
    before = _counters(server)
    run = drive(server, arrivals, feeds)
    after = _counters(server)
    warmup = min(WARMUP_MAX_S, WARMUP_SHARE * duration_s)
    counted = [r for r in run["requests"] if r["arrival_s"] >= warmup]
    per = summarize(counted, qos_ms)
    share = min((per[m]["within_qos"] for m in models if m in per), default=0.0)
    units = after[0] - before[0]
    return {"rate": rate, "share": share, "requests": len(counted), "models": per, "units": units,
            "conflict_rate": round((after[1] - before[1]) / units, 4) if units else None,
            "all_requests": run["requests"]}


def trial_by_model(rate: float, per_model: dict) -> dict:
    """One trial's rate and, per model, its share within target and p99 (ms)."""
    return {"rate": rate, "models": {n: {"within_qos": v["within_qos"], "p99_ms": v["p99_ms"]}
                                     for n, v in per_model.items()}}


def trial_models_text(per_model: dict) -> str:
    """'squeezenet 100 %, transformer 71 % (p99 4.2 ms)': the p99 only where a model missed."""
    parts = []
    for n, v in per_model.items():
        share = v["within_qos"]
        text = f"{n} {100 * share:.0f} %" if share is not None else f"{n} -"
        if share is not None and share < REQUIRED_SHARE and v["p99_ms"] is not None:
            text += f" (p99 {v['p99_ms']:g} ms)"
        parts.append(text)
    return ", ".join(parts)


def _counters(server) -> tuple[int, int, int]:
    """(units, conflicts, core events so far) of an mtcc server; zeros for a baseline."""
    models = getattr(server, "models", None)
    allocator = getattr(server, "allocator", None)
    if allocator is None or not isinstance(models, dict):
        return 0, 0, 0
    return (sum(m.units for m in models.values()), sum(m.conflicts for m in models.values()), allocator.events)


def _timeline(server, since: int) -> list:
    """The core grants of one trial, in seconds from its first grant."""
    entries = server.allocator.since(since)
    start = entries[0][0] if entries else 0.0
    return [(round(t - start, 6), what, str(holder), list(c)) for t, what, holder, c in entries]


@dataclass
class _Measured:
    """What the servers measured, filled as it is measured: a Ctrl-C keeps what came before."""
    searches: dict           # (target, system) -> [RateSearch] (one per repeat)
    by_model: dict           # (target, system) -> every trial's models: which missed, by how much
    fixed: dict = field(default_factory=dict)  # system -> the fixed-rate trial
    fixed_rate: float | None = None
    fixed_why: str | None = None               # the rule that chose fixed_rate
    phase: str = "the rate searches"           # what runs now (an interruption names it)
    interrupted: str | None = None


def bench_mix(bundles: dict[str, Path], onnx: dict[str, Path], *, systems: list[System],
              targets: list[Target], headline: Target, duration_s: float = 8.0, seed: int = 0,
              rate: float | None = None, repeats: int = 1, simulate: tuple[int, ...] = (),
              max_trials: int = 10, min_requests: int = 200, lanes: int | None = None,
              progress: Progress = None) -> dict:
    """The whole benchmark; returns the report (see `mtcc bench --json`)."""
    import os

    cores = sorted(os.sched_getaffinity(0))
    models = list(bundles)
    vcpu = {"before": machine.vcpu_sharing().get("state"), "during": [], "after": None}
    say(progress, f"vCPU sharing before: {vcpu['before']}")
    profiles = {n: ModelProfile.from_bundle(p) for n, p in bundles.items()}
    feeds = {n: random_feeds(profiles[n].inputs) for n in models}
    trials = dict(feeds=feeds, duration_s=duration_s, min_requests=min_requests, seed=seed, progress=progress)

    say(progress, f"starting {len(systems)} systems on cores {cores} (mtcc measures each model alone first)")
    servers: dict[str, object] = {}
    try:
        for system in systems:
            servers[system.label] = _open(system, bundles, onnx, cores, None, lanes)
            say(progress, f"  {system.label}: ready")
        first = _first_mtcc(servers, systems)
        say(progress, "numerics: one request per model and system against ONNX Runtime in this process")
        errors = max_errors(servers, onnx, feeds)
        # The servers, tables and feeds live to the end of the run: out of the collector's
        # full passes, which took 10-14 ms here mid-trial (runtime/heap.py).
        freeze_startup_heap()
        isolated = {n: dict(m.isolated_by_cores) for n, m in first.models.items()}
        qos = {t.label: {n: round(t.ms(isolated[n], len(cores)), 4) for n in models} for t in targets}
        capacity = len(cores) / statistics.fmean(isolated[n][1] / 1e3 for n in models)
        measured = _Measured(searches={(t.label, sy.label): [] for t in targets for sy in systems},
                             by_model={(t.label, sy.label): [] for t in targets for sy in systems})
        try:  # Ctrl-C stops the measuring; the report keeps what was measured until then
            _search_rates(servers, systems, targets, models, qos, capacity, measured, vcpu,
                          repeats=repeats, max_trials=max_trials, **trials)
            measured.phase = "the fixed-rate run"
            best = {t.label: {sy.label: [s.best for s in measured.searches[(t.label, sy.label)]] for sy in systems}
                    for t in targets}
            measured.fixed_rate, measured.fixed_why = ((rate, "--rate") if rate
                                                       else fixed_rate_for(best, targets, headline, capacity))
            _run_fixed_rate(servers, systems, models, qos[headline.label], headline, measured, **trials)
        except KeyboardInterrupt:
            measured.interrupted = measured.phase
            say(progress, f"interrupted during {measured.phase}: reporting what was measured until then")
        unit_overhead_us = _unit_overhead_us(servers, systems)
    finally:
        for server in servers.values():
            server.close()
    vcpu["after"] = machine.vcpu_sharing().get("state")
    say(progress, f"vCPU sharing after: {vcpu['after']}")

    # The first mtcc server's models (closed, their measurements kept): profiles calibrated
    # to this machine's block times at every core count, what the policies planned with
    # and where the simulator starts.
    report = _report(cores, vcpu, models, bundles, first, isolated, qos, errors, measured, systems, targets,
                     headline, duration_s=duration_s, seed=seed, repeats=repeats, min_requests=min_requests)
    if not measured.interrupted and simulate:
        profiles = {n: m.profile for n, m in first.models.items()}
        scales = {n: m.scale for n, m in first.models.items()}  # measured / calibrated tables
        # what a unit on an idle lane costs beyond the back-to-back tables, per model
        cold_us = {n: max(0.0, m.after_pause_ms - m.isolated_ms) * 1e3 for n, m in first.models.items()}
        report["config"]["simulator_unit_overhead_us"] = round(statistics.median(unit_overhead_us), 1)
        report["config"]["simulator_unit_overhead_quantiles_us"] = unit_overhead_us
        report["config"]["simulator_cold_us"] = {n: round(v, 1) for n, v in cold_us.items()}
        report["simulated"] = simulate_many(profiles, scales, simulate, [s.option for s in systems if s.kind == "mtcc"],
                                            headline, duration_s, seed, report, progress, unit_overhead_us, lanes,
                                            cold_us)
    return report


def _search_rates(servers: dict, systems: list[System], targets: list[Target], models: list[str], qos: dict,
                  capacity: float, measured: _Measured, vcpu: dict, *, repeats: int, max_trials: int, feeds: dict,
                  duration_s: float, min_requests: int, seed: int, progress: Progress) -> None:
    """Every (target, system)'s highest rate within target: one trial of each in turn per
    round (a drift of the shared machine hits all alike), the vCPU sharing read after each."""
    for rep in range(repeats):
        active = {}
        for t in targets:
            for system in systems:
                s = RateSearch(start=round(0.25 * capacity, 2), max_trials=max_trials)
                measured.searches[(t.label, system.label)].append(s)
                active[(t.label, system.label)] = (t, system, s)
        round_no = 0
        while active:
            round_no += 1
            for key, (t, system, s) in list(active.items()):
                server = servers[system.label]
                if hasattr(server, "set_qos"):
                    server.set_qos(qos[t.label])
                r = s.next_rate()
                out = trial(server, models, r, trial_length(r, duration_s, min_requests),
                            seed + 1000 * rep + round_no, feeds, qos[t.label])
                s.record(r, out["share"])
                measured.by_model[key].append(trial_by_model(r, out["models"]))
                say(progress, f"  [{t.label}] {system.label:24s} {r:8.2f} req/s: {100 * out['share']:5.1f} % "
                              f"within target ({out['requests']} requests; {trial_models_text(out['models'])})")
                if s.done:
                    del active[key]
            state = machine.vcpu_sharing().get("state")
            vcpu["during"].append(state)
            say(progress, f"round {round_no} done; vCPU sharing: {state}")


def _run_fixed_rate(servers: dict, systems: list[System], models: list[str], qos_ms: dict, headline: Target,
                    measured: _Measured, *, feeds: dict, duration_s: float, min_requests: int, seed: int,
                    progress: Progress) -> None:
    """Every system at measured.fixed_rate, the headline target: latencies, and mtcc's
    core-grant timeline."""
    rate = measured.fixed_rate
    say(progress, f"fixed-rate run at {rate:.2f} req/s ({measured.fixed_why}), target {headline.label}")
    for system in systems:
        server = servers[system.label]
        if hasattr(server, "set_qos"):
            server.set_qos(qos_ms)
        since = _counters(server)[2]
        out = trial(server, models, rate, trial_length(rate, duration_s, min_requests), seed + 999, feeds, qos_ms)
        if system.kind == "mtcc":
            out["timeline"] = _timeline(server, since)
        measured.fixed[system.label] = out
        say(progress, f"  {system.label:24s} " + "  ".join(
            f"{n} p99 {out['models'][n]['p99_ms']} ms" for n in models if n in out["models"]))


def _report(cores: list[int], vcpu: dict, models: list[str], bundles: dict, first, isolated: dict,
            qos: dict, errors: dict, measured: _Measured, systems: list[System], targets: list[Target],
            headline: Target, *, duration_s: float, seed: int, repeats: int, min_requests: int) -> dict:
    """The report of `mtcc bench --json`, but for the simulation: the machine, the set-up,
    one row per (system, target, model), the fixed-rate latencies and the summary."""
    fixed_rate = measured.fixed_rate
    tenants = first.models  # the first mtcc server's: its measurements of each model
    report = {
        "machine": {"cpu": machine.cpu_model(), "cores": len(cores), "core_ids": cores, "vcpu_sharing": vcpu,
                    "time_shared": any(s == "time-shared" for s in [vcpu["before"], vcpu["after"], *vcpu["during"]]),
                    "date": time.strftime("%Y-%m-%d")},
        "config": {"models": {n: {"bundle": Path(bundles[n]).name, "blocks": len(tenants[n].profile.blocks),
                                  "isolated_ms_by_cores": isolated[n],
                                  # alone on all cores after an idle pause, in its tenant
                                  "after_pause_ms": round(tenants[n].after_pause_ms, 3)} for n in models},
                   "qos_ms": qos, "headline_qos": headline.label, "duration_s": duration_s, "seed": seed,
                   "repeats": repeats, "min_requests": min_requests, "required_share": REQUIRED_SHARE, "warmup_s": min(WARMUP_MAX_S, WARMUP_SHARE * duration_s),
                   "fixed_rate": round(fixed_rate, 3) if fixed_rate else None, "fixed_rate_from": measured.fixed_why,
                   "systems": [s.label for s in systems],
                   "lanes": first.lanes},
        "results": [], "searches": {}, "search_trials_by_model": {}, "fixed": {}, "summary": {}, "simulated": [],
    }
    for t in targets:
        for system in systems:
            runs = measured.searches[(t.label, system.label)]
            report["searches"][f"{t.label} {system.label}"] = [s.trials for s in runs]
            report["search_trials_by_model"][f"{t.label} {system.label}"] = measured.by_model[(t.label, system.label)]
            rates = [s.best for s in runs if s.trials]  # an interrupted run: searches not begun have none
            f = measured.fixed.get(system.label) if t == headline else None
            for n in models:
                row = {**system.row(), "label": system.label, "qos": t.label, "model": n,
                       "max_abs_err_vs_onnxruntime": errors[system.label][n],
                       "qos_ms": qos[t.label][n],
                       "max_qos_rate": round(statistics.median(rates), 3) if rates else None,
                       "max_qos_rate_spread": [round(min(rates), 3), round(max(rates), 3)] if rates else None,
                       "search_done": all(s.done for s in runs),
                       # a best rate of 0 means "below this": the search stops at a floor
                       "lowest_rate_tried": round(min((r for s in runs for r, _ in s.trials), default=0.0), 3)}
                if f is not None and n in f["models"]:
                    row.update({k: f["models"][n][k] for k in ("p50_ms", "p99_ms", "mean_ms", "within_qos")},
                               rate=round(fixed_rate, 3), requests=f["models"][n]["requests"],
                               conflict_rate=f["conflict_rate"])
                report["results"].append(row)
    for label, out in measured.fixed.items():
        report["fixed"][label] = {"latencies_ms": {n: [r["latency_ms"] for r in out["all_requests"] if r["model"] == n]
                                                   for n in models},
                                  "timeline": out.get("timeline", [])}
    for n in models:
        report["config"]["models"][n]["table_scale"] = round(tenants[n].scale, 4)  # measured / calibrated tables
        report["config"]["models"][n]["block_us_by_cores"] = tenants[n].profile.measured_block_us
    report["summary"] = summarize_report(report, targets, headline)
    if measured.interrupted:
        report["interrupted"] = f"during {measured.interrupted}: searches and rows hold what was measured until then"
    return report


def fixed_rate_for(best: dict[str, dict[str, list[float]]], targets: list[Target], headline: Target,
                   capacity: float) -> tuple[float, str]:
    """(rate, why) of the fixed-rate run, whose p50/p99/mean compare the systems: the
    reference's (model-fcfs) best rate at the headline target; where it met that target
    at no rate, its best at the grid's other targets (the highest: a load it serves
    within some target; a rate it cannot serve at all only measures queues growing);
    failing all, a quarter of the cores' capacity.  `best`: {target: {system: [best
    rate per search]}}."""
    reference = f"mtcc {REFERENCE}"
    by_target = {t.label: statistics.median(best[t.label][reference]) for t in targets
                 if best.get(t.label, {}).get(reference)}
    if by_target.get(headline.label):
        return by_target[headline.label], f"{REFERENCE}'s best rate at {headline.label}"
    served = {label: r for label, r in by_target.items() if r}
    if served:
        label = max(served, key=lambda k: (served[k], k))
        return served[label], f"{REFERENCE}'s best rate at {label}; at {headline.label} it met the target at no rate"
    if not by_target:  # the reference did not run: the slowest system's best at the headline
        others = [statistics.median(v) for v in best.get(headline.label, {}).values() if v]
        if others and min(others) > 0:
            return min(others), f"the lowest best rate at {headline.label} ({REFERENCE} did not run)"
    return capacity / 4, "a quarter of the capacity; no system's search gave a rate to use"


def max_errors(servers: dict, onnx: dict[str, Path], feeds: dict) -> dict[str, dict[str, float]]:
    """{system label: {model: max |output - ONNX Runtime's|}} on the bench's own inputs,
    one request each: what a row's speed costs in accuracy (OpenVINO's default precision
    is bf16 on AMX CPUs)."""
    from .. import frontend
    from .baselines import OnnxRuntime

    reference = {}
    for name, path in onnx.items():
        session = OnnxRuntime(frontend.load(path, for_tvm=False), threads=1)
        reference[name] = dict(zip(session.names, session.run(feeds[name])))
    out = {}
    for label, server in servers.items():
        out[label] = {}
        for name, expected in reference.items():
            got = server.submit(name, feeds[name]).result(timeout=300)
            out[label][name] = float(max(np.abs(np.asarray(got[k], dtype=np.float64) - v).max()
                                         for k, v in expected.items()))
    return out


def _first_mtcc(servers: dict, systems: list[System]):
    """The first mtcc server: targets, calibrated tables, scales and lanes are read from it."""
    for system in systems:
        if system.kind == "mtcc":
            return servers[system.label]
    raise BadInput("the bench needs at least one mtcc policy (--policy): targets are set from mtcc's isolated latency")


OVERHEAD_QUANTILES = 101  # p0 .. p100 of the measured round trips: the simulator draws from them


def _unit_overhead_us(servers, systems) -> list[float]:
    """What a unit cost the real servers beyond its kernels: the quantiles (p0 .. p100)
    of the scheduler round trips (unit sent -> started in the tenant, finished -> seen)
    over every mtcc server and model; the simulator draws one per unit, so a slow wake-up
    now and then reaches its tail as it reaches the real one."""
    trips = [m.round_trip_us for system in systems if system.kind == "mtcc"
             for m in servers[system.label].models.values()]
    values = [v for trip in trips for v in trip]
    if not values:
        return [DEFAULT_UNIT_OVERHEAD_US]
    return [round(float(v), 1) for v in np.percentile(values, np.linspace(0, 100, OVERHEAD_QUANTILES))]


def _median_best(report: dict, qos: str, label: str) -> float | None:
    rows = [r for r in report["results"] if r["qos"] == qos and r["label"] == label]
    return rows[0]["max_qos_rate"] if rows else None


def _ratio(a, b):
    """a / b, or None where b is missing or 0 (JSON has no infinity: a best rate of 0 for
    the divisor shows in the rows themselves)."""
    if a is None or b is None or not b:
        return None
    return round(a / b, 3)


def summarize_report(report: dict, targets: list[Target], headline: Target) -> dict:
    """The ratios the issue's bars read: block-adaptive's best rate over the others'."""
    labels = report["config"]["systems"]
    head = f"mtcc {HEADLINE}"
    grid = {t.label: {label: _median_best(report, t.label, label) for label in labels} for t in targets}
    best_of = lambda prefix: max((v for k, v in grid[headline.label].items()  # noqa: E731
                                  if k.startswith(prefix + "/") and v is not None), default=None)
    summary = {"qos": headline.label, "max_qos_rate": grid[headline.label], "grid": grid,
               "rate_ratio_vs_model_wise_fcfs": _ratio(grid[headline.label].get(head), grid[headline.label].get(f"mtcc {REFERENCE}")),
               "rate_ratio_vs_onnxruntime": _ratio(grid[headline.label].get(head), best_of("onnxruntime")),
               "rate_ratio_vs_openvino": _ratio(grid[headline.label].get(head), best_of("openvino")),
               "rate_ratio_vs_openvino_default": _ratio(grid[headline.label].get(head), best_of("openvino-default")),
               "min_grid_ratio_vs_model_wise_fcfs": None, "mean_latency_ratio_vs_model_wise_fcfs": None}
    ratios = [_ratio(g.get(head), g.get(f"mtcc {REFERENCE}")) for g in grid.values()]
    ratios = [r for r in ratios if r is not None]
    summary["min_grid_ratio_vs_model_wise_fcfs"] = min(ratios) if ratios else None
    means = {}
    for label in (head, f"mtcc {REFERENCE}"):
        rows = [r for r in report["results"] if r["qos"] == headline.label and r["label"] == label and r.get("mean_ms")]
        if rows:
            means[label] = statistics.fmean(r["mean_ms"] for r in rows)
    summary["mean_latency_ratio_vs_model_wise_fcfs"] = _ratio(means.get(head), means.get(f"mtcc {REFERENCE}"))
    return summary


def simulated_rate_search(sim, models: list[str], qos: dict, capacity: float, duration_s: float,
                          seed: int) -> RateSearch:
    """The highest rate at which the simulated server keeps every model within target,
    searched like the real one but further down (simulated trials are cheap)."""
    search = RateSearch(start=round(0.25 * capacity, 2), max_trials=16, resolution=1.1, floor=capacity / 2000)
    while not search.done:
        r = search.next_rate()
        # enough requests for a 1 % figure to mean something, whatever the rate
        length = max(duration_s, SIMULATED_REQUESTS / r)
        run = sim.run(poisson_arrivals({n: r / len(models) for n in models}, length, seed))
        warm = min(WARMUP_MAX_S, WARMUP_SHARE * length)
        per = summarize([q for q in run["requests"] if q["arrival_s"] >= warm], qos)
        search.record(r, min(per[n]["within_qos"] for n in models))
    return search


def simulated_fixed_rate(sim, models: list[str], qos: dict, rate: float, duration_s: float, seed: int) -> dict:
    """Per model p50/p99/mean and share within target of the simulated server at `rate`."""
    run = sim.run(poisson_arrivals({n: rate / len(models) for n in models}, max(duration_s, SIMULATED_REQUESTS / rate),
                                   seed + 999))
    return summarize(run["requests"], qos)


def simulate_many(profiles: dict, scales: dict, core_counts, policies, headline: Target, duration_s: float,
                  seed: int, report: dict, progress: Progress = None,
                  unit_overhead_us: float | list[float] = DEFAULT_UNIT_OVERHEAD_US, lanes: int | None = None,
                  cold_us: dict[str, float] | None = None) -> list[dict]:
    """The mtcc policies on simulated cores: first on the real core count (the error
    against the real runs), then on each of `core_counts`; each unit costs
    a draw from `unit_overhead_us` (the real servers' measured round trips), and a unit on a lane idle
    past the pools' spin-wait its model's `cold_us` (measured by the first server on all
    its cores, applied at every simulated core count)."""
    from ..cells import default_core_counts
    from .simulate import Simulator, extrapolate

    rows = []
    real = report["machine"]["cores"]
    models = list(profiles)
    for cores in [real, *[c for c in core_counts if c != real]]:
        counts = default_core_counts(cores)
        grown = {}
        extrapolated = False
        for n, p in profiles.items():
            grown[n], filled = extrapolate(p, counts)
            extrapolated |= filled
        base = cores if headline.base == "all" else int(headline.base)
        qos = {n: headline.factor * grown[n].model_us(base) * scales.get(n, 1.0) / 1e3 for n in models}
        if cores == real:  # same targets as the real run, so the error is like for like
            qos = dict(report["config"]["qos_ms"][headline.label])
        capacity = cores / statistics.fmean(grown[n].model_us(1) * scales.get(n, 1.0) / 1e6 for n in models)
        for policy in policies:
            sim = Simulator(grown, cores, policy, qos, scale=scales, unit_overhead_us=unit_overhead_us, lanes=lanes,
                            cold_us=cold_us)
            search = simulated_rate_search(sim, models, qos, capacity, duration_s, seed)
            fixed_rate = report["config"]["fixed_rate"] if cores == real else None
            row = {"cores": cores, "system": f"mtcc {policy}", "policy": policy, "max_qos_rate": round(search.best, 3),
                   "extrapolated": extrapolated, "simulated": True, "qos": headline.label,
                   "qos_ms": {n: round(v, 4) for n, v in qos.items()}}
            if fixed_rate:
                per = simulated_fixed_rate(sim, models, qos, fixed_rate, duration_s, seed)
                row["p99_ms"] = {n: per[n]["p99_ms"] for n in models}
                real_rate = _median_best(report, headline.label, f"mtcc {policy}")
                real_p99 = {r["model"]: r.get("p99_ms") for r in report["results"]
                            if r["qos"] == headline.label and r["label"] == f"mtcc {policy}"}
                row["error_vs_real"] = {
                    "max_qos_rate": _ratio(search.best, real_rate),
                    "p99": {n: _ratio(row["p99_ms"][n], real_p99.get(n)) for n in models}}
            rows.append(row)
            say(progress, f"  simulated {cores:3d} cores{' (extrapolated)' if extrapolated else ''}: mtcc {policy:15s} "
                          f"{search.best:9.2f} req/s")
    return rows


def example_schedules(root: Path, name: str, mcpu: str) -> Path:
    """The committed schedules an example model is built from for a CPU of level `mcpu`:
    those tuned for that level where committed (schedules/<name>/llvm-<mcpu>), else the
    portable x86-64-v4 ones (built for `mcpu`: the same outputs, usually much slower)."""
    from ..target import PORTABLE_MCPU
    from ..tune.database import RECORDS

    own = root / "schedules" / name / f"llvm-{mcpu}"
    return own if (own / RECORDS).exists() else root / "schedules" / name / f"llvm-{PORTABLE_MCPU}"


def example_bundle_path(root: Path, name: str, mcpu: str) -> Path:
    """Where an example model's bundle for a CPU of level `mcpu` lives (the demo packs the
    same file): build/<name>.mtcc for the portable level, build/<name>-<level>.mtcc for
    schedules tuned for another level, build/<name>-<tuned>-as-<level>.mtcc for schedules
    built for a level they were not tuned for."""
    from ..target import PORTABLE_MCPU

    tuned = example_schedules(root, name, mcpu).name.removeprefix("llvm-")
    if tuned != mcpu:
        return root / "build" / f"{name}-{tuned}-as-{mcpu}.mtcc"
    return root / "build" / (f"{name}.mtcc" if mcpu == PORTABLE_MCPU else f"{name}-{mcpu}.mtcc")


def example_bundles(names, progress: Progress = None) -> tuple[dict[str, Path], dict[str, Path]]:
    """The example models' bundles under build/, packed from the committed schedules
    when missing (for this CPU's instruction-set level), and their ONNX files."""
    from ..target import host_portable_mcpu

    root = Path(__file__).resolve().parents[2]
    mcpu = host_portable_mcpu()
    bundles, onnx = {}, {}
    for name in names:
        model = root / "examples" / "models" / f"{name}.onnx"
        schedules = example_schedules(root, name, mcpu)
        if not model.exists():
            raise BadInput(f"{model}: no such example model (make models creates them)")
        path = example_bundle_path(root, name, mcpu)
        if not path.exists():
            import mtcc

            say(progress, f"packing {path.name} from {schedules.relative_to(root)} for {mcpu} (once)")
            path.parent.mkdir(parents=True, exist_ok=True)
            mtcc.pack(model, schedules, path, target=mcpu)
        bundles[name], onnx[name] = path, model
    return bundles, onnx


def check_policies(policies) -> None:
    for p in policies:
        if p not in POLICIES:
            raise BadInput(f"--policy {p}: unknown (known: {', '.join(POLICIES)})")

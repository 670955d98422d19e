"""Calibration: which stressor settings make which interference level on this machine.

Levels are defined by what they do to a fixed probe, not by the stressors' own
parameters: on one machine a 32 MiB writer may slow the memory probe by 40 %,
on another by nothing.  The procedure:

1. the probe runs in its own process pinned to the first core; every stressor
   setting runs on the other cores;
2. for each setting, pairs of windows "alone, stressed, alone, stressed, ..."
   (the stressor SIGSTOPped in between) cancel the drift of a shared machine,
   and the settings take turns pair by pair so that each sees the same mix of
   the host's states;
   the slowdown is the median over pairs of t(stressed) / t(alone), t being a
   window's lower-quartile time (probes.robust_time says why);
3. a control that keeps the other cores busy without touching memory (a spin
   loop) separates cache/memory interference from the host time-sharing the
   vCPUs (docs/tvm-notes.md: then any busy neighbour reads ~2x);
4. levels none/low/mid/high are the settings whose memory-probe slowdown is
   closest to 0, 1/3, 2/3 and all of the strongest one's, among the credible
   settings (in most pairs slower beside the stressor: lower quartile of the
   ratios above 1).  When even the strongest credible setting is not at least
   1.05x and 1.05x the control, the
   result says "no usable interference on this machine" and defines no levels
   beyond "none"; everything measured is kept either way.
"""
from __future__ import annotations

import contextlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

from ..errors import BadInput, EnvironmentProblem
from . import machine
from .probe_process import ProbeProcess
from .probes import COMPUTE_PROBE_N, MEMORY_PROBE_BYTES, PROBES, robust_time
from .stressors import CacheStressor, SpinStressor, Stressor, StreamStressor, make_stressor

FORMAT = "mtcc-calibration/1"
LEVELS = ("none", "low", "mid", "high")
MIN_USABLE_SLOWDOWN = 1.05  # below this the effect is within this machine's run-to-run drift
# Two calibrations agree when every level's memory slowdown is within this (absolute, x).
# On the project's shared 2-vCPU VMs the same stride writer measured 1.13-1.39x in four
# runs within six minutes (other jobs running): 0.10 was not reachable there, 0.25 was.
DEFAULT_TOLERANCE = 0.25
NICE = -10                  # probe and stressors ahead of unrelated work (needs root; else 0)
WINDOW_S = {"memory": 0.08, "compute": 0.04}
MiB = 1 << 20


def _say(progress, message: str) -> None:
    if progress:
        progress(message)


def _stderr(message: str) -> None:
    print(f"[calibrate] {message}", file=sys.stderr, flush=True)


def stressor_settings(stressor_cores: list[int], nice: int = NICE) -> dict[str, Stressor]:
    """Settings meant to span weak to strong, sized from this machine's caches.
    The first one is the control (busy, no memory traffic)."""
    l2 = machine.cache_bytes(2, 1 * MiB)
    llc = min(machine.llc_bytes(), 64 * MiB)  # a VM may report its host's whole LLC
    stream = max(64 * MiB, min(4 * machine.llc_bytes(), 512 * MiB))
    one = stressor_cores[:1]
    return {
        "control-spin": SpinStressor(stressor_cores, nice=nice),
        "cache-small-1": CacheStressor(max(2 * l2, 2 * MiB), one, "random", nice=nice),
        "cache-llc-random": CacheStressor(llc, stressor_cores, "random", nice=nice),
        "cache-llc-stride": CacheStressor(llc, stressor_cores, "stride", nice=nice),
        "stream-copy": StreamStressor(stream, stressor_cores, "copy", nice=nice),
        "stream-stride": StreamStressor(stream, stressor_cores, "stride", nice=nice),
        # The same strongest pattern working part of the time: intermediate levels.
        "stream-stride-duty33": StreamStressor(stream, stressor_cores, "stride", nice=nice, duty=1 / 3),
        "stream-stride-duty67": StreamStressor(stream, stressor_cores, "stride", nice=nice, duty=2 / 3),
    }


def _quartiles(values: list[float]) -> list[float]:
    if len(values) < 2:
        return [values[0], values[0]] if values else [float("nan")] * 2
    q = statistics.quantiles(values, n=4)
    return [q[0], q[2]]


def measure_setting(probe: ProbeProcess, stressor: Stressor, pairs: int) -> dict:
    """Alone/stressed window pairs for each probe; the stressor must be started.
    Returns the raw per-pair ratios and alone times (summarise() condenses them)."""
    raw = {f"{name}_{what}": [] for name in PROBES for what in ("ratios", "alone_ms")}
    for _ in range(pairs):
        for name in PROBES:
            stressor.pause()
            a = robust_time(probe.samples(name, WINDOW_S[name]))
            stressor.resume()
            b = robust_time(probe.samples(name, WINDOW_S[name]))
            raw[f"{name}_ratios"].append(round(b / a, 4))
            raw[f"{name}_alone_ms"].append(round(1e3 * a, 4))
    stressor.pause()
    return raw


def _memory_allowance() -> int:
    try:
        import psutil

        return min(psutil.virtual_memory().available // 4, 4 << 30)
    except ImportError:
        return 1 << 30


def measure_settings(probe: ProbeProcess, settings: dict[str, Stressor], pairs: int,
                     progress=None) -> dict[str, list[dict]]:
    """`pairs` alone/stressed pairs per setting.  The host's state drifts within
    seconds (other VMs, vCPU placement), so when memory allows, every setting is
    started at once (paused) and the settings take turns pair by pair; otherwise
    they run one after another in four passes."""
    measured: dict[str, list[dict]] = {name: [] for name in settings}
    total = sum(s.working_set_bytes * len(s.cores) for s in settings.values())
    if total <= _memory_allowance():
        with contextlib.ExitStack() as running:
            for stressor in settings.values():
                running.enter_context(stressor.start())
                stressor.pause()
            names = list(settings)
            for r in range(pairs):
                if r % max(1, pairs // 4) == 0:
                    _say(progress, f"round {r + 1}/{pairs}: {len(names)} settings take turns")
                for name in names[r % len(names):] + names[:r % len(names)]:
                    measured[name].append(measure_setting(probe, settings[name], 1))
        return measured
    passes = min(4, max(1, pairs // 4))
    for p in range(passes):
        for name, stressor in settings.items():
            _say(progress, f"pass {p + 1}/{passes}: {name} {stressor.describe()['working_set_mib']} "
                           f"MiB x {len(stressor.cores)} process(es), {pairs // passes} pairs")
            with stressor.start():
                stressor.pause()
                measured[name].append(measure_setting(probe, stressor, pairs // passes))
    return measured


def summarise(parts: list[dict]) -> dict:
    """Pool the pairs of every pass: slowdown = median ratio, spread = its quartiles."""
    result = {"pairs": sum(len(p["memory_ratios"]) for p in parts)}
    for name in PROBES:
        ratios = [r for p in parts for r in p[f"{name}_ratios"]]
        alone = [t for p in parts for t in p[f"{name}_alone_ms"]]
        result[f"{name}_slowdown"] = round(statistics.median(ratios), 4)
        result[f"{name}_slowdown_iqr"] = [round(x, 4) for x in _quartiles(ratios)]
        result[f"{name}_alone_ms"] = round(statistics.median(alone), 4)
        result[f"{name}_ratios"] = ratios
    return result


def choose_levels(settings: dict[str, dict], sharing_states: list[str]) -> dict:
    """From measured settings to levels and a plain verdict (see module doc)."""
    control = settings.get("control-spin")
    candidates = {k: v for k, v in settings.items() if k != "control-spin"}
    none = {"setting": None, "stressor": None, "memory_slowdown": 1.0, "compute_slowdown": 1.0}
    if not candidates:
        return {"usable": False, "verdict": "no stressor setting was measured", "levels": {"none": none}}
    # Credible: most pairs show a slowdown (lower quartile of the ratios above 1).
    credible = {k: v for k, v in candidates.items() if v["memory_slowdown_iqr"][0] > 1.0}
    pool = credible or candidates
    strongest_name = max(pool, key=lambda k: (pool[k]["memory_slowdown"], k))
    strongest = pool[strongest_name]
    control_slowdown = control["memory_slowdown"] if control else 1.0
    # The in-run control is the evidence that counts: the shared vcpu-sharing tool runs
    # its busy loop at normal priority, so other load on the machine can fool it.
    time_shared = control is not None and (control["memory_slowdown"] >= MIN_USABLE_SLOWDOWN
                                           or control["compute_slowdown"] >= MIN_USABLE_SLOWDOWN)
    tool_note = ""
    if "time-shared" in sharing_states and not time_shared:
        tool_note = (" The vcpu-sharing tool reported time-shared, but the busy control slowed "
                     "neither probe here; other load on the machine probably confounded the tool.")
    above_noise = strongest["memory_slowdown_iqr"][0] > 1.0
    above_control = strongest["memory_slowdown"] >= MIN_USABLE_SLOWDOWN * control_slowdown
    usable = strongest["memory_slowdown"] >= MIN_USABLE_SLOWDOWN and above_noise and above_control
    effect = (f"the strongest stressor ({strongest_name}) slowed the memory probe "
              f"{strongest['memory_slowdown']:.2f}x (inter-quartile "
              f"{strongest['memory_slowdown_iqr'][0]:.2f}-{strongest['memory_slowdown_iqr'][1]:.2f}x); "
              f"a busy neighbour that touches no memory: {control_slowdown:.2f}x")
    if not usable:
        why = ("vCPU time-sharing, not cache or memory pressure, explains it" if time_shared
               else "within this machine's noise")
        return {"usable": False, "time_sharing_suspected": time_shared,
                "verdict": f"no usable interference on this machine: {effect}; {why}.{tool_note}",
                "levels": {"none": none}}
    # Targets at 1/3, 2/3 and all of the strongest excess slowdown.
    excess = strongest["memory_slowdown"] - 1.0
    levels = {"none": none}
    for level, fraction in zip(LEVELS[1:], (1 / 3, 2 / 3, 1.0)):
        target = 1.0 + fraction * excess
        name = min(credible, key=lambda k: (abs(credible[k]["memory_slowdown"] - target), k))
        levels[level] = {"setting": name, "stressor": credible[name]["stressor"],
                         "memory_slowdown": credible[name]["memory_slowdown"],
                         "memory_slowdown_iqr": credible[name]["memory_slowdown_iqr"],
                         "compute_slowdown": credible[name]["compute_slowdown"]}
    note = (" Part of it may be vCPU time-sharing (the busy control slowed the probes too)."
            if time_shared else tool_note)
    distinct = len({levels[lv]["setting"] for lv in LEVELS[1:]})
    if distinct < 3:
        note += f" Only {distinct} distinct setting(s) back low/mid/high."
    return {"usable": True, "time_sharing_suspected": time_shared,
            "verdict": f"usable interference: {effect}.{note}", "levels": levels}


def pressure_check(cores: list[int] | None = None, pairs: int = 8, nice: int = NICE,
                   probe: ProbeProcess | None = None) -> dict:
    """A few seconds' look at how much pressure this machine lets through right now:
    the memory probe beside the strongest pattern (64-byte-stride writes beyond the
    LLC) and beside a memory-free spin loop.  On the project's VMs the answer has
    flipped between ~1.05x and ~1.8x from one minute to the next (whether the two
    vCPUs share an L3 at that moment, which /sys does not tell), so run it before
    and after any co-running measurement, as with vcpu-sharing."""
    cores = sorted(cores) if cores else machine.cores()
    if len(cores) < 2:
        raise EnvironmentProblem(f"a pressure check needs 2 cores; this process may use {cores}")
    strong = StreamStressor(cores=cores[1:], pattern="stride", nice=nice)
    spin = SpinStressor(cores[1:], nice=nice)
    with contextlib.ExitStack() as stack:
        if probe is None:
            probe = stack.enter_context(ProbeProcess(cores[0], nice=nice))
        raw = measure_settings(probe, {"stream-stride": strong, "control-spin": spin}, pairs)
    result = {name: summarise(parts)["memory_slowdown"] for name, parts in raw.items()}
    return {"memory_slowdown": result["stream-stride"], "control_slowdown": result["control-spin"],
            "pairs": pairs}


def calibrate(cores: list[int] | None = None, seconds_budget: float = 60.0,
              out: str | os.PathLike | None = None, progress=_stderr, nice: int = NICE) -> dict:
    """Measure this machine's interference levels; returns (and with `out`, writes)
    the calibration dict.  `cores`: the probe runs on cores[0], stressors on the
    rest (default: every core this process may use).  `progress`: a callable taking
    one line of text (default: stderr), or None for silence."""
    cores = sorted(cores) if cores else machine.cores()
    if len(cores) < 2:
        raise EnvironmentProblem("calibration needs at least 2 cores (one for the probe, one for "
                                 f"a stressor); this process may use {cores}")
    if seconds_budget < 10:
        raise BadInput(f"seconds_budget {seconds_budget}: calibration needs at least 10 s")
    started = time.time()
    load_before = machine.load_average()
    probe_core, stressor_cores = cores[0], cores[1:]
    _say(progress, f"probe on core {probe_core}, stressors on {stressor_cores}; "
                   f"load average {load_before}")
    _say(progress, "checking vCPU sharing (before)")
    sharing_before = machine.vcpu_sharing()
    settings = stressor_settings(stressor_cores, nice)

    # Pairs per setting from the budget: ~20 s go to start-up and the checks.
    pair_s = 2 * sum(WINDOW_S.values()) + 0.02
    pairs = max(4, int((seconds_budget - 20) / (len(settings) * pair_s)))
    with ProbeProcess(probe_core, nice=nice) as probe:
        nice_applied = os.getpriority(os.PRIO_PROCESS, probe.pid)  # stays 0 without root
        check_pairs = max(3, min(8, int(seconds_budget / 8)))
        _say(progress, "pressure check (before)")
        check_before = pressure_check(cores, check_pairs, nice, probe)
        measured = measure_settings(probe, settings, pairs, progress)
        _say(progress, "pressure check (after)")
        check_after = pressure_check(cores, check_pairs, nice, probe)
    _say(progress, "checking vCPU sharing (after)")
    sharing_after = machine.vcpu_sharing()

    results = {}
    for name, parts in measured.items():
        results[name] = {"stressor": settings[name].describe(), **summarise(parts)}
        _say(progress, f"{name}: memory probe {results[name]['memory_slowdown']:.3f}x, "
                       f"compute probe {results[name]['compute_slowdown']:.3f}x")
    choice = choose_levels(results, [sharing_before.get("state"), sharing_after.get("state")])
    drift = abs(check_before["memory_slowdown"] - check_after["memory_slowdown"])
    if drift > DEFAULT_TOLERANCE:
        choice["verdict"] += (f" The machine changed during calibration: the strongest pattern "
                              f"slowed the probe {check_before['memory_slowdown']:.2f}x before and "
                              f"{check_after['memory_slowdown']:.2f}x after, so these levels will "
                              "not reproduce reliably here.")
    _say(progress, choice["verdict"])

    calibration = {
        "format": FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpu_model": machine.cpu_model(), "caches": machine.caches(),
                    "cores": machine.cores(), "hostname": os.uname().nodename},
        "hardware_counters": machine.hardware_counters(),
        "vcpu_sharing": {"before": sharing_before, "after": sharing_after},
        "pressure_check": {"before": check_before, "after": check_after},
        "load_average": {"before": load_before, "after": machine.load_average()},
        "probes": {"memory": {"kind": "random cache-line reads", "bytes": MEMORY_PROBE_BYTES},
                   "compute": {"kind": "float32 matmul", "n": COMPUTE_PROBE_N},
                   "core": probe_core, "statistic": "median over interleaved pairs of "
                                "lower-quartile(stressed) / lower-quartile(alone)"},
        "nice": {"requested": nice, "applied": nice_applied},
        "usable": choice["usable"],
        "time_sharing_suspected": choice.get("time_sharing_suspected", False),
        "verdict": choice["verdict"],
        "levels": choice["levels"],
        "settings": results,
        "tolerance": DEFAULT_TOLERANCE,
        "seconds": round(time.time() - started, 1),
    }
    if out is not None:
        save(calibration, out)
        _say(progress, f"wrote {out}")
    return calibration


def save(calibration: dict, path: str | os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(calibration, indent=2, sort_keys=False) + "\n")


def load(path: str | os.PathLike) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise BadInput(f"{path}: no such calibration file") from None
    except (OSError, json.JSONDecodeError) as e:
        raise BadInput(f"{path}: not a readable calibration file ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or "levels" not in data:
        raise BadInput(f"{path}: not an mtcc calibration (expected format {FORMAT})")
    return data


def compare(a: dict, b: dict, tolerance: float = DEFAULT_TOLERANCE) -> dict:
    """Do two calibrations agree?  Same verdict (usable or not), same levels, and
    every level's memory-probe slowdown within `tolerance` (absolute, in x)."""
    reasons = []
    if a.get("usable") != b.get("usable"):
        reasons.append(f"usable differs: {a.get('usable')} vs {b.get('usable')}")
    if set(a["levels"]) != set(b["levels"]):
        reasons.append(f"levels differ: {sorted(a['levels'])} vs {sorted(b['levels'])}")
    differences = {}
    for level in LEVELS:
        if level in a["levels"] and level in b["levels"]:
            d = abs(a["levels"][level]["memory_slowdown"] - b["levels"][level]["memory_slowdown"])
            differences[level] = round(d, 4)
            if d > tolerance:
                reasons.append(f"{level}: memory slowdown differs by {d:.3f}x (> {tolerance})")
    return {"within_tolerance": not reasons, "tolerance": tolerance,
            "differences": differences, "reasons": reasons}


def stressor_for_level(calibration: dict, level: str, cores: list[int] | None = None,
                       nice: int = 0) -> Stressor | None:
    """The (unstarted) stressor that makes `level` on this machine; None for "none".
    `cores` overrides where it runs (default: where it ran during calibration)."""
    if level not in calibration["levels"]:
        raise BadInput(f"level {level!r} not in this calibration "
                       f"(has {', '.join(calibration['levels'])}): {calibration.get('verdict', '')}")
    config = calibration["levels"][level]["stressor"]
    if config is None:
        return None
    stressor = make_stressor(config, nice=nice)
    if cores is not None:
        stressor.cores = list(cores)
    return stressor

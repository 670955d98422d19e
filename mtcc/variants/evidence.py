"""What the variants are worth on paper: per model, how many tasks have several
variants, for how many the fastest alone is not the fastest under pressure, and the
model-level sums with each choice (a prediction from per-kernel cells, not a
measurement of the model)."""
from __future__ import annotations

import math
from pathlib import Path

from ..errors import BadInput
from .select import MIN_RELATIVE_ERROR, VARIANTS, load_variants

def _model_evidence(var: dict, source: str) -> dict:
    cells = var.get("objectives", {}).get("cells", {})
    alone_key, pressure_key = cells.get("alone"), cells.get("pressure")
    tasks = var["tasks"]
    multi = [t["name"] for t in tasks if len(t["variants"]) > 1]
    differs = [t["name"] for t in tasks if t.get("best_alone_differs_under_pressure")]
    sums = {"alone_best_alone": 0.0, "alone_best_pressure": 0.0,
            "pressure_best_alone": 0.0, "pressure_best_pressure": 0.0}
    unmeasured = []
    variance = 0.0  # of the predicted gain's µs: the switched tasks' cells' errors
    for t in tasks:
        vs = [v for v in t["variants"] if v["latency_us"]]
        if not vs:
            unmeasured.append(t["name"])
            continue

        def lat(v, key):
            # A cell a variant lacks (a skipped task's tuner time) reads as its alone time.
            table = v["latency_us"]
            return table.get(key) or table.get(alone_key) or min(table.values())

        count = t.get("count", 1)
        best_alone = min(vs, key=lambda v: (lat(v, alone_key), lat(v, pressure_key)))
        best_pressure = min(vs, key=lambda v: (lat(v, pressure_key), lat(v, alone_key)))
        sums["alone_best_alone"] += count * lat(best_alone, alone_key)
        sums["alone_best_pressure"] += count * lat(best_pressure, alone_key)
        sums["pressure_best_alone"] += count * lat(best_alone, pressure_key)
        sums["pressure_best_pressure"] += count * lat(best_pressure, pressure_key)
        if best_pressure is not best_alone:
            for v in (best_alone, best_pressure):
                err = (v.get("latency_error_us") or {}).get(pressure_key)
                # A table without error bars (older variants.json): MIN_RELATIVE_ERROR of it.
                err = err if err is not None else MIN_RELATIVE_ERROR * lat(v, pressure_key)
                variance += (count * err) ** 2
    ratio = (sums["pressure_best_alone"] / sums["pressure_best_pressure"]
             if sums["pressure_best_pressure"] else None)
    cost = sums["alone_best_pressure"] / sums["alone_best_alone"] if sums["alone_best_alone"] else None
    return {
        "model": var.get("model"), "target": var.get("target"), "source": source,
        "tasks": len(tasks), "tasks_measured": sum(1 for t in tasks if t.get("measured")),
        "tasks_multi_variant": len(multi), "tasks_best_alone_differs": len(differs),
        "multi_variant": multi, "best_alone_differs": differs,
        "alone_cell": alone_key, "pressure_cell": pressure_key,
        "pressure_level": cells.get("pressure_level"),
        "calibration_usable": var.get("calibration", {}).get("usable"),
        "model_us": {k: round(v, 3) for k, v in sums.items()},
        # > 1: under pressure, the best-under-pressure variants beat the best-alone ones by this factor.
        "pressure_ratio_best_alone_over_best_pressure": round(ratio, 4) if ratio else None,
        # >= 1: what the best-under-pressure variants cost when the machine is quiet.
        "alone_ratio_best_pressure_over_best_alone": round(cost, 4) if cost else None,
        # The predicted gain under pressure of switching, 1 - best-pressure / best-alone,
        # and its error bar (the switched cells' errors, independent): a gain inside the
        # bar is no gain.
        "pressure_gain": round(1 - 1 / ratio, 4) if ratio else None,
        "pressure_gain_error": (round(math.sqrt(variance) / sums["pressure_best_alone"], 4)
                                if sums["pressure_best_alone"] else None),
        "tasks_without_latency": unmeasured,
    }


def evidence(schedules_dir) -> dict:
    """Per model: tasks with more than one variant, tasks whose fastest-alone variant is
    not the fastest under pressure, and the model-level latency under pressure (sum over
    tasks of call count x latency at the pressure cell) with the best-under-pressure
    variants against the best-alone ones.  `schedules_dir` is one model's folder (with
    variants.json) or a folder above several (searched recursively)."""
    root = Path(schedules_dir)
    if (root / VARIANTS).exists():
        files = [root / VARIANTS]
    elif root.is_file():
        files = [root]
    else:
        files = sorted(root.rglob(VARIANTS))
    if not files:
        raise BadInput(f"{root}: no {VARIANTS} here or below (run `mtcc tune --stage characterize`)")
    return {"models": [_model_evidence(load_variants(f), str(f.parent)) for f in files]}


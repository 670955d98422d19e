"""Which calibration a stage uses: this machine's file, one near the schedules folder,
or a quick calibration; and what the measured cells depend on (its fingerprint)."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import BadInput
from ..files import short_sha
from ..progress import Progress, say


def _calibration_dirs(schedules_dir: Path) -> list[Path]:
    dirs = [schedules_dir / "calibration", schedules_dir.parent.parent / "calibration",
            Path.cwd() / "schedules" / "calibration"]
    out = []
    for d in dirs:
        d = d.resolve()
        if d not in out:
            out.append(d)
    return out


def find_calibration(schedules_dir: str | os.PathLike) -> Path | None:
    """This machine's calibration file (schedules/calibration/<cpu>.json) or, failing
    that, any calibration file found near the schedules folder."""
    from .machine import cpu_slug

    dirs = [d for d in _calibration_dirs(Path(schedules_dir)) if d.is_dir()]
    for d in dirs:
        if (d / f"{cpu_slug()}.json").exists():
            return d / f"{cpu_slug()}.json"
    for d in dirs:
        found = sorted(d.glob("*.json"))
        if found:
            return found[0]
    return None


def _one_core_calibration() -> dict:
    return {"format": "mtcc-calibration/1", "usable": False,
            "verdict": "one core: nothing can run beside a candidate, no interference levels",
            "levels": {"none": {"setting": None, "stressor": None, "memory_slowdown": 1.0}}}


def resolve_calibration(calibration, schedules_dir: Path, cores: list[int],
                        progress: Progress = None) -> tuple[dict, str]:
    """(calibration dict, where it came from)."""
    from . import calibration as cal_mod

    if isinstance(calibration, dict):
        if "levels" not in calibration:
            raise BadInput("calibration dict has no 'levels'")
        return calibration, "given"
    if calibration is not None:
        return cal_mod.load(calibration), source_name(Path(calibration))
    found = find_calibration(schedules_dir)
    if found is not None:
        say(progress, f"calibration: {found}")
        return cal_mod.load(found), source_name(found)
    if len(cores) < 2:
        return _one_core_calibration(), "one core"
    say(progress, "no calibration file found: running a quick calibration (30 s)")
    return cal_mod.calibrate(cores=cores, seconds_budget=30, progress=progress), "quick calibration"


def source_name(path: Path) -> str:
    """How files that get committed name a calibration file: by its folder and name, not
    by an absolute path of the machine that wrote them."""
    path = Path(path)
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def calibration_fingerprint(cal: dict) -> str:
    """What the level cells depend on: each level's stressor parameters (not where it ran)."""
    levels = {}
    for name, level in cal["levels"].items():
        config = dict(level.get("stressor") or {})
        config.pop("cores", None)
        config.pop("processes", None)
        levels[name] = config
    return short_sha(levels)


def calibration_summary(cal: dict, source: str) -> dict:
    return {"source": source, "fingerprint": calibration_fingerprint(cal),
            "usable": cal.get("usable"), "verdict": cal.get("verdict"),
            "cpu_model": (cal.get("machine") or {}).get("cpu_model"),
            "levels": {name: {"setting": lv.get("setting"), "stressor": lv.get("stressor"),
                              "memory_slowdown": lv.get("memory_slowdown")}
                       for name, lv in cal["levels"].items()}}


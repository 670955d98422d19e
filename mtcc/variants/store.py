"""characterization.json: load, carry over what an earlier run measured, save atomically.

A run writes the file after every candidate (temp file + os.replace), so a crash
loses at most one candidate's cells; a rerun measures only the missing cells."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import BadInput
from ..files import read_json
from ..progress import Progress, say
from ..cells import parse_cell

FORMAT = "mtcc-characterization/1"
CHARACTERIZATION = "characterization.json"
CACHE_METHODS = ("hot", "cold")  # how a candidate is timed: see characterize's `caches`
DEFAULT_CACHES = "hot"           # for a new characterization (docs/results.md: "Do the tables predict the whole model?")


def timed_with(characterization: dict) -> str:
    """How a characterization timed its candidates: its settings' "caches"; a file written
    before the setting existed was timed hot."""
    return characterization.get("settings", {}).get("caches", "hot")


def load_previous(out: Path, progress: Progress) -> dict | None:
    if not out.exists():
        return None
    try:
        data = json.loads(out.read_text())
    except (OSError, ValueError):
        say(progress, f"{out}: unreadable, starting over")
        return None
    if data.get("format") != FORMAT:
        say(progress, f"{out}: not a characterization ({data.get('format')}), starting over")
        return None
    return data


def merge_previous(tasks: list[dict], previous: dict | None, fingerprint: str,
                    progress: Progress, caches: str) -> None:
    """Carry over measured cells of candidates that are still the same record, timed the
    same way (`caches`, see timed_with)."""
    if not previous:
        return
    before = timed_with(previous)
    if before != caches:
        say(progress, f"the cells were timed with {before} caches, this run times them {caches}: "
                      "every cell is measured again")
        previous = {**previous, "tasks": [{**t, "candidates": [{**c, "cells": {}} for c in t.get("candidates", [])]}
                                          for t in previous.get("tasks", [])]}
    same_levels = previous.get("calibration", {}).get("fingerprint") == fingerprint
    if not same_levels:
        say(progress, "the calibration's levels changed since the last run: pressure cells are measured again")
    old = {t["name"]: t for t in previous.get("tasks", [])}
    for task in tasks:
        before = old.get(task["name"])
        if not before:
            continue
        by_record = {(c["record"], c["sha256"]): c for c in before.get("candidates", [])}
        for cand in task["candidates"]:
            prev = by_record.get((cand["record"], cand["sha256"]))
            if not prev:
                continue
            for key, cell in prev.get("cells", {}).items():
                if same_levels or parse_cell(key)[1] == "none":
                    cand["cells"][key] = cell
            # A pair's ratio (variants.confirm) stands while its cell does.
            confirmed = {key: c for key, c in (prev.get("confirmed") or {}).items() if key in cand["cells"]}
            if confirmed:
                cand["confirmed"] = confirmed
            for field in ("footprint", "build_s"):  # not "error": a rerun tries a failed build again
                if prev.get(field) is not None:
                    cand[field] = prev[field]


def characterization_caches(schedules_dir) -> str:
    """How the folder's characterization.json timed its candidates (timed_with),
    DEFAULT_CACHES without a file."""
    path = Path(schedules_dir) / CHARACTERIZATION
    if not path.exists():
        return DEFAULT_CACHES
    try:
        return timed_with(json.loads(path.read_text()))
    except (OSError, ValueError):
        return DEFAULT_CACHES


def load_characterization(characterization) -> dict:
    if isinstance(characterization, dict):
        return characterization
    path = Path(characterization)
    if path.is_dir():
        path = path / CHARACTERIZATION
    data = read_json(path, "characterization", "run `mtcc tune MODEL --out DIR --stage characterize` first")
    if data.get("format") != FORMAT:
        raise BadInput(f"{path}: not an mtcc characterization (expected format {FORMAT})")
    return data


"""Reading and writing the project's JSON files: one definition of each rule."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .errors import BadInput


def atomic_write_json(path: Path, data, indent: int | None = 1) -> None:
    """Write `data` as JSON so that a crash leaves the old file or the new one, never
    half of one (temp file in the same folder, then os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=indent) + "\n")
    os.replace(tmp, path)


def read_json(path: Path, what: str, hint: str = ""):
    """A JSON file, or BadInput naming it (and, when missing, `hint`: how to make it)."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise BadInput(f"{path}: no {what}{' (' + hint + ')' if hint else ''}") from None
    except (OSError, ValueError) as e:
        raise BadInput(f"{path}: unreadable {what} ({e})") from None


def read_json_lines(path: Path) -> list:
    """Every line of a JSON-lines file, parsed; a torn line reads as None so that list
    indices stay the file's line numbers (blank lines are skipped, as MetaSchedule does)."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for line in path.read_bytes().split(b"\n"):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append(None)
    return out


def short_sha(obj) -> str:
    """16 hex digits of the sha256 of `obj`'s canonical JSON: a stable name for a trace."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]

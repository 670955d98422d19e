"""Reading a schedules folder never rewrites it (docs: only tuning writes into one).

The folder may be committed, read-only in CI, or still being appended to by a running
tune: inspect, compile, the read-only database and pack read a repaired *copy*.  The
copy here carries the damage a crash leaves (a duplicate line and a torn last line) so
that a reader tempted to repair in place would have something to rewrite.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import HOST_MCPU, ROOT, run_mtcc

COMMITTED = ROOT / "schedules" / "transformer" / "llvm-x86-64-v4"  # the smallest committed folder


def _state(folder: Path) -> dict:
    """Every file's bytes, inode and mtime: a rewrite with the same bytes shows too."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_ino, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def damaged(tmp_path) -> tuple[Path, int, dict]:
    """(a copy of the committed folder with a duplicate and a torn last record line,
    the number of distinct complete records, every file's state)."""
    from mtcc.tune.database import RECORDS

    folder = tmp_path / "schedules"
    shutil.copytree(COMMITTED, folder)
    records = folder / RECORDS
    lines = records.read_bytes().splitlines(keepends=True)
    distinct = len(set(line.strip() for line in lines if line.strip()))
    assert len(lines) == distinct, "the committed file should have no duplicates"
    torn = lines[-1][: len(lines[-1]) // 2].rstrip(b"\n")
    with open(records, "ab") as f:
        f.write(lines[0] + torn)  # a duplicate of the first record, then half a line
    return folder, distinct, _state(folder)


def test_inspect_compile_and_readonly_database_do_not_rewrite_a_damaged_folder(models_dir, damaged):
    import mtcc
    from mtcc.tune.database import open_readonly

    folder, distinct, before = damaged
    proc = run_mtcc("inspect", folder, "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["variants"], "inspect read the folder's variants.json"
    assert _state(folder) == before, "mtcc inspect rewrote the schedules folder"

    # The read-only database holds the repaired lines (duplicate and torn line dropped).
    db = open_readonly(folder)
    assert len(db.get_all_tuning_records()) == distinct
    assert _state(folder) == before, "open_readonly rewrote the schedules folder"

    compiled = mtcc.compile(models_dir / "transformer.onnx", folder, target=HOST_MCPU)
    assert compiled.session() is not None
    assert _state(folder) == before, "mtcc.compile rewrote the schedules folder"
    assert [p.name for p in folder.parent.iterdir()] == ["schedules"]


def test_pack_does_not_rewrite_a_damaged_folder(models_dir, damaged, tmp_path):
    import mtcc

    folder, _, before = damaged
    info = mtcc.pack(models_dir / "transformer.onnx", folder, tmp_path / "t.mtcc", target=HOST_MCPU)
    assert info["variants_source"] == "variants.json"
    assert _state(folder) == before, "mtcc.pack rewrote the schedules folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["schedules", "t.mtcc"]

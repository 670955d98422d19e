"""The package layout's one rule: the compile side (frontend, tune, variants, packing)
and the run side (runtime) meet only in the bundle format (mtcc.bundle).  Checked on
every import in the source, function-local ones included."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mtcc"
COMPILE_SIDE = ("frontend", "tune", "variants", "packing")
RUN_SIDE = ("runtime",)


def _imports(path: Path) -> set[str]:
    """Absolute names of the mtcc modules a file imports."""
    # The package a relative import starts from (for __init__.py: its own package).
    package = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("mtcc"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.startswith("mtcc"):
                out.add(name)
                out.update(f"{name}.{a.name}" for a in node.names)
    return out


def _side_files(sides):
    return [p for side in sides for p in sorted((PACKAGE / side).rglob("*.py"))]


def _crossing(files, forbidden) -> list[str]:
    bad = []
    for path in files:
        for name in _imports(path):
            parts = name.split(".")
            if len(parts) > 1 and parts[1] in forbidden:
                bad.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    return bad


def test_the_layout_exists():
    for side in COMPILE_SIDE + RUN_SIDE + ("bundle", "bench", "cli", "interference"):
        assert (PACKAGE / side / "__init__.py").is_file(), side


def test_compile_side_does_not_import_the_run_side():
    assert _crossing(_side_files(COMPILE_SIDE), RUN_SIDE) == []


def test_run_side_does_not_import_the_compile_side():
    assert _crossing(_side_files(RUN_SIDE), COMPILE_SIDE) == []


def test_the_bundle_format_imports_neither_side():
    assert _crossing(_side_files(("bundle",)), COMPILE_SIDE + RUN_SIDE) == []


@pytest.mark.parametrize("source, expected", [
    ("from ..runtime.loader import load\n", "mtcc.runtime.loader"),
    ("import mtcc.runtime.executor\n", "mtcc.runtime.executor"),
    ("def f():\n    from mtcc.runtime import loader\n", "mtcc.runtime"),
])
def test_the_check_sees_every_kind_of_import(tmp_path, source, expected):
    """A planted import of the run side in a compile-side file is found."""
    fake = PACKAGE / "packing" / "_planted_for_test.py"
    fake.write_text(source)
    try:
        bad = _crossing([fake], RUN_SIDE)
    finally:
        fake.unlink()
    assert any(expected in b for b in bad), bad

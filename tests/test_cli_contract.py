"""The exit-code contract of every command: an unexpected exception (a bug) is exit 4
with one line that says to report it, never 1 (which means "the work fell short")."""
from __future__ import annotations

import subprocess
import sys

from conftest import ROOT

# A command registered only for this test, with mtcc's own contract wrapper.
PROGRAM = """
import sys
from mtcc.cli.app import command, main
from mtcc.errors import FellShort

@command("explode")
def explode(as_json):
    raise ZeroDivisionError("deliberate bug for the test")

@command("short")
def short(as_json):
    raise FellShort("rate ratio 0.9 < --fail-under 1.3")

main(sys.argv[1:])
"""


def _run(*args):
    return subprocess.run([sys.executable, "-c", PROGRAM, *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def test_internal_error_is_exit_4_with_one_line():
    proc = _run("explode")
    assert proc.returncode == 4, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "internal error" in lines[0] and "ZeroDivisionError" in lines[0]
    assert "report" in lines[0] and "--debug" in lines[0]
    assert proc.stdout == ""


def test_internal_error_traceback_only_with_debug():
    proc = _run("explode", "--debug")
    assert proc.returncode == 4
    assert "Traceback" in proc.stderr


def test_fell_short_is_exit_1():
    proc = _run("short", "--json")
    assert proc.returncode == 1
    assert proc.stderr.strip() == "mtcc: error: rate ratio 0.9 < --fail-under 1.3"
    assert proc.stdout == ""

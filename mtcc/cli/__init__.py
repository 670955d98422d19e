"""The `mtcc` command line: app (group, contract, entry point), commands, render."""
from . import commands  # noqa: F401 - registers the commands with the group
from .app import cli, main

__all__ = ["cli", "main"]

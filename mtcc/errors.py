"""Errors that map to the CLI's exit codes (docs/method.md, "The command-line contract").

Every message is one line that names the file or flag at fault; the CLI prints it
to stderr and exits with the class's code.  Library users catch `MtccError`.
"""


class MtccError(Exception):
    """Base class: carries the exit code the CLI uses for it."""

    exit_code = 2


class FellShort(MtccError):
    """The work ran and fell short (e.g. a QoS target missed with --fail-under)."""

    exit_code = 1


class BadInput(MtccError):
    """A file, flag, model or bundle is wrong."""

    exit_code = 2


class EnvironmentProblem(MtccError):
    """The machine lacks something: a dependency, a CPU feature."""

    exit_code = 3


# Exit code of an unexpected exception (a bug in mtcc, not in the user's input); the CLI
# maps every exception that is not an MtccError to it.
INTERNAL_ERROR_EXIT = 4
INTERRUPTED_EXIT = 130  # Ctrl-C, as a shell reports a process SIGINT ended
REPORT_HINT = "a bug in mtcc: rerun with --debug and report the traceback"

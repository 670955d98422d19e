"""The `mtcc` command group and its contract: --json and --debug on every command,
exit codes, one line on stderr per failure.

Contract (docs/method.md): exit 0 success, 1 the work ran and fell short, 2 bad
input, 3 environment, 4 internal error (a bug), 130 interrupted; every failure is one line on stderr
naming the file or flag (a traceback only with --debug); --json prints exactly one
JSON object on stdout, everything else goes to stderr.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import traceback

import click

from ..errors import INTERNAL_ERROR_EXIT, INTERRUPTED_EXIT, REPORT_HINT, MtccError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}



def make_console():
    from rich.console import Console

    # Wide enough for task names when stderr is a pipe (CI logs), as on a terminal.
    import shutil

    return Console(stderr=True, highlight=False, width=shutil.get_terminal_size((140, 24)).columns)



@contextlib.contextmanager
def stdout_is_stderr():
    """While the work runs, anything written to fd 1 (TVM's C++ logs included) goes
    to stderr, so --json leaves exactly one object on stdout."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    python_stdout, sys.stdout = sys.stdout, sys.stderr
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        sys.stdout = python_stdout



def fail(message: str, code: int) -> None:
    click.echo(f"mtcc: error: {message}", err=True)
    raise SystemExit(code)



def command(name: str, **kwargs):
    """A subcommand with --json and --debug and the contract's error handling.
    The wrapped function returns (result dict, exit code) or a result dict; under
    --json the dict is printed as the one object on stdout."""

    def decorate(fn):
        @cli.command(name, context_settings=CONTEXT, **kwargs)
        @click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout; logs go to stderr.")
        @click.option("--debug", is_flag=True, help="Show a traceback on errors.")
        @functools.wraps(fn)
        def wrapper(*args, as_json: bool, debug: bool, **kw):
            try:
                with stdout_is_stderr():
                    out = fn(*args, as_json=as_json, **kw)
            except MtccError as e:
                if debug:
                    traceback.print_exc()
                fail(str(e), e.exit_code)
            except KeyboardInterrupt:
                fail("interrupted", INTERRUPTED_EXIT)
            except Exception as e:  # noqa: BLE001 - the contract wants one line, not a traceback
                if debug:
                    traceback.print_exc()
                first = str(e).strip().splitlines()[0] if str(e).strip() else ""
                fail(f"internal error: {type(e).__name__}: {first} ({REPORT_HINT})", INTERNAL_ERROR_EXIT)
            result, code = out if isinstance(out, tuple) else (out, 0)
            if as_json and result is not None:
                click.echo(json.dumps(result, indent=None, sort_keys=False, default=str))
            return code

        return wrapper

    return decorate



@click.group(context_settings=CONTEXT)
@click.version_option(package_name="mtcc", prog_name="mtcc")
def cli():
    """mtcc: compile ONNX models into interference-aware bundles for multi-tenant CPU serving.

    \b
    Flow:  inspect -> tune -> pack -> run / bench
      mtcc inspect examples/models/squeezenet.onnx
      mtcc inspect model.onnx --input-shape input:1x3x224x224 --json

    Exit codes: 0 ok, 1 fell short, 2 bad input, 3 environment, 4 internal error (a bug),
    130 interrupted (Ctrl-C).
    """



def main(argv=None) -> None:
    """Entry point: click's own usage errors also become one line and exit 2."""
    try:
        code = cli.main(args=argv, prog_name="mtcc", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as e:  # `mtcc` alone: show help
        click.echo(e.ctx.get_help() if e.ctx else str(e), err=True)
        code = 0
    except click.ClickException as e:
        where = f" (see mtcc {e.ctx.info_name} --help)" if getattr(e, "ctx", None) and e.ctx.parent else ""
        click.echo(f"mtcc: error: {e.format_message()}{where}", err=True)
        code = e.exit_code
    except click.exceptions.Exit as e:
        code = e.exit_code
    except click.Abort:
        click.echo("mtcc: error: aborted", err=True)
        code = INTERRUPTED_EXIT
    sys.exit(code or 0)


"""The `mtcc` command: parse, call the library, print.  Nothing else lives here.

Contract (DESIGN.md): exit 0 success, 1 fell short, 2 bad input, 3 environment;
every failure is one line on stderr naming the file or flag (a traceback only
with --debug); --json prints exactly one JSON object on stdout, everything else
goes to stderr.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import traceback
from pathlib import Path

import click

from .errors import MtccError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


@contextlib.contextmanager
def _stdout_is_stderr():
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


def _fail(message: str, code: int) -> None:
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
                with _stdout_is_stderr():
                    out = fn(*args, as_json=as_json, **kw)
            except MtccError as e:
                if debug:
                    traceback.print_exc()
                _fail(str(e), e.exit_code)
            except KeyboardInterrupt:
                _fail("interrupted", 130)
            except Exception as e:  # noqa: BLE001 - the contract wants one line, not a traceback
                if debug:
                    traceback.print_exc()
                first = str(e).strip().splitlines()[0] if str(e).strip() else ""
                _fail(f"internal error: {type(e).__name__}: {first} (rerun with --debug for a traceback)", 1)
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

    Exit codes: 0 ok, 1 fell short, 2 bad input, 3 environment.
    """


# ---------------------------------------------------------------- inspect
@command(
    "inspect",
    epilog="""\b
Examples:
  mtcc inspect examples/models/resnet50.onnx
  mtcc inspect model.onnx --input-shape input_ids:1x128 --json | jq .total_flops
""",
)
@click.argument("path", type=click.Path(path_type=Path, dir_okay=True))
@click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME:DIMS",
              help="Fix a dynamic input, e.g. data:1x3x224x224 (repeatable).")
@click.option("--target", default="x86-64-v4", show_default=True,
              help="LLVM CPU the tasks are extracted for (mcpu name, 'host', or a JSON target).")
def inspect_cmd(path: Path, input_shapes, target, as_json: bool):
    """Show what mtcc will tune in an ONNX model: its tasks, FLOPs and counts."""
    from . import api

    info = api.inspect(path, input_shapes=list(input_shapes), target=target)
    if not as_json:
        _print_model_table(info)
    return info


def _shape(s) -> str:
    return "x".join(str(d) for d in s)


def _print_model_table(info: dict) -> None:
    from rich.table import Table

    console = _console()
    ins = ", ".join(f"{i['name']} {_shape(i['shape'])} {i['dtype']}" for i in info["inputs"])
    outs = ", ".join(f"{o['name']} {_shape(o['shape'])} {o['dtype']}" for o in info["outputs"])
    console.print(f"[bold]{info['model']}[/]  ({info['path']}, opset {info['opset']}, target {info['target']})")
    console.print(f"inputs:  {ins}\noutputs: {outs}")
    total = info["total_flops"] or 1.0
    table = Table(title=f"{info['num_tasks']} tasks, {info['num_calls']} calls, "
                        f"{info['total_flops'] / 1e9:.3f} GFLOP per inference")
    for col, just in (("#", "right"), ("task", "left"), ("op", "left"), ("shapes (in -> out)", "left"),
                      ("GFLOP", "right"), ("count", "right"), ("% FLOPs", "right")):
        table.add_column(col, justify=just)
    for k, t in enumerate(info["tasks"]):
        shapes = f"{_shape(t['inputs'][0]['shape']) if t['inputs'] else '-'} -> {_shape(t['outputs'][0]['shape'])}"
        share = 100.0 * t["flops"] * t["weight"] / total
        table.add_row(str(k), t["name"], t["kind"], shapes, f"{t['flops'] / 1e9:.4f}", str(t["weight"]),
                      f"{share:.1f}")
    console.print(table)


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
        code = 130
    sys.exit(code or 0)


if __name__ == "__main__":
    main()

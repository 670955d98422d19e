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

from .errors import BadInput, MtccError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _console():
    from rich.console import Console

    # Wide enough for task names when stderr is a pipe (CI logs), as on a terminal.
    import shutil

    return Console(stderr=True, highlight=False, width=shutil.get_terminal_size((140, 24)).columns)


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
    """Show what mtcc will tune in an ONNX model (tasks, FLOPs, counts), what a
    schedules folder holds, or what a .mtcc bundle holds (manifest, blocks, variants)."""
    from . import api
    from .packing import is_bundle

    if is_bundle(path):
        from .packing import inspect_bundle

        info = inspect_bundle(path)
        if not as_json:
            _print_bundle(info)
        return info
    if path.is_dir():
        from . import variants
        from .tuning import RECORDS, describe_schedules

        if not (path / RECORDS).exists():  # e.g. schedules/: the evidence for every model below it
            ev = variants.evidence(path)
            if not as_json:
                _print_evidence(_console(), ev)
            return ev
        info = describe_schedules(path)
        if (path / variants.VARIANTS).exists():
            info["variants"] = variants.load_variants(path)["tasks"]
            info["evidence"] = variants.evidence(path)["models"][0]
        if not as_json:
            _print_schedules(info)
            if "evidence" in info:
                _print_variants(_console(), path)
        return info
    info = api.inspect(path, input_shapes=list(input_shapes), target=target)
    if not as_json:
        _print_model_table(info)
    return info


def _rich_table(title, columns, rows):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for k, col in enumerate(columns):
        left = k == 0 or col in ("task", "variant", "note", "model", "target")
        table.add_column(col, justify="left" if left else "right")
    for row in rows:
        table.add_row(*row)
    return table


def _print_evidence(console, ev) -> None:
    from . import variants

    console.print(_rich_table("interference evidence (per model)", *variants.evidence_rows(ev)))


def _print_variants(console, folder) -> None:
    from . import variants

    var = variants.load_variants(folder)
    console.print(_rich_table(f"variants: {var['model']} ({var['target']})", *variants.variant_rows(var)))
    _print_evidence(console, variants.evidence(folder))


def _print_schedules(info: dict) -> None:
    console = _console()
    console.print(f"[bold]{info['schedules']}[/]: {info['model']} for {info['target']} ({info['layout']}), "
                  f"{info['records']} records ({info['valid_records']} valid), estimated "
                  f"{info['estimated_latency_ms']} ms")
    for run in info["runs"]:
        if run.get("status") in ("running", "interrupted"):  # killed: its records are kept, its totals unknown
            done = f"{run['status']} (records kept)"
        else:
            done = f"{run['trials_new']} trials in {run['wall_s']} s"
        console.print(f"  {run['date']}: {done} on {run['machine'].get('cpu')} "
                      f"({run['machine'].get('cores')} cores): {run['command']}")
    if info["tasks"]:
        _print_tune_table(console, {"model": info["model"], "target": info["target"], "layout": info["layout"],
                                    "trials_total": info["records"], "trials_new": 0, "wall_s": 0,
                                    "estimated_latency_ms": info["estimated_latency_ms"] or 0,
                                    "tasks": info["tasks"], "out": info["schedules"]})


def _print_bundle(info: dict) -> None:
    from rich.table import Table

    console = _console()
    ins = ", ".join(f"{i['name']} {_shape(i['shape'])} {i['dtype']}" for i in info["inputs"])
    outs = ", ".join(f"{o['name']} {_shape(o['shape'])} {o['dtype']}" for o in info["outputs"])
    console.print(f"[bold]{info['bundle']}[/]: {info['model']} ({info['size'] / 1e6:.2f} MB, format "
                  f"{info['format_version']}), {info['target']}, TVM {info['tvm_version']}, "
                  f"linked with {(info.get('toolchain') or {}).get('version', '?')}")
    console.print(f"inputs:  {ins}\noutputs: {outs}")
    console.print(f"CPU features required: {' '.join(info['cpu_features'])}")
    console.print("loadable here: yes" if info["loadable_here"] else f"loadable here: NO ({info['not_loadable_because']})")
    plan = info.get("plan") or {}
    table = Table(title=f"{len(info['blocks'])} blocks over {plan.get('calls', '?')} calls ({info.get('blocks_rule')})")
    for col in ("block", "calls", "est µs", "share", "latency table µs", "tasks"):
        table.add_column(col, justify="left" if col in ("tasks", "latency table µs") else "right")
    for b in info["blocks"]:
        cells = " ".join(f"{k}={v:g}" for k, v in b["latency_us"].items())
        table.add_row(str(b["index"]), f"{b['start']}-{b['end'] - 1}", f"{b['est_us']:.1f}",
                      f"{100 * b['share']:.0f}%", cells, ", ".join(b["tasks"]))
    console.print(table)
    table = Table(title=f"variants ({info.get('variants_source')}): {sum(len(t['variants']) for t in info['variants'])} "
                        f"for {len(info['variants'])} tasks, default first")
    for col in ("task", "calls", "variant", "function", "latency µs", "footprint"):
        table.add_column(col, justify="right" if col in ("calls", "footprint") else "left")
    for t in info["variants"]:
        ordered = sorted(t["variants"], key=lambda v: v["id"] != t["default"])
        for k, v in enumerate(ordered):
            cells = " ".join(f"{c}={u:g}" for c, u in v["latency_us"].items()) or "-"
            fp = f"{v['footprint']:.2f}" if isinstance(v.get("footprint"), (int, float)) else "-"
            table.add_row(t["task"] if k == 0 else "", str(t.get("calls", "")) if k == 0 else "", v["id"],
                          v["function"], cells, fp)
    console.print(table)


# ---------------------------------------------------------------- pack
@command(
    "pack",
    epilog="""\b
Examples:
  mtcc pack examples/models/squeezenet.onnx --schedules schedules/squeezenet/llvm-x86-64-v4 -o squeezenet.mtcc
  mtcc pack model.onnx --schedules DIR -o model.mtcc --json | jq .sha256      # CI: no tuning, same bytes
""",
)
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--schedules", required=True, type=click.Path(path_type=Path),
              help="Schedules folder (tuning database, tune.json, optional variants.json).")
@click.option("-o", "--out", "out", required=True, type=click.Path(path_type=Path), help="Bundle file to write.")
@click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME:DIMS")
@click.option("--max-blocks", type=click.IntRange(min=1), default=8, show_default=True,
              help="Most layer blocks the call plan is cut into.")
def pack_cmd(model, schedules, out, input_shapes, max_blocks, as_json):
    """Pack MODEL, every kept variant of every task, the call plan in blocks, the weights and
    the selector into one verified, reproducible bundle file."""
    from .packing import pack

    console = _console()
    result = pack(model, schedules, out, input_shapes=list(input_shapes), max_blocks=max_blocks,
                  progress=console.print)
    if not as_json:
        console.print(f"{result['path']}: {result['size'] / 1e6:.2f} MB, {result['variants']} variants of "
                      f"{result['tasks']} tasks ({result['variants_source']}), {result['blocks']} blocks, "
                      f"sha256 {result['sha256']}, {result['seconds']:.1f} s")
    return result


# ---------------------------------------------------------------- run
@command(
    "run",
    epilog="""\b
Examples:
  mtcc run model.mtcc --input in.npz --output out.npz
  mtcc run model.mtcc --input in.npz --cores 1 --variant fused_matmul_add=r37 --json
""",
)
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--input", "input_path", required=True, type=click.Path(path_type=Path),
              help=".npz with one array per model input, keyed by input name.")
@click.option("--output", "output_path", type=click.Path(path_type=Path), default=None,
              help=".npz to write, one array per model output, keyed by output name.")
@click.option("--cores", type=click.IntRange(min=1), default=None,
              help="Threads, pinned to the first N cores this process may use (default: TVM's choice).")
@click.option("--variant", "variant_specs", multiple=True, metavar="TASK=ID",
              help="Force a variant of a task (repeatable); ids as `mtcc inspect BUNDLE` lists them.")
@click.option("--repeat", type=click.IntRange(min=1), default=1, show_default=True,
              help="Inferences to run; latency_ms is their median.")
def run_cmd(bundle, input_path, output_path, cores, variant_specs, repeat, as_json):
    """One inference of a bundle through its call plan, .npz in and out."""
    import statistics
    import time

    from .packing import pin_cores

    used = pin_cores(cores)  # before anything starts TVM's thread pool
    choice = {}
    for spec in variant_specs:
        task, sep, vid = spec.partition("=")
        if not sep or not task or not vid:
            raise BadInput(f"--variant {spec!r}: expected TASK=ID")
        choice[task] = vid
    feeds = _read_npz(input_path)
    from .packing import load

    loaded = load(bundle)
    try:
        loaded.select(choice)
    except BadInput as e:
        raise BadInput(f"--variant: {e}") from None
    arrays = loaded.check_feeds(feeds, where=f"--input {input_path}")
    times, outs = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        outs = loaded.run(*arrays)
        times.append((time.perf_counter() - t) * 1e3)
    named = {o["name"]: y for o, y in zip(loaded.outputs, outs)}
    if output_path is not None:
        import numpy as np

        try:
            with open(output_path, "wb") as f:
                np.savez(f, **named)
        except OSError as e:
            raise BadInput(f"--output {output_path}: cannot write ({e.strerror})") from None
    result = {"bundle": str(bundle), "outputs": {k: {"shape": list(v.shape), "dtype": str(v.dtype)}
                                                  for k, v in named.items()},
              "latency_ms": round(statistics.median(times), 3), "first_ms": round(times[0], 3),
              "runs": repeat, "cores": used, "threads": cores, "variants": loaded.chosen(),
              "output": str(output_path) if output_path is not None else None}
    if not as_json:
        console = _console()
        for k, v in result["outputs"].items():
            console.print(f"{k}: {_shape(v['shape'])} {v['dtype']}")
        console.print(f"latency {result['latency_ms']:.3f} ms (median of {repeat}) on cores {used}"
                      + (f"; written to {output_path}" if output_path is not None else ""))
    return result


def _read_npz(path: Path) -> dict:
    import zipfile

    import numpy as np

    if not path.is_file():
        raise BadInput(f"--input {path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files"):
                raise BadInput(f"--input {path}: a single .npy array, expected an .npz keyed by input name")
            return {k: z[k] for k in z.files}
    except BadInput:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise BadInput(f"--input {path}: not a readable .npz without pickled objects ({e})") from None


# ---------------------------------------------------------------- tune
@command(
    "tune",
    epilog="""\b
Examples:
  mtcc tune examples/models/squeezenet.onnx --target x86-64-v4 --trials 2000
  mtcc tune model.onnx --out schedules/model/llvm-x86-64-v4 --resume     # continue after a crash
  mtcc tune model.onnx --trials 8 --rpc-tracker 127.0.0.1:9190 --rpc-key cpu --json
  mtcc tune model.onnx --out DIR --resume --task fused_conv2d_NCHW3c_add_relu --trials 200
""",
)
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--target", default=None,
              help="LLVM CPU to tune for: an mcpu name (x86-64-v4 is portable across this project's "
                   "AVX-512 machines), 'host' or a JSON target. Default: this machine.")
@click.option("--trials", type=click.IntRange(min=1), default=None,
              help="Total measured candidates for the model, shared across tasks by MetaSchedule "
                   "(records already in --out count). Default: 64 per compute task, 16 per other task.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Schedules folder (default schedules/<model>/<target-name>/).")
@click.option("--resume", is_flag=True, help="Continue a folder that already holds records.")
@click.option("--task", "only_tasks", multiple=True, metavar="NAME",
              help="Tune only this task (repeatable; names as `mtcc inspect` lists them); --trials then "
                   "counts the records of these tasks.")
@click.option("--layout", type=click.Choice(["NCHWc", "NCHW"]), default="NCHWc", show_default=True,
              help="Convolution data layout to tune and compile.")
@click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME:DIMS")
@click.option("--rpc-tracker", default=None, metavar="HOST:PORT", help="Measure through a TVM RPC tracker.")
@click.option("--rpc-key", default=None, help="Device key of the RPC servers to measure on.")
@click.option("--stage", type=click.Choice(["all", "search", "characterize"]), default="all", show_default=True,
              help="search: MetaSchedule only; characterize: measure the top-K candidates already in --out "
                   "under interference and write variants.json (resumable); all: search, then characterize.")
@click.option("--top-k", type=click.IntRange(min=1), default=8, show_default=True,
              help="Distinct candidates per task to characterize.")
@click.option("--max-variants", type=click.IntRange(min=1), default=5, show_default=True,
              help="Variants kept per task (the Pareto set is capped at this).")
@click.option("--calibration", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Calibration file (default schedules/calibration/<cpu>.json, else a quick 30 s calibration).")
def tune_cmd(model, target, trials, out, resume, only_tasks, layout, input_shapes, rpc_tracker, rpc_key, stage, top_k,
             max_variants, calibration, as_json):
    """Tune every operator task of MODEL with MetaSchedule (XGBoost cost model)."""
    from . import tuning
    from .target import PORTABLE_MCPU, describe, parse_target

    console = _console()
    tgt = parse_target(target)
    if target is None and stage != "characterize":  # characterize reads the target from --out
        console.print(f"target: {describe(tgt)} (this machine; --target {PORTABLE_MCPU} for schedules "
                      "that run on any AVX-512 machine)")
    rpc = tuning.RpcSpec.parse(rpc_tracker, rpc_key) if rpc_tracker else None
    if rpc_key and not rpc_tracker:
        raise BadInput("--rpc-key needs --rpc-tracker")
    if stage == "characterize" and out is None and target is None:
        raise BadInput("--stage characterize needs --out (or --target) to find the schedules folder")
    if calibration is not None and not Path(calibration).is_file():
        raise BadInput(f"--calibration {calibration}: no such file")
    dest = out or tuning.default_out(Path(model).stem, tgt)
    summary = {"out": str(dest)}
    if stage in ("all", "search"):
        if not resume and (Path(dest) / tuning.RECORDS).exists() and (Path(dest) / tuning.RECORDS).stat().st_size:
            raise BadInput(f"--out {dest}: already holds tuning records; pass --resume to continue them "
                           "or choose another --out")
        command = "mtcc tune " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else None
        with _TuneDisplay(console) as display:
            result = tuning.tune(model, target=tgt, trials=trials, out=dest, input_shapes=list(input_shapes),
                                 layout=layout, rpc=rpc, listeners=[display.update], command=command,
                                 only_tasks=list(only_tasks))
        summary = result.as_dict()
        if not as_json:
            _print_tune_table(console, summary)
    if stage in ("all", "characterize"):
        from . import variants

        summary["variants"] = variants.characterize_and_select(
            model, dest, top_k=top_k, max_variants=max_variants, calibration=calibration,
            input_shapes=list(input_shapes), progress=lambda line: console.print(f"characterize: {line}"))
        if not as_json:
            _print_variants(console, dest)
    return summary


class _TuneDisplay:
    """Live progress on a terminal, one line per batch otherwise (CI logs)."""

    def __init__(self, console):
        self.console = console
        self.live = None
        self.last_line = 0.0

    def __enter__(self):
        if self.console.is_terminal:
            from rich.live import Live

            self.live = Live(console=self.console, refresh_per_second=2, transient=True)
            self.live.__enter__()
        return self

    def __exit__(self, *exc):
        if self.live is not None:
            self.live.__exit__(*exc)

    def update(self, progress) -> None:
        done = progress.existing + progress.new_trials
        tuned = sum(1 for t in progress.tasks if t.best_secs < 1e9)
        eta = f"{progress.eta:.0f}s" if progress.eta is not None else "?"
        line = (f"tune: {done}/{progress.budget} trials, {tuned}/{len(progress.tasks)} tasks tuned, "
                f"elapsed {progress.elapsed:.0f}s, ETA {eta}")
        if self.live is None:
            self.console.print(line)
            return
        from rich.table import Table

        table = Table(title=line, title_justify="left")
        for col in ("task", "trials", "best µs", "GFLOP/s"):
            table.add_column(col, justify="left" if col == "task" else "right")
        for t in sorted(progress.tasks, key=lambda t: -t.flops * t.count)[:15]:
            best = f"{t.best_secs * 1e6:.1f}" if t.best_secs < 1e9 else "-"
            table.add_row(t.name, str(t.trials), best, f"{t.gflops:.1f}" if t.gflops else "-")
        self.live.update(table)


def _print_tune_table(console, s: dict) -> None:
    from rich.table import Table

    table = Table(title=f"{s['model']} tuned for {s['target']} ({s['layout']}): {s['trials_total']} trials "
                        f"({s['trials_new']} new in {s['wall_s']:.0f} s), estimated {s['estimated_latency_ms']:.2f} ms")
    for col in ("task", "calls", "trials", "valid", "best µs", "GFLOP/s"):
        table.add_column(col, justify="left" if col == "task" else "right")
    for t in s["tasks"]:
        table.add_row(t["name"], str(t["count"]), str(t["trials"]), str(t["valid"]),
                      f"{t['best_us']:.1f}" if t["best_us"] else "-", f"{t['gflops']:.1f}" if t["gflops"] else "-")
    console.print(table)
    console.print(f"schedules: {s['out']}")


# ---------------------------------------------------------------- calibrate
@command(
    "calibrate",
    epilog="""\b
Examples:
  mtcc calibrate                                   # writes schedules/calibration/<cpu>.json
  mtcc calibrate --out cal.json --seconds 90 --json
""",
)
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Calibration file to write (default schedules/calibration/<cpu>.json).")
@click.option("--seconds", type=click.FloatRange(min=10), default=60.0, show_default=True,
              help="Time budget for the measurements.")
@click.option("--cores", default=None, metavar="LIST",
              help="Cores to use, probe on the first, stressors on the rest (default: all, e.g. 0,1).")
def calibrate_cmd(out, seconds, cores, as_json):
    """Measure interference levels on this machine: a fixed probe alone and beside each stressor."""
    from .interference import calibrate
    from .interference.machine import cpu_slug

    core_list = None
    if cores:
        try:
            core_list = [int(c) for c in cores.split(",")]
        except ValueError:
            raise BadInput(f"--cores {cores!r}: expected a comma-separated list such as 0,1") from None
    dest = out or Path("schedules") / "calibration" / f"{cpu_slug()}.json"
    Path(dest).parent.mkdir(parents=True, exist_ok=True)
    cal = calibrate(cores=core_list, seconds_budget=seconds, out=dest)
    cal["path"] = str(dest)
    if not as_json:
        _print_calibration(cal)
    return cal


def _print_calibration(cal: dict) -> None:
    from rich.table import Table

    console = _console()
    table = Table(title=f"interference levels on {cal['machine'].get('cpu_model', '?')}")
    for col in ("level", "stressor", "memory probe slowdown", "compute probe slowdown"):
        table.add_column(col)
    for name, level in cal["levels"].items():
        st = level.get("stressor") or {}
        what = f"{st.get('kind')} {st.get('pattern')} {st.get('working_set_mib')} MiB" if st else "-"
        table.add_row(name, what, f"{level['memory_slowdown']:.2f}x", f"{level['compute_slowdown']:.2f}x")
    console.print(table)
    console.print(cal["verdict"])
    console.print(f"written to {cal['path']}")


# ---------------------------------------------------------------- bench
@command(
    "bench",
    epilog="""\b
Examples:
  mtcc bench --single examples/models/squeezenet.onnx      # uses schedules/squeezenet/llvm-x86-64-v4
  mtcc bench --single a.onnx b.onnx --schedules sa/ --schedules sb/ --threads 1 --json
""",
)
@click.argument("models", nargs=-1, type=click.Path(path_type=Path))
@click.option("--single", is_flag=True, help="Isolated latency per model, system and thread count.")
@click.option("--schedules", "schedules", multiple=True, type=click.Path(path_type=Path),
              help="Schedules folder per model, in order (default schedules/<model>/llvm-x86-64-v4 if present).")
@click.option("--threads", "threads", multiple=True, type=click.IntRange(min=1),
              help="Thread counts to measure (repeatable; default 1 and 2).")
@click.option("--repeats", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True)
@click.option("--baseline", "baselines", multiple=True, type=click.Choice(["onnxruntime", "openvino"]),
              help="Baselines besides mtcc (default: both; OpenVINO in f32 and in its default precision).")
def bench_cmd(models, single, schedules, threads, repeats, warmup, baselines, as_json):
    """Benchmark mtcc against ONNX Runtime and OpenVINO (ratios measured side by side)."""
    from .bench.single import bench_single

    if not single:
        raise BadInput("only `mtcc bench --single` exists so far; the multi-tenant QoS benchmark is not built yet")
    if not models:
        raise BadInput("give at least one MODEL.onnx")
    if schedules and len(schedules) != len(models):
        raise BadInput(f"--schedules given {len(schedules)} times for {len(models)} models: give one per model")
    items = []
    for k, m in enumerate(models):
        sched = schedules[k] if schedules else Path("schedules") / Path(m).stem / "llvm-x86-64-v4"
        items.append({"model": m, "schedules": sched if Path(sched).exists() else None})
    systems = ["mtcc", "onnxruntime"]
    if not baselines or "openvino" in baselines:
        systems += ["openvino", "openvino-default"]
    console = _console()
    report = bench_single(items, threads=threads or (1, 2), repeats=repeats, warmup=warmup, systems=systems,
                          progress=console.print)
    if not as_json:
        _print_single(console, report)
    return report


def _print_single(console, report: dict) -> None:
    from rich.table import Table

    table = Table(title="isolated latency (median of interleaved runs)")
    for col in ("model", "threads", "system", "p50 ms", "p99 ms", "x ONNX Runtime", "max |err|"):
        table.add_column(col, justify="left" if col in ("model", "system") else "right")
    for r in report["results"]:
        if "skipped" in r:
            table.add_row(r["model"], str(r["threads"]), r["system"], "-", "-", "-", r["skipped"][:40])
            continue
        table.add_row(r["model"], str(r["threads"]), r["system"], f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}",
                      f"{r.get('ratio_to_onnxruntime', float('nan')):.2f}", f"{r['max_abs_err_vs_onnxruntime']:.1e}")
    console.print(table)
    console.print(f"vCPUs before: {report['machine']['vcpu_sharing_before']}; "
                  f"after: {report['machine']['vcpu_sharing_after']}")


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

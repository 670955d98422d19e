"""The commands: parse, call the library, hand the result to render.  Nothing else."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from ..bench.qos import MIXES
from ..errors import INTERRUPTED_EXIT, BadInput, FellShort
from ..packing import blocks as block_rule
from . import render
from .app import command, make_console

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
    from .. import api
    from ..runtime.loader import inspect_bundle, is_bundle

    if is_bundle(path):
        info = inspect_bundle(path)
        if not as_json:
            render.print_bundle(info)
        return info
    if path.is_dir():
        from .. import variants
        from ..tune.database import RECORDS
        from ..tune.driver import describe_schedules

        if not (path / RECORDS).exists():  # e.g. schedules/: the evidence for every model below it
            ev = variants.evidence(path)
            if not as_json:
                render.print_evidence(make_console(), ev)
            return ev
        info = describe_schedules(path)
        if (path / variants.VARIANTS).exists():
            info["variants"] = variants.load_variants(path)["tasks"]
            info["evidence"] = variants.evidence(path)["models"][0]
        if not as_json:
            render.print_schedules(info)
            if "evidence" in info:
                render.print_variants(make_console(), path)
        return info
    info = api.inspect(path, input_shapes=list(input_shapes), target=target)
    if not as_json:
        render.print_model_table(info)
    return info


# ---------------------------------------------------------------- pack
@command(
    "pack",
    epilog="""\b
Examples:
  mtcc pack examples/models/squeezenet.onnx --schedules schedules/squeezenet/llvm-x86-64-v4 -o squeezenet.mtcc
  mtcc pack model.onnx --schedules DIR -o model.mtcc --json | jq .sha256      # CI: no tuning, same bytes
  mtcc pack model.onnx --schedules DIR -o model-avx2.mtcc --target x86-64-v3  # for a CPU without AVX-512
""",
)
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--schedules", required=True, type=click.Path(path_type=Path),
              help="Schedules folder (tuning database, tune.json, optional variants.json).")
@click.option("-o", "--out", "out", required=True, type=click.Path(path_type=Path), help="Bundle file to write.")
@click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME:DIMS")
@click.option("--max-blocks", type=click.IntRange(min=1), default=block_rule.DEFAULT_MAX_BLOCKS, show_default=True,
              help="Most layer blocks the call plan is cut into.")
@click.option("--min-block-us", type=click.FloatRange(min=0), default=block_rule.DEFAULT_MIN_BLOCK_US,
              show_default=True,
              help="Shortest block (µs on the target's cores): shorter runs of calls merge into a neighbour.")
@click.option("--target", default=None,
              help="Build for this CPU instead of the one the schedules were tuned for (same records "
                   "applied: same outputs, usually slower), e.g. x86-64-v3 for a CPU without AVX-512.")
def pack_cmd(model, schedules, out, input_shapes, max_blocks, min_block_us, target, as_json):
    """Pack MODEL, every kept variant of every task, the call plan in blocks, the weights and
    the selector into one verified, reproducible bundle file."""
    from ..packing import pack

    console = make_console()
    result = pack(model, schedules, out, input_shapes=list(input_shapes), max_blocks=max_blocks,
                  min_block_us=min_block_us, target=target, progress=console.print)
    if not as_json:
        console.print(f"{result['path']}: {result['size'] / 1e6:.2f} MB, {result['variants']} variants of "
                      f"{result['tasks']} tasks ({result['variants_source']}), {result['blocks']} blocks, "
                      f"sha256 {result['sha256']}, {result['seconds']:.1f} s")
    return result


# ---------------------------------------------------------------- run
# --cores and --variant mean the same for every command that runs a bundle in this process
cores_option = click.option("--cores", type=click.IntRange(min=1), default=None,
                            help="Threads, pinned to the first N cores this process may use (default: TVM's choice).")
variant_option = click.option("--variant", "variant_specs", multiple=True, metavar="TASK=ID",
                              help="Run this variant of a task (repeatable); ids as `mtcc inspect BUNDLE` lists them.")


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
@cores_option
@variant_option
@click.option("--repeat", type=click.IntRange(min=1), default=1, show_default=True,
              help="Inferences to run; latency_ms is their median.")
def run_cmd(bundle, input_path, output_path, cores, variant_specs, repeat, as_json):
    """One inference of a bundle through its call plan, .npz in and out."""
    import statistics

    from ..runtime.loader import pin_cores

    used = pin_cores(cores)  # before anything starts TVM's thread pool
    choice = _variant_choice(variant_specs)
    feeds = _read_npz(input_path)
    from ..runtime.loader import load

    loaded = load(bundle)
    try:
        loaded.select(choice)
    except BadInput as e:
        raise BadInput(f"--variant: {e}") from None
    arrays = loaded.check_feeds(feeds, where=f"--input {input_path}")
    with loaded.pinned(used):
        outs, times = loaded.run_timed(arrays, repeat)
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
        console = make_console()
        for k, v in result["outputs"].items():
            console.print(f"{k}: {render.shape(v['shape'])} {v['dtype']}")
        console.print(f"latency {result['latency_ms']:.3f} ms (median of {repeat}) on cores {used}"
                      + (f"; written to {output_path}" if output_path is not None else ""))
    return result


# ---------------------------------------------------------------- profile
@command(
    "profile",
    epilog="""\b
Examples:
  mtcc profile build/squeezenet.mtcc --cores 1
  mtcc profile build/squeezenet.mtcc --cores 2 --variant fused_conv2d_add_relu=r12 --json | jq '.tasks[:5]'
""",
)
@click.argument("bundle", type=click.Path(path_type=Path))
@cores_option
@variant_option
@click.option("--repeat", type=click.IntRange(min=1), default=20, show_default=True,
              help="Timed inferences (medians are reported).")
@click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True, help="Untimed inferences first.")
@click.option("--top", type=click.IntRange(min=1), default=15, show_default=True, help="Tasks shown in the table.")
def profile_cmd(bundle, cores, variant_specs, repeat, warmup, top, as_json):
    """Where a bundle's time goes: every call of its plan timed through the plan executor
    (what the runtime runs) at the given cores -- per task and per block: time, share,
    GFLOP/s and the variant that ran."""
    from ..bench.calls import profile_calls
    from ..runtime.loader import load, pin_cores

    used = pin_cores(cores)  # before anything starts TVM's thread pool
    loaded = load(bundle)
    try:
        loaded.select(_variant_choice(variant_specs))
    except BadInput as e:
        raise BadInput(f"--variant: {e}") from None
    with loaded.pinned(used):
        report = {**profile_calls(loaded, repeat=repeat, warmup=warmup), "cores": used}
    if not as_json:
        render.print_profile(make_console(), report, top)
    return report


def _variant_choice(specs) -> dict[str, str]:
    """{task: variant id} from --variant TASK=ID flags."""
    choice = {}
    for spec in specs:
        task, sep, vid = spec.partition("=")
        if not sep or not task or not vid:
            raise BadInput(f"--variant {spec!r}: expected TASK=ID")
        choice[task] = vid
    return choice


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
  mtcc tune model.onnx --target x86-64-v4 --time-budget 60    # the whole tune in about an hour
  mtcc tune model.onnx --out schedules/model/llvm-x86-64-v4 --resume     # continue after a crash
  mtcc tune model.onnx --trials 8 --rpc-tracker 127.0.0.1:9190 --rpc-key cpu --json
  mtcc tune model.onnx --out DIR --resume --task fused_conv2d_NCHW3c_add_relu --trials 200
  mtcc tune model.onnx --out DIR --resume --measure-threads 1 --task fused_conv2d_NCHWc17_add13_relu10 --trials 110
  mtcc tune model.onnx --out DIR --resume --measure-threads 1 --refine 20   # the 20 tasks with most to win
  mtcc tune model.onnx --out DIR --resume --cold-caches --task fused_conv2d_NCHWc17_add13_relu10 --trials 200
  mtcc tune model.onnx --out DIR --resume --cold-caches --measure-threads 1 --refine 8   # the 8 losing most to cold operands
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
                   "counts the records of these tasks, and characterization measures only them (with "
                   "--stage characterize too).")
@click.option("--refine", type=click.IntRange(min=1), default=None, metavar="K",
              help="With --resume: tune only the K tasks with the most time to win by their records "
                   "(calls x best time x shortfall of their GFLOP/s from the 90th percentile of their kind's), "
                   "e.g. the small tasks a shared budget left with a few trials. With --cold-caches: the K "
                   "compute tasks whose best code runs most time slower with its operands flushed (at least "
                   "1.1x; timed alone on one core first). --trials then counts their records (default: what "
                   "they hold plus 48 each).")
@click.option("--time-budget", type=click.FloatRange(min=1), default=None, metavar="MINUTES",
              help="The whole tune within about this wall time, the same steps for any model: a first round "
                   "of 8 candidates a task and rounds of --refine 8 on all cores until 50 %, rounds of --refine 8 "
                   "--measure-threads 1 until 70 %, characterization in the rest (tune.recipe): as many of each task's "
                   "top-K candidates as fit, the biggest tasks' first.")
@click.option("--population", type=click.IntRange(min=8), default=None, metavar="N",
              help="Schedules MetaSchedule's evolutionary search draws per batch (default 512, its own). The "
                   "search, not the measuring, sets a batch's wall time: a tiny model's 8 trials took 52-62 s at "
                   "512 and 13 s at 64 on an Intel Xeon VM; a smaller population searches less of each space. "
                   "tune.json records it.")
@click.option("--layout", type=click.Choice(["NCHWc", "NCHW"]), default="NCHWc", show_default=True,
              help="Convolution data layout to tune and compile.")
@click.option("--fold-batch-norm/--no-fold-batch-norm", "fold_batch_norm", default=None,
              help="Fold BatchNormalization into the Conv before it, so the convolution's task ends in its "
                   "bias, residual add and ReLU (default: on for a new --out; --resume keeps what tune.json records).")
@click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME:DIMS")
@click.option("--rpc-tracker", default=None, metavar="HOST:PORT", help="Measure through a TVM RPC tracker.")
@click.option("--rpc-key", default=None, help="Device key of the RPC servers to measure on.")
@click.option("--measure-threads", type=click.IntRange(min=1), default=None, metavar="N",
              help="Time every candidate on N threads (default: the target's cores). A run with --measure-threads 1 "
                   "beside the all-core search adds candidates tiled for one core: characterization ranks them "
                   "among their own, so the 1-core tables get their fastest.")
@click.option("--cold-caches", is_flag=True,
              help="Time every candidate once per run with its weights and other operands flushed from the caches "
                   "(MetaSchedule's CPU cache flush), as they are inside the model: for tasks that run slower in "
                   "place than alone (`mtcc profile`). The folder then compiles these tasks from this search; "
                   "characterization ranks its candidates first, keeps the earlier ones after them, and times "
                   "a claim that an earlier one is faster as a cold pair.")
@click.option("--stage", type=click.Choice(["all", "search", "characterize"]), default="all", show_default=True,
              help="search: MetaSchedule only; characterize: measure the top-K candidates already in --out "
                   "under interference and write variants.json (resumable); all: search, then characterize.")
@click.option("--top-k", type=click.IntRange(min=1), default=8, show_default=True,
              help="Distinct candidates per task to characterize.")
@click.option("--max-variants", type=click.IntRange(min=1), default=5, show_default=True,
              help="Variants kept per task (the Pareto set is capped at this).")
@click.option("--calibration", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Calibration file (default schedules/calibration/<cpu>.json, else a quick 30 s calibration).")
@click.option("--confirm-rounds", type=click.IntRange(min=0), default=10, show_default=True, metavar="N",
              help="Time every cell in which a kept variant beats its task's default again, the two in turns for "
                   "N rounds under that cell's cores and level; the selection reads the pair's ratio (0: skip).")
@click.option("--caches", type=click.Choice(["hot", "cold"]), default=None,
              help="How characterization times a candidate: hot = calls back to back on the same data; cold = "
                   "one call at a time with the private caches evicted before each, as inside a model. "
                   "Default: what the folder's characterization.json used, else hot.")
def tune_cmd(model, target, trials, out, resume, only_tasks, refine, time_budget, population, layout, fold_batch_norm,
             input_shapes, rpc_tracker, rpc_key, measure_threads, cold_caches, stage, top_k, max_variants, calibration,
             confirm_rounds, caches, as_json):
    """Tune every operator task of MODEL with MetaSchedule (XGBoost cost model)."""
    started = time.monotonic()
    from ..tune import driver as tuning
    from ..tune.database import holds_records
    from ..target import PORTABLE_MCPU, describe, parse_target

    console = make_console()
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
        if not resume and holds_records(dest):
            raise BadInput(f"--out {dest}: already holds tuning records; pass --resume to continue them "
                           "or choose another --out")
        if refine is not None and not resume:
            raise BadInput("--refine needs --resume: it picks among the tasks of a folder already searched")
        command = "mtcc tune " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else None
        if time_budget is not None:
            refused = {"--trials": trials is not None, "--task": bool(only_tasks), "--refine": refine is not None,
                       "--measure-threads": measure_threads is not None, "--cold-caches": cold_caches,
                       "--population": population is not None}
            summary = _tune_within(model, tgt, dest, time_budget, command, console, refused,
                                   input_shapes=list(input_shapes), layout=layout, rpc=rpc,
                                   fold_batch_norm=fold_batch_norm)
        else:
            with render.TuneDisplay(console) as display:
                result = tuning.tune(model, target=tgt, trials=trials, out=dest, input_shapes=list(input_shapes),
                                     layout=layout, rpc=rpc, listeners=[display.update], command=command,
                                     only_tasks=list(only_tasks), fold_batch_norm=fold_batch_norm,
                                     measure_threads=measure_threads, refine=refine, cold_caches=cold_caches,
                                     notes=lambda line: console.print(f"tune: {line}"),
                                     population=population or tuning.DEFAULT_POPULATION)
            summary = result.as_dict()
        if not as_json:
            render.print_tune_table(console, summary)
    if stage in ("all", "characterize"):
        from .. import variants

        # Only the tasks this run searched (or named): the others' tables and their
        # confirmed pairs stay as measured, on whichever machine measured them.
        searched = list(only_tasks) or summary.get("refined") or None
        # the recipe's budget: what its search left (recipe.py), the top-K trimmed to fit
        budget_s = (max(0.0, time_budget * 60 - (time.monotonic() - started))
                    if time_budget is not None and stage == "all" else None)
        summary["variants"] = variants.characterize_and_select(
            model, dest, tasks=searched, top_k=top_k, max_variants=max_variants, calibration=calibration,
            confirm_rounds=confirm_rounds, budget_s=budget_s,
            caches=caches or variants.characterization_caches(dest),
            input_shapes=list(input_shapes), progress=lambda line: console.print(f"characterize: {line}"))
        if not as_json:
            render.print_variants(console, dest)
    return summary


def _tune_within(model, tgt, dest, time_budget, command, console, refused: dict, **tune_options) -> dict:
    """`mtcc tune --time-budget`: the recipe's search steps (tune.recipe).  `refused`: {option:
    given} of the options the recipe sets itself; `tune_options`: the rest of driver.tune's
    options the command passes on (input shapes, layout, RPC, batch-norm folding)."""
    from ..tune import recipe

    clash = [name for name, given in refused.items() if given]
    if clash:
        raise BadInput(f"--time-budget runs the recipe's own steps: drop {', '.join(clash)}")
    with render.TuneDisplay(console) as display:
        steps = recipe.search_within(
            model, budget_s=time_budget * 60, target=tgt, out=dest, command=command,
            listeners=[display.update], notes=lambda line: console.print(f"tune: {line}"), **tune_options)
    return steps.as_dict()


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
    from ..interference import calibrate
    from ..interference.machine import cpu_slug

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
        render.print_calibration(cal)
    return cal


# ---------------------------------------------------------------- bench
@command(
    "bench",
    epilog="""\b
Examples:
  mtcc bench --mix light --duration 5                # example bundles, every policy, ORT + OpenVINO
  mtcc bench a.mtcc b.mtcc --policy block-adaptive --policy model-fcfs --baseline onnxruntime
  mtcc bench --mix medium --qos 1.5 --qos 2 --qos 4 --qos 4@1 --plots out/ --json > bench.json
  mtcc bench --mix light --simulate 16 --simulate 64 --fail-under 1.3     # CI: exit 1 below 1.3x
  mtcc bench --single examples/models/squeezenet.onnx --threads 1 --json  # isolated latency
\b
--qos X sets each model's target to X times its isolated latency on all cores;
X@B on B cores.  The figure of merit is the highest request rate at which every
model has 99 % of its requests within target.
""",
)
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--single", is_flag=True, help="Isolated latency per model (ONNX files), system and thread count.")
@click.option("--mix", type=click.Choice(sorted(MIXES)), help="A preset of the example models (default: light).")
@click.option("--policy", "policies", multiple=True, help="mtcc policies to run (repeatable; default: all five).")
@click.option("--baseline", "baselines", multiple=True, type=click.Choice(["onnxruntime", "openvino"]),
              help="Baselines (default: both; OpenVINO in f32 and in its default precision).")
@click.option("--no-baselines", is_flag=True, help="mtcc policies only.")
@click.option("--qos", "qos", multiple=True, help="Target X or X@B (repeatable; default the grid 1.5, 2, 4 at all cores and at 1).")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), help="Requests/s of the fixed-rate run (default: model-fcfs's best).")
@click.option("--duration", type=click.FloatRange(min=0.5), default=8.0, show_default=True,
              help="Seconds per trial (at least).")
@click.option("--min-requests", type=click.IntRange(min=1), default=200, show_default=True,
              help="Requests per trial at least (low rates run longer).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--searches", type=click.IntRange(min=1), default=1, show_default=True, help="Rate searches per system (their spread is reported).")
@click.option("--max-trials", type=click.IntRange(min=2), default=10, show_default=True, help="Trials per rate search at most.")
@click.option("--lanes", type=click.IntRange(min=1),
              help="Requests of one model mtcc runs at once (default: the cores shared out among the models).")
@click.option("--plots", "plots", type=click.Path(path_type=Path), help="Write PNG plots into this folder.")
@click.option("--fail-under", type=float, help="Exit 1 when block-adaptive / model-fcfs best rate is below this.")
@click.option("--simulate", "simulate", multiple=True, type=click.IntRange(min=1), help="Also simulate this many cores (repeatable).")
@click.option("--onnx", "onnx_paths", multiple=True, type=click.Path(path_type=Path),
              help="ONNX file per bundle, in order, for the baselines (default examples/models/<model>.onnx).")
@click.option("--schedules", "schedules", multiple=True, type=click.Path(path_type=Path),
              help="--single: schedules folder per model, in order (default schedules/<model>/llvm-x86-64-v4).")
@click.option("--threads", "threads", multiple=True, type=click.IntRange(min=1),
              help="--single: thread counts to measure (repeatable; default 1 and 2).")
@click.option("--repeats", type=click.IntRange(min=1), default=20, show_default=True,
              help="--single: timed runs per system.")
@click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True, help="--single: untimed runs first.")
def bench_cmd(paths, single, mix, policies, baselines, no_baselines, qos, rate, duration, min_requests, seed, searches, max_trials,
              lanes, plots, fail_under, simulate, onnx_paths, schedules, threads, repeats, warmup, as_json):
    """Requests served within their latency targets: every mtcc policy against ONNX
    Runtime and OpenVINO on the same load, in one run (or --single: isolated latency)."""
    console = make_console()
    if single:
        return _bench_single(console, paths, schedules, threads, repeats, warmup, baselines, as_json)
    from ..bench import qos as qos_bench

    if paths and mix:
        raise BadInput("give bundles or --mix, not both")
    qos_bench.check_policies(policies)  # flags first: refuse before any packing or serving
    targets = [qos_bench.parse_target(q) for q in qos] or list(qos_bench.DEFAULT_GRID)
    systems = qos_bench.systems_for(policies or qos_bench.MTCC_POLICIES,
                                    () if no_baselines else (baselines or ("onnxruntime", "openvino")))
    from ..bench.baseline_server import check_installed

    for kind in sorted({s.kind for s in systems if s.kind != "mtcc"}):
        check_installed(kind)
    if paths:
        bundles, onnx = _named_bundles(paths, onnx_paths)
    else:
        bundles, onnx = qos_bench.example_bundles(qos_bench.MIXES[mix or "light"], progress=console.print)
    headline = targets[0] if len(qos) == 1 else next((t for t in targets if t == qos_bench.Target(2.0)), targets[0])
    missing = [n for n in bundles if n not in onnx and any(s.kind != "mtcc" for s in systems)]
    if missing:
        raise BadInput(f"no ONNX file for {', '.join(missing)}: give --onnx per bundle, or --no-baselines")
    report = qos_bench.bench_mix(bundles, onnx, systems=systems, targets=targets, headline=headline,
                                 duration_s=duration, seed=seed, rate=rate, repeats=searches,
                                 simulate=tuple(simulate), max_trials=max_trials, min_requests=min_requests, lanes=lanes,
                                 progress=console.print)
    if plots and not report.get("interrupted"):
        report["plots"] = [str(p) for p in render.bench_plots(report, plots)]
    if not as_json:
        render.print_bench(console, report)
    if report.get("interrupted"):  # Ctrl-C: the measured part is reported, and the exit says so
        console.print("interrupted: no plots, no simulation; the report above holds what was measured")
        return report, INTERRUPTED_EXIT
    ratio = report["summary"].get("rate_ratio_vs_model_wise_fcfs")
    if fail_under is not None and (ratio is None or ratio < fail_under):
        console.print(f"[red]block-adaptive / model-fcfs best rate {ratio} < --fail-under {fail_under}[/red]")
        return report, FellShort.exit_code
    return report


def _named_bundles(paths, onnx_paths) -> tuple[dict, dict]:
    from ..runtime.profile import ModelProfile

    if onnx_paths and len(onnx_paths) != len(paths):
        raise BadInput(f"--onnx given {len(onnx_paths)} times for {len(paths)} bundles: give one per bundle")
    bundles, onnx = {}, {}
    for k, path in enumerate(paths):
        if not path.is_file():
            raise BadInput(f"{path}: no such bundle")
        name = ModelProfile.from_bundle(path).name
        if name in bundles:
            raise BadInput(f"{path}: a second bundle of model {name!r}")
        bundles[name] = path
        guess = onnx_paths[k] if onnx_paths else Path("examples") / "models" / f"{name}.onnx"
        if guess.is_file():
            onnx[name] = guess
        elif onnx_paths:
            raise BadInput(f"--onnx {guess}: no such file")
    return bundles, onnx


def _bench_single(console, models, schedules, threads, repeats, warmup, baselines, as_json):
    from ..bench.single import bench_single

    if not models:
        raise BadInput("give at least one MODEL.onnx")
    if schedules and len(schedules) != len(models):
        raise BadInput(f"--schedules given {len(schedules)} times for {len(models)} models: give one per model")
    from ..bench.qos import example_schedules
    from ..target import host_portable_mcpu

    items = []
    for k, m in enumerate(models):
        sched = schedules[k] if schedules else example_schedules(Path("."), Path(m).stem, host_portable_mcpu())
        items.append({"model": m, "schedules": sched if Path(sched).exists() else None})
    systems = ["mtcc", "mtcc-plan", "onnxruntime"]
    if not baselines or "openvino" in baselines:
        systems += ["openvino", "openvino-default"]
    report = bench_single(items, threads=threads or (1, 2), repeats=repeats, warmup=warmup, systems=systems,
                          progress=console.print)
    if not as_json:
        render.print_single(console, report)
    return report


if __name__ == "__main__":
    main()

"""How the CLI shows results to a person: rich tables and live progress on stderr.
Commands compute; this module only draws."""
from __future__ import annotations

from ..bench.qos import HEADLINE, REFERENCE
from ..cells import DEMAND_GAIN
from .app import make_console

def rich_table(title, columns, rows):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for k, col in enumerate(columns):
        left = k == 0 or col in ("task", "variant", "note", "model", "target", "system")
        table.add_column(col, justify="left" if left else "right")
    for row in rows:
        table.add_row(*row)
    return table


def print_evidence(console, ev) -> None:
    from .. import variants

    console.print(rich_table("interference evidence (per model)", *evidence_rows(ev)))


def print_variants(console, folder) -> None:
    from .. import variants

    var = variants.load_variants(folder)
    console.print(rich_table(f"variants: {var['model']} ({var['target']})", *variant_rows(var)))
    print_evidence(console, variants.evidence(folder))


def print_schedules(info: dict) -> None:
    console = make_console()
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
        print_tune_table(console, {"model": info["model"], "target": info["target"], "layout": info["layout"],
                                    "trials_total": info["records"], "trials_new": 0, "wall_s": 0,
                                    "estimated_latency_ms": info["estimated_latency_ms"] or 0,
                                    "tasks": info["tasks"], "out": info["schedules"]})


def print_bundle(info: dict) -> None:
    from rich.table import Table

    console = make_console()
    ins = ", ".join(f"{i['name']} {shape(i['shape'])} {i['dtype']}" for i in info["inputs"])
    outs = ", ".join(f"{o['name']} {shape(o['shape'])} {o['dtype']}" for o in info["outputs"])
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
    for col in ("task (more cores)", "calls", "variant", "function", "latency µs", "footprint"):
        table.add_column(col, justify="right" if col in ("calls", "footprint") else "left",
                         overflow="fold" if col in ("function", "task (more cores)") else "ellipsis")
    scaling = info.get("task_scaling", {})
    for t in info["variants"]:
        ordered = sorted(t["variants"], key=lambda v: v["id"] != t["default"])
        for k, v in enumerate(ordered):
            cells = " ".join(f"{c}={u:g}" for c, u in v["latency_us"].items()) or "-"
            fp = f"{v['footprint']:.2f}" if isinstance(v.get("footprint"), (int, float)) else "-"
            task = f"{t['task']}\n{_scaling_text(scaling.get(t['task']))}" if k == 0 else ""
            table.add_row(task, str(t.get("calls", "")) if k == 0 else "", v["id"], v["function"], cells, fp)
    console.print(table)
    flat = [name for name, s in scaling.items() if s.get("demand") == 1 and s.get("speedup")]
    if flat:
        console.print(f"[yellow]{len(flat)} of {len(scaling)} tasks are not worth more cores[/] (their fastest variant "
                      f"at each core count gains < {DEMAND_GAIN - 1:.0%} per step up; `layer` runs their calls on one "
                      f"core and the block rule cuts where this changes): " + ", ".join(flat))


def _scaling_text(s: dict | None) -> str:
    """A task's best speed-up from 1 core to the most measured, and whether it is worth it."""
    if not s or not s.get("speedup"):
        return "-"
    top = max(s["best_us"])
    return f"{s['speedup']:.2f}x on {top}c" + (" [yellow]-> 1 core[/]" if s.get("demand") == 1 else "")


class TuneDisplay:
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


def print_tune_table(console, s: dict) -> None:
    from rich.table import Table

    table = Table(title=f"{s['model']} tuned for {s['target']} ({s['layout']}): {s['trials_total']} trials "
                        f"({s['trials_new']} new in {s['wall_s']:.0f} s), estimated {s['estimated_latency_ms']:.2f} ms")
    for col in ("task", "calls", "trials", "valid", "best µs", "GFLOP/s"):
        table.add_column(col, justify="left" if col == "task" else "right")
    for t in s["tasks"]:
        table.add_row(t["name"], str(t["count"]), str(t["trials"]), str(t["valid"]),
                      f"{t['best_us']:.1f}" if t["best_us"] else "-", f"{t['gflops']:.1f}" if t["gflops"] else "-")
    console.print(table)
    if s.get("refined"):
        console.print(f"refined (--refine): {', '.join(s['refined'])}")
    console.print(f"schedules: {s['out']}")


def print_calibration(cal: dict) -> None:
    from rich.table import Table

    console = make_console()
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


def print_single(console, report: dict) -> None:
    from rich.table import Table

    table = Table(title="isolated latency (median of interleaved runs)")
    for col in ("model", "threads", "system", "p50 ms", "p99 ms", "x ONNX Runtime", "max |err|"):
        table.add_column(col, justify="left" if col in ("model", "system") else "right")
    for r in report["results"]:
        if "skipped" in r:
            table.add_row(r["model"], str(r["threads"]), r["system"], "-", "-", "-", r["skipped"][:40])
            continue
        table.add_row(r["model"], str(r["threads"]), r["system"], f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}",
                      f"{r.get('ratio_to_onnxruntime', float('nan')):.2f}", _err(r['max_abs_err_vs_onnxruntime']))
    console.print(table)
    for key, ratio in report["summary"].get("plan_executor_ratio_to_relax_vm", {}).items():
        console.print(f"{key}: call-plan executor / Relax VM {ratio:.2f}x")
    console.print(f"vCPUs before: {report['machine']['vcpu_sharing_before']}; "
                  f"after: {report['machine']['vcpu_sharing_after']}")


def print_profile(console, report: dict, top: int = 15) -> None:
    """`mtcc profile`: the tasks that take the most time, then the blocks."""
    def rate(x):
        return f"{x:.1f}" if x is not None else "-"

    rows = [[t["task"], str(t["calls"]), f"{t['us'] / 1e3:.3f}", f"{100 * t['share']:.1f}", rate(t["gflops_per_s"]),
             ",".join(t["variants"])] for t in report["tasks"][:top]]
    console.print(rich_table(f"{report['model']}: tasks by time on {len(report['cores'])} core(s) "
                             f"(median of {report['repeat']}, top {min(top, len(report['tasks']))} "
                             f"of {len(report['tasks'])})",
                             ["task", "calls", "ms", "% of calls", "GFLOP/s", "variant"], rows))
    rows = [[str(b["index"]), f"{b['start']}-{b['end'] - 1}", f"{b['us'] / 1e3:.3f}", f"{100 * b['share']:.1f}"]
            for b in report["blocks"]]
    console.print(rich_table("blocks", ["block", "calls", "ms", "% of calls"], rows))
    console.print(f"whole inference {report['whole_ms']:.3f} ms ({rate(report['gflops_per_s'])} GFLOP/s); "
                  f"calls {report['sum_of_calls_ms']:.3f} ms; between calls {report['between_calls_ms']:.3f} ms; "
                  f"cores {report['cores']}")


def shape(s) -> str:
    return "x".join(str(d) for d in s)


def print_model_table(info: dict) -> None:
    from rich.table import Table

    console = make_console()
    ins = ", ".join(f"{i['name']} {shape(i['shape'])} {i['dtype']}" for i in info["inputs"])
    outs = ", ".join(f"{o['name']} {shape(o['shape'])} {o['dtype']}" for o in info["outputs"])
    console.print(f"[bold]{info['model']}[/]  ({info['path']}, opset {info['opset']}, target {info['target']})")
    console.print(f"inputs:  {ins}\noutputs: {outs}")
    total = info["total_flops"] or 1.0
    table = Table(title=f"{info['num_tasks']} tasks, {info['num_calls']} calls, "
                        f"{info['total_flops'] / 1e9:.3f} GFLOP per inference")
    for col, just in (("#", "right"), ("task", "left"), ("op", "left"), ("shapes (in -> out)", "left"),
                      ("GFLOP", "right"), ("count", "right"), ("% FLOPs", "right")):
        table.add_column(col, justify=just)
    for k, t in enumerate(info["tasks"]):
        shapes = f"{shape(t['inputs'][0]['shape']) if t['inputs'] else '-'} -> {shape(t['outputs'][0]['shape'])}"
        share = 100.0 * t["flops"] * t["weight"] / total
        table.add_row(str(k), t["name"], t["kind"], shapes, f"{t['flops'] / 1e9:.4f}", str(t["weight"]),
                      f"{share:.1f}")
    console.print(table)
    scalar = [t for t in info["tasks"] if t.get("scalar_math")]
    if scalar:
        console.print(f"[yellow]warning:[/] {len(scalar)} task(s) call libm, one scalar call per value, which no "
                      "schedule vectorizes: "
                      + ", ".join(f"{t['name']} ({', '.join(t['scalar_math'])})" for t in scalar))



def evidence_rows(ev: dict) -> tuple[list[str], list[list[str]]]:
    """(column titles, rows of text) for a rich Table, one row per model."""
    cols = ["model", "target", "tasks", ">1 variant", "best alone != best under pressure",
            "pressure cell", "model under pressure: best-alone / best-pressure",
            "predicted gain under pressure", "quiet cost of best-pressure"]
    rows = []
    for m in ev["models"]:
        r = m["pressure_ratio_best_alone_over_best_pressure"]
        c = m["alone_ratio_best_pressure_over_best_alone"]
        rows.append([str(m["model"]), str(m["target"]),
                     f"{m['tasks_measured']}/{m['tasks']} measured",
                     str(m["tasks_multi_variant"]), str(m["tasks_best_alone_differs"]),
                     str(m["pressure_cell"]),
                     f"{r:.3f}x" if r else "-", _gain_text(m.get("pressure_gain"), m.get("pressure_gain_error")),
                     f"{c:.3f}x" if c else "-"])
    return cols, rows


def _gain_text(gain, error) -> str:
    """'2.1 % ± 0.8 %', and whether the error bar holds it."""
    if gain is None:
        return "-"
    text = f"{100 * gain:.1f} % ± {100 * (error or 0):.1f} %"
    return text if error is None or gain > error else text + " (within error)"


def variant_rows(var: dict) -> tuple[list[str], list[list[str]]]:
    """(column titles, rows) for a per-task table of a variants.json dict."""
    cells = var.get("objectives", {}).get("cells", {})
    keys = [cells.get("alone"), cells.get("pressure")]
    if cells.get("alone_max_cores"):
        keys.append(cells["alone_max_cores"])
    keys = [k for k in dict.fromkeys(keys) if k]
    cols = ["task", "calls", "variant"] + [f"{k} us" for k in keys] + ["footprint", "note"]
    rows = []
    for t in var["tasks"]:
        for i, v in enumerate(t["variants"]):
            notes = []
            if i == 0:
                notes.append("alone != pressure" if t.get("best_alone_differs_under_pressure")
                             else ("" if t.get("measured") else t.get("reason", "not measured")))
                notes.append(t.get("note", ""))
            if v["id"] == t.get("default"):
                notes.append("default")
            # the cells a pair timed in turns against the default set: variant / default
            notes += [f"{cell} pair {c['ratio']:.2f}" for cell, c in (v.get("latency_confirmed") or {}).items()]
            rows.append([t["name"] if i == 0 else "", str(t.get("count", 1)) if i == 0 else "", v["id"]]
                        + [f"{v['latency_us'][k]:.1f}" if k in v["latency_us"] else "-" for k in keys]
                        + [f"{v['footprint']:.3f}", ", ".join(n for n in notes if n)])
    return cols, rows



def print_bench(console, report: dict) -> None:
    """The multi-tenant bench: best rate per system and target, latency at the fixed rate,
    the ratios, the simulated rows."""
    m, cfg, summary = report["machine"], report["config"], report["summary"]
    console.print(f"[bold]{', '.join(cfg['models'])}[/] on {m['cores']} cores of {m['cpu']} ({m['date']}); "
                  f"vCPU sharing {m['vcpu_sharing']['before']} -> {m['vcpu_sharing']['after']}"
                  + (" [yellow](time-shared during the run: ratios less sure)[/]" if m["time_shared"] else ""))
    if report.get("interrupted"):
        console.print(f"[yellow]interrupted {report['interrupted']}[/]")
    grid = summary["grid"]
    labels = cfg["systems"]
    lowest = {(r["qos"], r["label"]): r.get("lowest_rate_tried") for r in report["results"]}
    stopped = {(r["qos"], r["label"]) for r in report["results"] if r.get("search_done") is False}

    def best(q, label):
        rate = grid[q].get(label)
        floor = lowest.get((q, label))
        text = f"0 (<{_num(floor)})" if rate == 0 and floor else _num(rate)
        return text + " *" if (q, label) in stopped else text

    rows = [[label] + [best(q, label) for q in grid] for label in labels]
    console.print(f"best rate: the highest request rate (all models, requests/s) at which every model has "
                  f">= {cfg['required_share']:.0%} of its requests within target; 0 (<R) = none found down "
                  f"to R, the lowest rate tried" + ("; * = its search was stopped before it ended" if stopped else ""))
    console.print(rich_table("best rate per target", ["system", *grid], rows))
    for q, targets in cfg["qos_ms"].items():
        for name, target_ms in targets.items():
            cold = cfg["models"].get(name, {}).get("after_pause_ms")
            if cold and target_ms < cold:
                console.print(f"note: {name}'s {q} target ({_num(target_ms)} ms) is below its time alone after an "
                              f"idle pause ({_num(cold)} ms, in its tenant, before any request overhead): on this "
                              "machine a request that finds it idle misses the target, whatever the policy")
    head = cfg["headline_qos"]
    rows = []
    for r in report["results"]:
        if r["qos"] == head and r.get("p99_ms") is not None:
            rows.append([r["label"], r["model"], _num(r["qos_ms"]), _num(r["p50_ms"]), _num(r["p99_ms"]),
                         _num(r["mean_ms"]), f"{100 * r['within_qos']:.1f} %",
                         _num(r.get("conflict_rate")) if r["system"] == "mtcc" else "",
                         _err(r.get("max_abs_err_vs_onnxruntime"))])
    if rows:  # none where the run was interrupted before its fixed-rate part
        why = f" ({cfg['fixed_rate_from']})" if cfg.get("fixed_rate_from") else ""
        console.print(rich_table(f"at {_num(cfg['fixed_rate'])} requests/s{why}, target {head}",
                                 ["system", "model", "target ms", "p50 ms", "p99 ms", "mean ms", "within", "conflicts",
                                  "max err vs ORT"], rows))
    if report.get("simulated"):
        rows = [[f"{s['cores']}{' (extrapolated)' if s['extrapolated'] else ''}", s["system"], _num(s["max_qos_rate"]),
                 _num((s.get("error_vs_real") or {}).get("max_qos_rate"))] for s in report["simulated"]]
        console.print(rich_table(f"simulated (target {head})", ["cores", "system", "best rate", "sim / real"], rows))
    ours, fcfs = f"mtcc {HEADLINE}", f"mtcc {REFERENCE}"
    at_head = grid[head]
    lines = [(REFERENCE, summary["rate_ratio_vs_model_wise_fcfs"], [fcfs]),
             ("best ONNX Runtime", summary["rate_ratio_vs_onnxruntime"],
              [s for s in labels if s.startswith("onnxruntime/")]),
             ("best OpenVINO f32", summary["rate_ratio_vs_openvino"], [s for s in labels if s.startswith("openvino/")])]
    floors = {label: lowest.get((head, label)) for label in labels}  # the lowest rate each tried
    console.print(f"{HEADLINE}'s best rate at {head}:")
    for name, ratio, theirs in lines:
        console.print(f"  / {name}: {_rate_ratio_text(ratio, at_head, ours, theirs, name, floors)}")
    lowest_grid = summary["min_grid_ratio_vs_model_wise_fcfs"]
    absent = [label for label in (ours, fcfs) if label not in labels]
    console.print(f"  / {REFERENCE}, lowest over the grid: "
                  + (f"{lowest_grid:.3g}x" if lowest_grid is not None
                     else f"n/a ({' and '.join(absent)} did not run)" if absent
                     else f"n/a ({REFERENCE} met no target of the grid at any rate tried)"))
    mean = summary["mean_latency_ratio_vs_model_wise_fcfs"]
    console.print(f"mean latency at the fixed rate / {REFERENCE}'s: " + (f"{mean:.3g}x" if mean is not None else "n/a"))
    for path in report.get("plots", []):
        console.print(f"plot: {path}")


def _rate_ratio_text(ratio, rates: dict, ours: str, theirs: list[str], their_name: str, floors: dict) -> str:
    """A best-rate ratio the summary computed, with its two rates; where there is none,
    why: a system that did not run, or one that met the target at no rate tried (down to
    the lowest rate it tried, `floors`)."""
    mine = rates.get(ours)
    ran = [t for t in theirs if rates.get(t) is not None]
    if mine is None or not ran:
        return f"n/a ({ours if mine is None else their_name} did not run)"
    best = max(rates[t] for t in ran)
    if ratio is not None:
        return f"{ratio:.3g}x ({_num(mine)} against {_num(best)} requests/s)"
    tried = [floors[t] for t in ([] if mine else [ours]) + ran if floors.get(t)]
    down_to = f" (down to {_num(min(tried))} requests/s)" if tried else ""
    if mine:
        return f"n/a (only {ours} met the target, at {_num(mine)} requests/s; {their_name} at no rate tried{down_to})"
    return f"n/a (neither met the target at any rate tried{down_to})"


def _err(x) -> str:
    return "-" if x is None else f"{x:.1e}"


def _num(x) -> str:
    if x is None:
        return "-"
    if x == float("inf"):
        return "inf"
    if isinstance(x, float):
        return f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}"
    return str(x)


def bench_plots(report: dict, folder) -> list:
    """The bench's PNGs: latency CDFs at the fixed rate, share within target against the
    rate, core grants over time, and the simulated many-core rates."""
    from pathlib import Path

    from ..bench import plots

    folder = Path(folder)
    cfg = report["config"]
    head = cfg["headline_qos"]
    note = f"{report['machine']['cores']} cores, {report['machine']['cpu']}, {report['machine']['date']}"
    out = []
    latencies = {label: f["latencies_ms"] for label, f in report["fixed"].items()}
    out.append(plots.latency_cdf(latencies, cfg["qos_ms"][head], folder / "latency-cdf.png",
                                 title_note=f"{cfg['fixed_rate']} req/s; {note}"))
    curves, best = {}, {}
    for key, searches in report["searches"].items():
        qos, _, label = key.partition(" ")
        if qos == head:
            curves[label] = [tuple(t) for s in searches for t in s]
            best[label] = report["summary"]["grid"][head].get(label) or 0.0
    out.append(plots.qos_vs_rate(curves, folder / "qos-vs-rate.png", required=cfg["required_share"],
                                 max_rates=best, title_note=f"target {head}; {note}"))
    for label, f in report["fixed"].items():
        if f.get("timeline") and label in ("mtcc block-adaptive", "mtcc model-fcfs"):
            name = label.replace("mtcc ", "")
            out.append(plots.core_timeline(f["timeline"], report["machine"]["core_ids"],
                                           folder / f"core-grants-{name}.png", title_note=f"{label}; {note}"))
    if report.get("simulated"):
        out.append(plots.simulated_scaling(report["simulated"], folder / "simulated-cores.png",
                                           title_note=f"target {head}"))
    return out

"""Figures for `mtcc bench`: one PNG per function, each returning the path it wrote.

A *system* is one thing under test, labelled like "mtcc block-adaptive" (mtcc under a
scheduling policy) or "onnxruntime/pinned" (a baseline).  Up to ~9 systems share a
figure: every system keeps one colour, mtcc systems draw solid lines and baselines
dashed or dotted ones, and the legend moves below the axes once it is crowded.

- `latency_cdf`: how a Poisson load's per-request latencies are distributed, one
  panel per model, one line per system, against the model's QoS target.  Failed or
  refused requests count as never served, so a line that tops out below 1 shows
  what share was lost.
- `qos_vs_rate`: the share of requests within target as the offered load grows, with
  the requirement (99 % by default) drawn across and each system's highest rate that
  still meets it marked: the headline comparison between systems.
- `core_timeline`: which model held which core when, from mtcc's core allocator
  (grant/release records), as a Gantt chart: shows how a policy shares the machine.
- `simulated_scaling`: the simulated highest QoS-meeting rate against core count,
  with extrapolated points drawn hollow.

Figures are plain `matplotlib.figure.Figure` objects drawn on an Agg canvas, never
pyplot, so nothing global (pyplot's figure list, the interactive backend) changes.
"""
from __future__ import annotations

import ast
import math
from pathlib import Path

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator

FIGURE_SIZE_IN = (9.0, 5.0)
DPI = 120
CROWDED_LEGEND = 4          # more entries than this: the legend goes below the axes
LOG_SCALE_SPREAD = 20.0     # latency panels switch to a log x axis past this max/min ratio
DEFAULT_WINDOW_S = 2.0      # core_timeline's default span after the first grant

_COLOURS = list(matplotlib.colormaps["tab10"].colors)
_BASELINE_LINE_STYLES = ("--", "-.", ":")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")


# --- shared helpers ----------------------------------------------------------------

def _new_figure() -> Figure:
    figure = Figure(figsize=FIGURE_SIZE_IN, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, format="png")
    return path


TITLE_CHARS = 80  # about what a 10-inch figure's title holds at the default size


def _title(text: str, note: str) -> str:
    """The title and its note (target, cores, CPU, date): on one line where they fit,
    else the note on a second (a long CPU name ran off both edges of the figure)."""
    if not note:
        return text
    one_line = f"{text} — {note}"
    return one_line if len(one_line) <= TITLE_CHARS else f"{text}\n{note}"


def system_styles(systems) -> dict[str, dict]:
    """Line colour, style and marker per system, in the given order: mtcc systems solid,
    baselines dashed / dash-dot / dotted, colours and markers all different up to ten."""
    styles, baseline_index = {}, 0
    for index, system in enumerate(systems):
        if str(system).startswith("mtcc"):
            line_style = "-"
        else:
            line_style = _BASELINE_LINE_STYLES[baseline_index % len(_BASELINE_LINE_STYLES)]
            baseline_index += 1
        styles[system] = {"color": _COLOURS[index % len(_COLOURS)], "linestyle": line_style,
                          "marker": _MARKERS[index % len(_MARKERS)]}
    return styles


def _place_legend(figure: Figure, axes, handles, labels, title: str | None = None) -> None:
    """Inside the axes when short, else below them across the figure (in rows of 3)."""
    if not handles:
        return
    if len(handles) <= CROWDED_LEGEND:
        axes.legend(handles, labels, loc="best", fontsize="small", title=title, title_fontsize="small")
    else:
        figure.legend(handles, labels, loc="outside lower center", ncols=min(3, len(handles)),
                      fontsize="small", title=title, title_fontsize="small", frameon=False)


def _plain_number(value, _position=None) -> str:
    return f"{value:g}"


def _plain_log_ticks(axis, low: float, high: float) -> None:
    """Ticks on a log axis as plain numbers (5, 10, 20, not 10^1), as many as fit:
    1-2-5 over up to 2.5 decades, 1-3 up to 4, powers of ten beyond."""
    decades = math.log10(high / low) if low > 0 and high > low else 1.0
    subs = (1.0, 2.0, 5.0) if decades <= 2.5 else (1.0, 3.0) if decades <= 4 else (1.0,)
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(_plain_number))
    axis.set_minor_formatter(FuncFormatter(lambda *_: ""))


# --- latency CDF -------------------------------------------------------------------

def served_share_curve(latencies_ms) -> tuple[list[float], list[float]]:
    """Sorted served latencies and, for each, the share of *all* requests served within
    it (None entries are requests never served: they count in the total only)."""
    total = len(latencies_ms)
    served = sorted(float(v) for v in latencies_ms if v is not None)
    return served, [(index + 1) / total for index in range(len(served))]


def latency_cdf(latencies: dict[str, dict[str, list[float]]], qos_ms: dict[str, float], path,
                title_note: str = "") -> Path:
    """One panel per model (side by side), one step line per system: x latency (ms, log
    scale when the spread passes 20x), y share of requests served within x; a dashed
    line at the model's QoS target.  `latencies[system][model]` lists per-request ms,
    None for failed or refused requests."""
    systems = list(latencies)
    models: list[str] = []
    for per_model in latencies.values():
        for model in per_model:
            if model not in models:
                models.append(model)
    styles = system_styles(systems)
    figure = _new_figure()
    figure.suptitle(_title("Latency distribution under load", title_note))
    if not models:
        axes = figure.add_subplot()
        axes.text(0.5, 0.5, "no latency data", ha="center", va="center", transform=axes.transAxes)
        axes.set_xlabel("latency (ms)")
        axes.set_ylabel("share of requests served within x")
        return _save(figure, path)

    all_axes = figure.subplots(1, len(models), sharey=True, squeeze=False)[0]
    for axes, model in zip(all_axes, models):
        target = qos_ms.get(model)
        curves = {s: served_share_curve(latencies[s].get(model) or []) for s in systems}
        values = [x for xs, _ in curves.values() for x in xs if x > 0]
        reference = values + ([target] if target else [])
        log_scale = bool(values) and max(values) / min(values) > LOG_SCALE_SPREAD
        if reference:
            low, high = min(reference), max(reference)
            x_min, x_max = (low / 1.3, high * 1.3) if log_scale else (0.0, high * 1.05)
        else:
            x_min, x_max = 0.0, 1.0
        never_served = [s for s in systems if latencies[s].get(model) and not curves[s][0]]
        if never_served:  # a CDF of 0 throughout would hide on the x axis: say so instead
            axes.text(0.98, 0.08, "none served: " + ", ".join(never_served), transform=axes.transAxes,
                      ha="right", va="bottom", fontsize="small", wrap=True,
                      bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "grey", "alpha": 0.9})
        for system in systems:
            xs, shares = curves[system]
            if not xs:
                continue
            # start from 0 at the fastest request; run flat to the right edge at the share served
            step_x = [xs[0]] + xs + [x_max]
            step_y = [0.0] + shares + [shares[-1]]
            style = styles[system]
            axes.step(step_x, step_y, where="post", color=style["color"], linestyle=style["linestyle"],
                      linewidth=1.6)
        if target:
            axes.axvline(target, color="black", linestyle="--", linewidth=1.0)
            axes.annotate(f"target {target:g} ms", xy=(target, 0.03), xycoords=("data", "axes fraction"),
                          xytext=(4, 0), textcoords="offset points", fontsize="small", rotation=90,
                          va="bottom", ha="left")
        if log_scale:
            axes.set_xscale("log")
            _plain_log_ticks(axes.xaxis, x_min, x_max)
        axes.set_xlim(x_min, x_max)
        axes.set_ylim(0.0, 1.02)
        requests = max((len(latencies[s].get(model) or []) for s in systems), default=0)
        axes.set_title(f"{model} ({requests} requests)" if requests else f"{model} (no requests)",
                       fontsize="medium")
        axes.set_xlabel("latency (ms)" + (", log scale" if log_scale else ""))
        axes.grid(True, which="major", alpha=0.35)
    all_axes[0].set_ylabel("share of requests served within x")
    handles = [Line2D([], [], color=styles[s]["color"], linestyle=styles[s]["linestyle"], linewidth=1.6)
               for s in systems]
    if len(models) > 1 or len(handles) > CROWDED_LEGEND:  # one legend for all panels, below them
        figure.legend(handles, systems, loc="outside lower center", ncols=min(3, len(handles)) or 1,
                      fontsize="small", frameon=False)
    else:
        _place_legend(figure, all_axes[0], handles, systems)
    return _save(figure, path)


# --- QoS against offered load ------------------------------------------------------

def qos_vs_rate(curves: dict[str, list[tuple[float, float]]], path, required: float = 0.99,
                max_rates: dict[str, float] | None = None, title_note: str = "") -> Path:
    """Share of requests within target (y) against offered load (x, requests/s over all
    models), one line per system; the requirement as a dashed line; where `max_rates`
    has a system, a large marker at (that rate, requirement) and the rate in the legend
    (None there: no rate met the requirement)."""
    max_rates = max_rates or {}
    systems = list(curves)
    styles = system_styles(systems)
    figure = _new_figure()
    axes = figure.add_subplot()
    figure.suptitle(_title("Share of requests within QoS target against offered load", title_note))
    handles, labels = [], []
    for system in systems:
        points = sorted((float(rate), float(share)) for rate, share in curves[system])
        style = styles[system]
        (line,) = axes.plot([r for r, _ in points], [s for _, s in points], color=style["color"],
                            linestyle=style["linestyle"], marker=style["marker"], markersize=5, linewidth=1.6)
        label = system
        if system in max_rates:
            best = max_rates[system]
            if best is None or (isinstance(best, float) and math.isnan(best)) or best <= 0:
                # a search that met the requirement at no rate: no marker at rate 0
                label = f"{system} (none meets {required * 100:g} %)"
            else:
                label = f"{system} (max {best:.4g} req/s)"
                axes.plot([best], [required], marker="*", markersize=15, color=style["color"],
                          markeredgecolor="black", markeredgewidth=0.8, linestyle="none", zorder=5)
        handles.append(line)
        labels.append(label)
    axes.axhline(required, color="black", linestyle="--", linewidth=1.0)
    axes.annotate(f"{required * 100:g} % within target", xy=(0.01, required), xycoords=("axes fraction", "data"),
                  xytext=(0, -3), textcoords="offset points", va="top", fontsize="small", zorder=6,
                  bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.8})
    if any(system in max_rates and max_rates[system] is not None for system in systems):
        handles.append(Line2D([], [], marker="*", markersize=12, color="grey", markeredgecolor="black",
                              linestyle="none"))
        labels.append(f"highest rate meeting {required * 100:g} %")
    axes.set_ylim(0.0, 1.03)
    axes.set_xlim(left=0.0)
    axes.set_xlabel("offered load (requests/s, all models)")
    axes.set_ylabel("share within QoS target")
    axes.grid(True, alpha=0.35)
    _place_legend(figure, axes, handles, labels)
    return _save(figure, path)


# --- core timeline -----------------------------------------------------------------

def holder_model(holder) -> str:
    """The model in a core holder: mtcc records str(("lane", model, lane)); anything that
    does not parse as such a tuple is shown as it is."""
    value = holder
    if isinstance(holder, str):
        try:
            value = ast.literal_eval(holder)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return holder
    if isinstance(value, (tuple, list)) and len(value) >= 2:
        return str(value[1])
    return str(holder)


def core_intervals(timeline) -> list[tuple[int, str, float, float]]:
    """(core, model, start s, end s) for each time a holder held a core, sorted by core
    then start: a grant opens one interval per core, a release by the same holder closes
    it.  Grants never released end at the timeline's last timestamp; a release of a core
    the holder did not hold is ignored."""
    open_since: dict[tuple[str, int], float] = {}  # (holder, core) -> grant time
    intervals = []
    last_time = None
    for time_s, event, holder, cores in timeline:
        time_s = float(time_s)
        last_time = time_s if last_time is None else max(last_time, time_s)
        holder_key = str(holder)
        for core in cores:
            key = (holder_key, int(core))
            if event == "grant":
                open_since.setdefault(key, time_s)
            elif event == "release" and key in open_since:
                intervals.append((int(core), holder_model(holder), open_since.pop(key), time_s))
    for (holder_key, core), start in open_since.items():
        intervals.append((core, holder_model(holder_key), start, last_time))
    return sorted(intervals, key=lambda item: (item[0], item[2], item[3]))


def core_timeline(timeline: list[tuple[float, str, str, list[int]]], cores: list[int], path,
                  window: tuple[float, float] | None = None, title_note: str = "") -> Path:
    """Gantt chart of core grants: one row per core, a bar per grant-to-release coloured
    by model.  `window` (start, end) in seconds limits the x range; by default it is the
    first 2 s after the first grant (all of it when the trace is shorter), since a full
    run's thousands of short grants would blur into solid bars."""
    intervals = core_intervals(timeline)
    models: list[str] = []
    for _, model, _, _ in sorted(intervals, key=lambda item: item[2]):
        if model not in models:
            models.append(model)
    colours = {model: _COLOURS[index % len(_COLOURS)] for index, model in enumerate(models)}
    rows = sorted(set(int(c) for c in cores) | {core for core, _, _, _ in intervals})
    row_of = {core: index for index, core in enumerate(rows)}

    if window is None:
        grants = [float(t) for t, event, _, _ in timeline if event == "grant"]
        times = [float(t) for t, _, _, _ in timeline]
        if grants:
            start = min(grants)
            window = (start, min(start + DEFAULT_WINDOW_S, max(times)))
        else:
            window = (0.0, 1.0)
    start, end = float(window[0]), float(window[1])
    if end <= start:
        end = start + 1e-3

    figure = _new_figure()
    axes = figure.add_subplot()
    for model in models:
        for core, interval_model, begin, finish in intervals:
            if interval_model != model or finish < start or begin > end:
                continue
            begin, finish = max(begin, start), min(finish, end)
            axes.broken_barh([(begin, max(finish - begin, (end - start) * 1e-4))], (row_of[core] - 0.4, 0.8),
                             facecolors=colours[model], edgecolors="white", linewidth=0.5)
    figure.suptitle(_title(f"Core grants over time, {start:.3g}–{end:.3g} s", title_note))
    if not intervals:
        axes.text(0.5, 0.5, "no core grants recorded", ha="center", va="center", transform=axes.transAxes)
    axes.set_xlim(start, end)
    axes.set_ylim(-0.6, max(len(rows), 1) - 0.4)
    step = max(1, math.ceil(len(rows) / 32))  # at most ~32 labelled rows
    axes.set_yticks(range(0, len(rows), step), [str(rows[i]) for i in range(0, len(rows), step)])
    axes.invert_yaxis()  # core 0 at the top
    axes.set_xlabel("time (s)")
    axes.set_ylabel("core")
    axes.grid(True, axis="x", alpha=0.35)
    axes.set_axisbelow(True)
    handles = [Patch(facecolor=colours[m]) for m in models]
    if handles:
        if len(handles) <= CROWDED_LEGEND:
            # below the axes: on the right a long title (system, cores, CPU) ran over it
            figure.legend(handles, models, loc="outside lower center", ncols=len(handles), fontsize="small",
                          title="model", title_fontsize="small", frameon=False)
        else:
            _place_legend(figure, axes, handles, models, title="model")
    return _save(figure, path)


# --- simulated scaling -------------------------------------------------------------

def simulated_scaling(rows: list[dict], path, title_note: str = "") -> Path:
    """Highest QoS-meeting rate (y) against core count (x), one line per system, from a
    simulation: points measured from a simulated run are filled, those marked
    `extrapolated` hollow.  A row with max_qos_rate None (no rate met) is left out."""
    systems: list[str] = []
    for row in rows:
        if row["system"] not in systems:
            systems.append(row["system"])
    styles = system_styles(systems)
    figure = _new_figure()
    axes = figure.add_subplot()
    figure.suptitle(_title("Simulated scaling: highest rate meeting QoS against core count", title_note))
    core_counts = sorted({int(row["cores"]) for row in rows})
    handles = []
    any_extrapolated = False
    for system in systems:
        points = sorted((int(row["cores"]), float(row["max_qos_rate"]), bool(row.get("extrapolated")))
                        for row in rows if row["system"] == system and row.get("max_qos_rate") is not None)
        style = styles[system]
        axes.plot([c for c, _, _ in points], [r for _, r, _ in points], color=style["color"],
                  linestyle=style["linestyle"], linewidth=1.6)
        for extrapolated in (False, True):
            chosen = [(c, r) for c, r, e in points if e == extrapolated]
            if not chosen:
                continue
            any_extrapolated |= extrapolated
            axes.plot([c for c, _ in chosen], [r for _, r in chosen], linestyle="none", marker=style["marker"],
                      markersize=7, color=style["color"], markeredgewidth=1.5,
                      markerfacecolor="white" if extrapolated else style["color"], zorder=4)
        handles.append(Line2D([], [], color=style["color"], linestyle=style["linestyle"],
                              marker=style["marker"], linewidth=1.6))
    labels = list(systems)
    if any_extrapolated:
        handles += [Line2D([], [], marker="o", color="grey", linestyle="none"),
                    Line2D([], [], marker="o", color="grey", markerfacecolor="white", markeredgewidth=1.5,
                           linestyle="none")]
        labels += ["simulated", "extrapolated"]
    if core_counts:
        if core_counts[0] > 0 and core_counts[-1] / core_counts[0] > 8:
            axes.set_xscale("log", base=2)
        axes.set_xticks(core_counts, [str(c) for c in core_counts])
        axes.xaxis.set_minor_formatter(FuncFormatter(lambda *_: ""))
    else:
        axes.text(0.5, 0.5, "no scaling data", ha="center", va="center", transform=axes.transAxes)
    rates = [float(row["max_qos_rate"]) for row in rows if row.get("max_qos_rate") is not None]
    positive = [rate for rate in rates if rate > 0]
    if positive and len(positive) == len(rates) and max(positive) / min(positive) > 10:
        axes.set_yscale("log")  # with the log core axis, linear scaling draws a straight line
        _plain_log_ticks(axes.yaxis, min(positive), max(positive))
        log_rates = True
    else:
        axes.set_ylim(bottom=0.0)
        log_rates = False
    if rates and not positive:  # a flat line at 0 would read as a drawing error
        axes.text(0.5, 0.5, "no system met the target at any simulated rate\n(0: below the lowest rate tried)",
                  ha="center", va="center", transform=axes.transAxes)
    axes.set_xlabel("cores")
    axes.set_ylabel("highest rate meeting QoS (requests/s" + (", log scale)" if log_rates else ")"))
    axes.grid(True, alpha=0.35)
    _place_legend(figure, axes, handles, labels)
    return _save(figure, path)

"""How `mtcc bench` reports to a person (cli.render.print_bench, on hand-made reports),
and the rate its fixed-rate run compares the systems at."""
from __future__ import annotations


def _report(grid: dict, systems: list[str], lowest: float = 4.0) -> dict:
    """The least of a bench report print_bench reads: a grid of best rates, no rows."""
    head = next(iter(grid))
    return {"machine": {"cores": 2, "cpu": "a CPU", "date": "2026-11-28", "time_shared": False,
                        "vcpu_sharing": {"before": "concurrent", "after": "concurrent"}},
            "config": {"models": {"a": {"after_pause_ms": 2.0}, "b": {"after_pause_ms": 20.0}}, "systems": systems,
                       "headline_qos": head, "required_share": 0.99, "fixed_rate": 10.0,
                       "qos_ms": {q: {"a": 1.5, "b": 30.0} for q in grid}},
            "results": [{"qos": q, "label": s, "lowest_rate_tried": lowest} for q in grid for s in systems],
            "summary": {"grid": grid, "rate_ratio_vs_model_wise_fcfs": None, "rate_ratio_vs_onnxruntime": None,
                        "rate_ratio_vs_openvino": None, "min_grid_ratio_vs_model_wise_fcfs": None,
                        "mean_latency_ratio_vs_model_wise_fcfs": None}}


def test_bench_summary_says_why_a_ratio_is_missing():
    """A best-rate ratio with no value says which system met the target at no rate
    (down to the lowest rate tried) or did not run; one with a value shows both rates."""
    from rich.console import Console

    from mtcc.cli.render import print_bench

    systems = ["mtcc block-adaptive", "mtcc model-fcfs", "onnxruntime/pinned"]
    report = _report({"2x@all": {"mtcc block-adaptive": 0.0, "mtcc model-fcfs": 0.0, "onnxruntime/pinned": 6.0}},
                     systems)
    report["summary"]["rate_ratio_vs_onnxruntime"] = 0.0
    console = Console(record=True, width=400)
    print_bench(console, report)
    text = console.export_text()
    assert "/ model-fcfs: n/a (neither met the target at any rate tried (down to 4 requests/s))" in text, text
    assert "/ best ONNX Runtime: 0x (0 against 6 requests/s)" in text, text
    assert "/ best OpenVINO f32: n/a (best OpenVINO f32 did not run)" in text, text

    report["summary"]["grid"]["2x@all"]["mtcc block-adaptive"] = 5.0
    console = Console(record=True, width=400)
    print_bench(console, report)
    assert ("/ model-fcfs: n/a (only mtcc block-adaptive met the target, at 5 requests/s; model-fcfs at no rate "
            "tried (down to 4 requests/s))") in console.export_text()


def test_bench_says_when_a_target_is_below_the_models_time_after_an_idle_pause():
    """A target a request that finds its model idle cannot meet (the model alone, after a
    pause, takes longer) is named: no policy can serve it at low rates."""
    from rich.console import Console

    from mtcc.cli.render import print_bench

    systems = ["mtcc block-adaptive", "mtcc model-fcfs"]
    console = Console(record=True, width=400)
    print_bench(console, _report({"2x@all": {s: 0.0 for s in systems}}, systems))
    notes = [line for line in console.export_text().splitlines() if "idle pause" in line]
    assert len(notes) == 1 and notes[0].startswith("note: a's 2x@all target (1.5 ms)") and "(2 ms" in notes[0], notes


def test_an_interrupted_bench_marks_its_stopped_searches():
    """Ctrl-C mid-search: the report says so, each stopped search's best rate so far is
    starred, and no fixed-rate table is printed for a run that never reached it."""
    from rich.console import Console

    from mtcc.cli.render import print_bench

    systems = ["mtcc model-fcfs", "mtcc block"]
    report = _report({"2x@all": {"mtcc model-fcfs": 12.0, "mtcc block": 0.0}}, systems)
    report["interrupted"] = "during the rate searches: searches and rows hold what was measured until then"
    report["config"]["fixed_rate"] = None
    for row in report["results"]:
        row["search_done"] = row["label"] == "mtcc block"
    console = Console(record=True, width=400)
    print_bench(console, report)
    text = console.export_text()
    assert "interrupted during the rate searches" in text and "* = its search was stopped" in text, text
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in text.splitlines()
            if line.startswith("│ mtcc")}
    assert rows == {"mtcc model-fcfs": "12 *", "mtcc block": "0 (<4)"}, text
    assert "requests/s, target" not in text  # no fixed-rate rows
    assert "lowest over the grid: n/a (mtcc block-adaptive did not run)" in text, text


def test_the_fixed_rate_is_one_the_reference_serves():
    """The fixed-rate run compares p50/p99/mean at model-fcfs's best rate at the headline
    target; where it met that target at no rate, at its best rate for another target of
    the grid (not at a rate nobody serves, where queues only grow); failing all, a
    quarter of the capacity."""
    from mtcc.bench.qos import Target, fixed_rate_for

    head, loose = Target(2.0), Target(4.0, "1")
    grid = [head, loose]
    best = {"2x@all": {"mtcc model-fcfs": [10.0, 14.0], "mtcc block": [20.0]},
            "4x@1c": {"mtcc model-fcfs": [50.0], "mtcc block": [60.0]}}
    assert fixed_rate_for(best, grid, head, 400.0) == (12.0, "model-fcfs's best rate at 2x@all")
    best["2x@all"]["mtcc model-fcfs"] = [0.0]
    assert fixed_rate_for(best, grid, head, 400.0) == (
        50.0, "model-fcfs's best rate at 4x@1c; at 2x@all it met the target at no rate")
    best["4x@1c"]["mtcc model-fcfs"] = [0.0]
    assert fixed_rate_for(best, grid, head, 400.0)[0] == 100.0
    no_reference = {t: {"mtcc block": v["mtcc block"]} for t, v in best.items()}
    assert fixed_rate_for(no_reference, grid, head, 400.0)[0] == 20.0

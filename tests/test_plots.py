"""The bench figures: each function writes a PNG where asked and returns its path, on
small hand-made data; core grants pair with their releases; failed requests count as
never served."""
from __future__ import annotations

import matplotlib.pyplot
import pytest

from mtcc.bench import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
QOS_MS = {"squeezenet": 5.0, "transformer": 30.0}


def assert_png(path, expected) -> None:
    assert path == expected
    data = path.read_bytes()
    assert len(data) > 1000 and data[:8] == PNG_SIGNATURE


@pytest.fixture(autouse=True)
def no_pyplot_figures():
    """The module draws on its own Figure objects: pyplot's list stays empty."""
    before = matplotlib.pyplot.get_fignums()
    yield
    assert matplotlib.pyplot.get_fignums() == before


def test_served_share_counts_failures_as_never_served():
    latencies, shares = plots.served_share_curve([3.0, None, 1.0, 2.0])
    assert latencies == [1.0, 2.0, 3.0]
    assert shares == [0.25, 0.5, 0.75]  # tops out below 1: one of four never served
    assert plots.served_share_curve([]) == ([], [])
    assert plots.served_share_curve([None, None]) == ([], [])


def test_latency_cdf_writes_png_into_new_directory(tmp_path):
    latencies = {
        "mtcc block-adaptive": {"squeezenet": [1.0, 2.0, 2.5, None], "transformer": [10.0, 12.0, 400.0]},
        "onnxruntime/pinned": {"squeezenet": [3.0, 6.0, 9.0], "transformer": [None, None]},
    }
    path = tmp_path / "deeper" / "cdf.png"
    assert_png(plots.latency_cdf(latencies, QOS_MS, path, title_note="test"), path)


@pytest.mark.parametrize("latencies", [{}, {"mtcc model-fcfs": {}}, {"mtcc model-fcfs": {"squeezenet": []}},
                                       {"mtcc model-fcfs": {"squeezenet": [None]}, "openvino/shared": {}}])
def test_latency_cdf_without_data(tmp_path, latencies):
    path = tmp_path / "cdf.png"
    assert_png(plots.latency_cdf(latencies, {}, str(path)), path)


def test_qos_vs_rate_writes_png(tmp_path):
    curves = {
        "mtcc block-adaptive": [(100.0, 0.97), (25.0, 1.0), (50.0, 0.995)],  # unsorted on purpose
        "onnxruntime/pinned": [(25.0, 0.99), (50.0, 0.8)],
        "openvino/shared": [(40.0, 0.5)],  # a single point
        "mtcc block": [(10.0, 0.5), (20.0, 0.2)],
    }
    # None: no search; 0.0: a search that met the requirement at no rate (no marker drawn)
    max_rates = {"mtcc block-adaptive": 50.0, "onnxruntime/pinned": 25.0, "openvino/shared": None, "mtcc block": 0.0}
    path = tmp_path / "qos.png"
    assert_png(plots.qos_vs_rate(curves, path, max_rates=max_rates, title_note="16 cores"), path)
    path = tmp_path / "qos-plain.png"
    assert_png(plots.qos_vs_rate(curves, path, required=0.95), path)


def test_holder_model():
    assert plots.holder_model("('lane', 'squeezenet', 0)") == "squeezenet"
    assert plots.holder_model(("lane", "transformer", 1)) == "transformer"
    assert plots.holder_model("ort-worker") == "ort-worker"  # not a tuple: shown as it is
    assert plots.holder_model("('lane', broken") == "('lane', broken"


def test_core_intervals_pairs_grants_with_releases():
    squeezenet, transformer = "('lane', 'squeezenet', 0)", "('lane', 'transformer', 0)"
    timeline = [
        (0.0, "grant", squeezenet, [0]),
        (0.1, "grant", transformer, [1, 2]),     # holds two cores ...
        (0.2, "release", squeezenet, [0]),
        (0.3, "grant", squeezenet, [0]),
        (0.4, "release", transformer, [1, 2]),   # ... and gives both back together
        (0.5, "grant", transformer, [1]),        # never released: ends at the last timestamp
        (0.6, "release", squeezenet, [0]),
        (0.7, "release", squeezenet, [3]),       # a core it never held: ignored
    ]
    assert plots.core_intervals(timeline) == [
        (0, "squeezenet", 0.0, 0.2),
        (0, "squeezenet", 0.3, 0.6),
        (1, "transformer", 0.1, 0.4),
        (1, "transformer", 0.5, 0.7),
        (2, "transformer", 0.1, 0.4),
    ]
    assert plots.core_intervals([]) == []


def test_core_timeline_writes_png(tmp_path):
    timeline = [(0.01 * i, "grant" if i % 2 == 0 else "release", f"('lane', '{model}', 0)", [core])
                for core, model in enumerate(["squeezenet", "transformer"]) for i in range(6)]
    timeline.sort(key=lambda entry: entry[0])
    path = tmp_path / "timeline.png"
    assert_png(plots.core_timeline(timeline, [0, 1, 2, 3], path), path)
    path = tmp_path / "window.png"
    assert_png(plots.core_timeline(timeline, [0, 1], path, window=(0.01, 0.03), title_note="fcfs"), path)
    path = tmp_path / "empty.png"
    assert_png(plots.core_timeline([], [0, 1], path), path)


def test_simulated_scaling_writes_png(tmp_path):
    rows = [{"cores": cores, "system": system, "max_qos_rate": rate * cores, "extrapolated": cores > 16}
            for system, rate in (("mtcc block-adaptive", 8.0), ("onnxruntime/pinned", 5.0))
            for cores in (4, 8, 16, 32, 64)]
    rows.append({"cores": 4, "system": "openvino/shared", "max_qos_rate": None, "extrapolated": False})
    path = tmp_path / "scaling.png"
    assert_png(plots.simulated_scaling(rows, path, title_note="test"), path)
    path = tmp_path / "scaling-empty.png"
    assert_png(plots.simulated_scaling([], path), path)


def test_a_long_title_note_goes_on_a_second_line():
    # a 16-core report's note (target, cores, CPU, date) ran off both edges of the figure
    from mtcc.bench.plots import _title

    assert _title("Latency", "100 req/s; 2 cores, AMD EPYC") == "Latency — 100 req/s; 2 cores, AMD EPYC"
    long_note = "target 2x@all; 16 cores, Intel(R) Xeon(R) Processor, 2026-11-27"
    assert _title("Share of requests within QoS target against offered load", long_note).split("\n") == [
        "Share of requests within QoS target against offered load", long_note]
    assert _title("Latency", "") == "Latency"

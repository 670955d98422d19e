"""The pressure proxy on hand-computed cases (the real-stressor test is in test_runtime)."""
from __future__ import annotations

import pytest

from mtcc.runtime.pressure import DEAD_BAND, FootprintProxy, level_for, make_proxy, thresholds


def test_thresholds_leave_out_levels_that_barely_slow_a_block():
    marks = dict(thresholds({"none": 1.0, "low": 1.01, "mid": 1.08, "high": 1.4}))
    assert "low" not in marks                      # 1 % slower: indistinguishable from none
    assert marks["mid"] == pytest.approx(DEAD_BAND)  # 1 + 0.75 * 0.08 = 1.06, raised to the dead band
    assert marks["high"] == pytest.approx(1.3)       # 1 + 0.75 * 0.4


def test_level_is_the_strongest_threshold_reached():
    marks = thresholds({"low": 1.2, "mid": 1.4, "high": 2.0})  # 1.15, 1.3, 1.75
    assert level_for(marks, 1.0) == "none"
    assert level_for(marks, 1.2) == "low"
    assert level_for(marks, 1.5) == "mid"
    assert level_for(marks, 3.0) == "high"
    assert level_for([], 3.0) == "none"           # a block no level slows


def test_footprint_proxy_median_of_recent_blocks_over_the_quiet_baseline():
    proxy = make_proxy("footprint", window=4)
    assert isinstance(proxy, FootprintProxy)
    for ratio in (1.1, 1.5, 1.2):
        proxy.calibrate("b", ratio)  # the baseline is the readings' median, 1.2
    for ratio in (1.2, 1.8):   # 1.0 and 1.5 of the baseline
        proxy.observe("b", ratio)
    assert proxy.slowdown() == pytest.approx(1.25)        # even count: mean of the middle two
    proxy.observe("b", 3.6)                                 # 1.0, 1.5, 3.0: a median, not a mean
    assert proxy.slowdown() == pytest.approx(1.5)
    for ratio in (1.2, 1.2, 1.2):                           # the window forgets the burst
        proxy.observe("b", ratio)
    assert proxy.slowdown() == pytest.approx(1.0)
    proxy.observe("unknown block", 9.0)                     # no baseline: nothing learnt
    assert proxy.slowdown() == pytest.approx(1.0)
    # the neighbours' footprint counts when it is the larger estimate
    assert proxy.slowdown(1.4) == pytest.approx(1.4)
    marks = thresholds({"high": 1.6})                       # threshold 1 + 0.75 * 0.6 = 1.45
    assert proxy.level(marks, 1.4) == "none"
    assert proxy.level(marks, 1.5) == "high"


def _two_variant_profile(gain: float, error: float | None):
    """One task, one call: v0 (default) 100 µs at 1c/high, v1 `gain` faster; each cell's
    error bar `error` x its time (None: the bundle carries no error bars)."""
    from mtcc.runtime.profile import ModelProfile

    def variant(vid, us):
        entry = {"id": vid, "function": vid, "footprint": None, "latency_us": {"1c/none": 100.0, "1c/high": us}}
        if error is not None:
            entry["latency_error_us"] = {"1c/none": 100.0 * error, "1c/high": us * error}
        return entry
    manifest = {"model": {"name": "m"}, "inputs": [], "outputs": [], "blocks": [{"index": 0, "start": 0, "end": 1}]}
    selector = {"tasks": [{"task": "t", "default": "v0",
                           "variants": [variant("v0", 100.0), variant("v1", 100.0 * (1 - gain))]}]}
    return ModelProfile(manifest, {"calls": [{"task": "t"}]}, selector)


def test_the_table_selector_switches_only_beyond_the_cells_errors():
    from mtcc.runtime.selector import DEFAULT_MARGIN, make_selector

    selector = make_selector("table")
    pick = lambda gain, error, level="high": selector.choose(_two_variant_profile(gain, error), 0, 1, level)["t"]  # noqa: E731
    assert pick(0.06, 0.01) == "v1"          # 6 % faster, errors 1 %: a real gain
    assert pick(0.06, 0.05) == "v0"          # the same 6 %, errors 5 % each (7 % together): noise
    assert pick(0.06, None) == "v1"          # no error bars: the margin alone decides
    assert pick(DEFAULT_MARGIN / 2, None) == "v0"
    assert pick(0.06, 0.01, "none") == "v0"  # at level none both are 100 µs


def test_the_table_selector_keeps_a_block_whose_switches_gain_little_of_it():
    """A task 6 % faster beyond its cells' errors still stays on its default where it is
    a small part of its block: the block's gain must pass the margin too."""
    from mtcc.runtime.profile import ModelProfile
    from mtcc.runtime.selector import make_selector

    def profile(big_us):
        def task(name, variants):
            return {"task": name, "default": variants[0][0],
                    "variants": [{"id": vid, "function": vid, "footprint": None,
                                  "latency_us": {"1c/none": us, "1c/high": us},
                                  "latency_error_us": {"1c/none": 0.0, "1c/high": 0.0}} for vid, us in variants]}
        manifest = {"model": {"name": "m"}, "inputs": [], "outputs": [], "blocks": [{"index": 0, "start": 0, "end": 2}]}
        selector = {"tasks": [task("big", [("b0", big_us)]), task("small", [("s0", 10.0), ("s1", 9.4)])]}
        return ModelProfile(manifest, {"calls": [{"task": "big"}, {"task": "small"}]}, selector)

    selector = make_selector("table")
    assert selector.choose(profile(5.0), 0, 1, "high")["small"] == "s1"    # 0.6 of 15 µs: 4 %
    assert selector.choose(profile(100.0), 0, 1, "high")["small"] == "s0"  # 0.6 of 110 µs: 0.5 %

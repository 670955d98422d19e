"""The bench's rate search on a synthetic system, and the simulator on cases small
enough to work out by hand.  No bundle, no process: profiles built from dicts."""
import pytest

from mtcc.bench import qos as qos_bench
from mtcc.bench import simulate
from mtcc.bench.search import RateSearch
from mtcc.runtime import policies, scheduler, server
from mtcc.runtime.profile import ModelProfile


def profile(name: str, block_us: list[float], two_core_share: float = 1.0) -> ModelProfile:
    """A model of len(block_us) blocks, one call each, each its own task with one
    variant: `block_us[k]` µs on one core, `two_core_share` x that on two."""
    calls = [{"task": f"{name}_t{k}"} for k in range(len(block_us))]
    tasks = [{"task": f"{name}_t{k}", "default": "v0",
              "variants": [{"id": "v0", "function": f"f{k}", "footprint": None,
                            "latency_us": {"1c/none": us, "2c/none": us * two_core_share}}]}
             for k, us in enumerate(block_us)]
    manifest = {"model": {"name": name}, "inputs": [], "outputs": [],
                "blocks": [{"index": k, "start": k, "end": k + 1} for k in range(len(block_us))]}
    return ModelProfile(manifest, {"calls": calls}, {"tasks": tasks})


def latencies(run) -> dict:
    return {(r["model"], r["arrival_s"]): r["latency_ms"] for r in run["requests"]}


def test_one_lane_serves_a_model_in_arrival_order():
    # 1 ms alone on one core; the second request waits for the first (one lane).
    sim = simulate.Simulator({"a": profile("a", [1000.0])}, cores=2, policy="model-fcfs", qos_ms={"a": 2.0},
                             lanes=1, unit_overhead_us=0, stop_us=0)
    got = latencies(sim.run([(0.0, "a"), (0.0001, "a")]))
    assert got[("a", 0.0)] == pytest.approx(1.0)
    assert got[("a", 0.0001)] == pytest.approx(1.9)


def test_two_lanes_serve_two_requests_of_one_model_at_once():
    # The default on 2 cores and one model: two lanes, so the second request runs on
    # the other core at once (1 ms) instead of after the first (1.9 ms).
    assert server.default_lanes(2, 1) == 2 and server.default_lanes(16, 2) == 8 and server.default_lanes(2, 3) == 1
    sim = simulate.Simulator({"a": profile("a", [1000.0])}, cores=2, policy="model-fcfs", qos_ms={"a": 2.0},
                             unit_overhead_us=0, stop_us=0)
    got = latencies(sim.run([(0.0, "a"), (0.0001, "a")]))
    assert got[("a", 0.0)] == pytest.approx(1.0)
    assert got[("a", 0.0001)] == pytest.approx(1.0)


def test_a_unit_on_an_idle_lane_pays_the_cold_cost_and_a_warm_one_does_not():
    # 1 ms on one core, 0.5 ms more when its lane has been idle past WARM_S (2 ms): the
    # first request finds it cold (1.5 ms, ends at 1.5), the second arrives 0.1 ms after
    # that and finds it warm (1.0), the third 10 ms later finds it cold again (1.5).
    sim = simulate.Simulator({"a": profile("a", [1000.0])}, cores=1, policy="model-fcfs", qos_ms={"a": 5.0},
                             lanes=1, unit_overhead_us=0, stop_us=0, cold_us={"a": 500.0})
    run = sim.run([(0.0, "a"), (0.0016, "a"), (0.0126, "a")])
    got = latencies(run)
    assert got[("a", 0.0)] == pytest.approx(1.5)
    assert got[("a", 0.0016)] == pytest.approx(1.0)
    assert got[("a", 0.0126)] == pytest.approx(1.5)
    assert run["cold_units"] == 2


def test_block_boundary_lets_a_short_request_pass_a_long_one():
    # One core.  A: four 1 ms blocks, arrives at 0.  B: one 0.1 ms block, arrives at 0.5 ms
    # with a deadline long before A's.  Whole-model FCFS: B waits for all of A (3.6 ms).
    # Block, earliest deadline first: A yields at its first boundary (1 ms), B runs to
    # 1.1 ms (0.6 ms latency), A resumes and ends at 4.1 ms.
    profiles = {"a": profile("a", [1000.0] * 4), "b": profile("b", [100.0])}
    arrivals = [(0.0, "a"), (0.0005, "b")]
    qos = {"a": 10.0, "b": 1.0}
    fcfs = latencies(simulate.Simulator(profiles, 1, "model-fcfs", qos, unit_overhead_us=0, stop_us=0).run(arrivals))
    assert fcfs[("a", 0.0)] == pytest.approx(4.0)
    assert fcfs[("b", 0.0005)] == pytest.approx(3.6)
    block = simulate.Simulator(profiles, 1, "block", qos, unit_overhead_us=0, stop_us=0).run(arrivals)
    got = latencies(block)
    assert got[("b", 0.0005)] == pytest.approx(0.6)
    assert got[("a", 0.0)] == pytest.approx(4.1)
    assert block["units"] == 3  # A until it yields, B, the rest of A


def test_a_block_that_scales_gets_both_cores():
    # 2 ms on one core, 1.1 ms on two: a target of 1.5 ms needs both.
    sim = simulate.Simulator({"a": profile("a", [2000.0], two_core_share=0.55)}, 2, "model-fcfs", {"a": 1.5},
                             unit_overhead_us=0, stop_us=0)
    run = sim.run([(0.0, "a")])
    assert run["requests"][0]["latency_ms"] == pytest.approx(1.1)
    grants = [entry for entry in run["timeline"] if entry[1] == "grant"]
    assert grants[0][3] == [0, 1]


def test_queue_bound_refuses_in_the_simulator_too():
    sim = simulate.Simulator({"a": profile("a", [1000.0])}, 1, "model-fcfs", {"a": 5.0}, max_queue=1,
                             unit_overhead_us=0, stop_us=0)
    run = sim.run([(0.0, "a"), (0.0001, "a"), (0.0002, "a")])
    assert run["refused"] == 1
    assert [r["latency_ms"] is None for r in run["requests"]] == [False, False, True]


def test_simulator_and_server_take_the_same_decisions():
    """Not a second implementation: both modules use the runtime's one scheduling step,
    and the simulator asks the policy object it was given."""
    assert simulate.schedule is scheduler.schedule is server.schedule
    assert simulate.must_yield is scheduler.must_yield is server.must_yield

    asked = []

    class Spy(policies.ModelFcfs):
        name = "spy"

        def unit(self, p, now, total_cores):
            asked.append(p.model)
            return super().unit(p, now, total_cores)

    simulate.Simulator({"a": profile("a", [1000.0])}, 1, Spy(), {"a": 5.0}).run([(0.0, "a")])
    assert asked == ["a"]


def test_extrapolation_follows_amdahl_through_the_measured_points():
    # 1000 µs on 1 core, 600 on 2: serial share 0.2; on 4 cores 1000 (0.2 + 0.8 / 4) = 400.
    p, filled = simulate.extrapolate(profile("a", [1000.0], two_core_share=0.6), [1, 2, 4])
    assert filled
    assert p.block_us(0, 4) == pytest.approx(400.0)
    assert p.block_us(0, 2) == pytest.approx(600.0)
    _, filled = simulate.extrapolate(profile("a", [1000.0]), [1, 2])
    assert not filled
    # Measured on this machine at 1..4 cores (a server's start): 4 cores is a measurement,
    # 8 still the fit's; block_us at 4 is the measured time.
    measured = profile("a", [1000.0], two_core_share=0.6)
    measured.calibrate({1: [900.0], 2: [500.0], 3: [400.0], 4: [350.0]})
    p, filled = simulate.extrapolate(measured, [1, 2, 4])
    assert not filled and p.block_us(0, 4) == pytest.approx(350.0)
    _, filled = simulate.extrapolate(measured, [1, 2, 4, 8])
    assert filled


def test_rate_search_finds_the_knee_of_a_synthetic_system():
    knee = 37.0
    search = RateSearch(start=5.0)
    while not search.done:
        rate = search.next_rate()
        search.record(rate, 1.0 if rate <= knee else 0.5)
    assert knee / search.resolution < search.best <= knee
    assert len(search.trials) <= search.max_trials


def test_rate_search_ignores_a_lucky_pass_above_a_failure():
    search = RateSearch(start=10.0)
    for rate, share in [(10.0, 1.0), (20.0, 0.9), (40.0, 1.0)]:
        search.record(rate, share)
    assert search.best == 10.0
    assert 10.0 < search.next_rate() < 20.0


def test_rate_search_of_a_system_that_never_meets_the_target():
    search = RateSearch(start=1.0)
    while not search.done:
        search.record(search.next_rate(), 0.0)
    assert search.best == 0.0


@pytest.mark.parametrize("text,factor,base,label", [("2", 2.0, "all", "2x@all"), ("4@1", 4.0, "1", "4x@1c"),
                                                     ("1.5@1c", 1.5, "1", "1.5x@1c"), ("3@all", 3.0, "all", "3x@all"),
                                                     ("4x@1c", 4.0, "1", "4x@1c")])
def test_qos_targets_parse(text, factor, base, label):
    target = qos_bench.parse_target(text)
    assert (target.factor, target.base, target.label) == (factor, base, label)
    assert target.ms({1: 10.0, 2: 6.0}, 2) == pytest.approx(factor * (6.0 if base == "all" else 10.0))


@pytest.mark.parametrize("text", ["0", "-1", "x", "2@0", "2@many"])
def test_bad_qos_target_is_refused_naming_it(text):
    from mtcc.errors import BadInput

    with pytest.raises(BadInput, match="--qos"):
        qos_bench.parse_target(text)


def test_block_rule_keeps_a_core_for_a_tighter_model():
    # Two cores.  A: one block, 20 ms on one core, 11 ms on two; target 25 ms: half its
    # budget asks for both.  B: 1 ms on one core; target 2 ms; arrives at 1 ms.  Taking
    # both cores for 11 ms would outlast B's whole target, so A runs on one (20 ms, within
    # 25) and B starts at once on the other (1 ms) instead of after A (10.6 ms, a miss).
    profiles = {"a": profile("a", [20000.0], two_core_share=0.55), "b": profile("b", [1000.0], two_core_share=0.6)}
    sim = simulate.Simulator(profiles, 2, "block", {"a": 25.0, "b": 2.0}, unit_overhead_us=0, stop_us=0)
    got = latencies(sim.run([(0.0, "a"), (0.001, "b")]))
    assert got[("a", 0.0)] == pytest.approx(20.0)
    assert got[("b", 0.001)] == pytest.approx(1.0)
    # Alone (no tighter neighbour), the same request takes both cores.
    alone = latencies(simulate.Simulator({"a": profiles["a"]}, 2, "block", {"a": 25.0},
                                         unit_overhead_us=0, stop_us=0).run([(0.0, "a")]))
    assert alone[("a", 0.0)] == pytest.approx(11.0)


def test_calibration_puts_this_machines_block_times_under_every_prediction():
    # Tables: 1 ms on one core, 0.6 ms on two (packing machine).  Measured here: 2 ms and
    # 0.5 ms.  Level `high` keeps its table ratio (x1.5) on top of the measured time.
    p = profile("a", [1000.0, 400.0], two_core_share=0.6)
    p.variants["a_t0"][0].latency_us["1c/high"] = 1500.0
    assert p.block_us(0, 2) == pytest.approx(600.0)
    p.calibrate({1: [2000.0, 400.0], 2: [500.0, 240.0], 4: [300.0, 240.0]})
    assert p.block_us(0, 1) == pytest.approx(2000.0)
    assert p.block_us(0, 2) == pytest.approx(500.0)
    assert p.block_us(0, 1, "high") == pytest.approx(3000.0)
    assert p.block_us(0, 4) == pytest.approx(300.0)   # measured beyond the tables' 2 cores
    assert p.block_us(0, 8) == pytest.approx(300.0)   # past the measured counts: the most measured
    assert p.model_us(2) == pytest.approx(740.0)
    assert p.block_slowdowns(0, 1)["high"] == pytest.approx(1.5)
    costs, suffix = p.cost_tables("block", 4)
    assert costs[4] == pytest.approx([300.0, 240.0]) and suffix[1][0] == pytest.approx(2400.0)
    calls, _ = p.cost_tables("call", 2)
    assert calls[2] == pytest.approx([500.0, 240.0])
    with pytest.raises(ValueError, match="2 blocks"):
        p.calibrate({1: [1.0]})


def test_a_block_that_scales_only_on_this_machine_gets_the_cores():
    # The tables say the block does not scale (1 ms on one core and on two); this machine
    # measured 2 ms on one core and 0.8 ms on two: with a 1.5 ms target the calibrated
    # server gives it both cores and meets it, the uncalibrated one cannot.
    def run(calibrated):
        p = profile("a", [1000.0], two_core_share=1.0)
        if calibrated:
            p.calibrate({1: [2000.0], 2: [800.0]})
        sim = simulate.Simulator({"a": p}, 2, "block", {"a": 1.5}, unit_overhead_us=0, stop_us=0)
        return latencies(sim.run([(0.0, "a")]))[("a", 0.0)]
    assert run(True) == pytest.approx(0.8)
    assert run(False) == pytest.approx(1.0)  # one core, as its tables promise


def test_a_short_run_wanting_other_cores_stays_in_the_unit_a_long_one_does_not():
    # Two cores, one model.  Blocks (µs on one core / two): 2000 / 1000 (scales), 500 / 500
    # (does not), 2000 / 1000.  Target 8 ms: half of it (4 ms) needs both cores at arrival
    # (4.5 ms on one, 2.5 on two); blocks 1-2 want one core.  Without absorbing: two
    # units, block 0 on two cores (1 ms), then blocks 1-2 on one (0.5 + 2): 3.5 ms.  With
    # the default (2 ms): blocks 1-2 would last 1.5 ms on the two cores held, so they stay
    # in the first unit: one unit, one round trip fewer, 2.5 ms.
    short = profile("a", [2000.0, 500.0, 2000.0])
    for task in ("a_t0", "a_t2"):
        short.variants[task][0].latency_us["2c/none"] = 1000.0
    # Block 1 is 20 ms on either count instead: never carried on two cores.
    long = profile("a", [2000.0, 20000.0])
    long.variants["a_t0"][0].latency_us["2c/none"] = 1000.0

    def run(p, target_ms, absorb_us):
        policy = policies.Block()
        policy.absorb_us = absorb_us
        policy.spare_cores = False  # the rule under test alone: no lent cores
        out = simulate.Simulator({"a": p}, 2, policy, {"a": target_ms}, unit_overhead_us=0, stop_us=0).run([(0.0, "a")])
        return out["units"], out["requests"][0]["latency_ms"]

    assert policies.Block.absorb_us == policies.ABSORB_US == 2000.0
    assert run(short, 8.0, 0.0) == (2, pytest.approx(3.5))
    assert run(short, 8.0, policies.ABSORB_US) == (1, pytest.approx(2.5))
    # 43 ms target: 21.5 ms of budget needs both cores for block 0 (22 ms on one, 21 on two)
    assert run(long, 43.0, policies.ABSORB_US) == (2, pytest.approx(21.0))
    assert policies.Layer.absorb_us == 0.0   # `layer` re-negotiates at every call, by definition


def test_free_cores_are_lent_to_a_started_unit_only_where_it_runs_faster_and_nobody_waits():
    # Two cores, one model of two blocks: 2000 / 1000 µs on one / two cores (scales), then
    # 500 / 500 (flat).  A loose target (100 ms): the block rule plans one core for both.
    scaling = profile("a", [2000.0, 2000.0])
    for task in ("a_t0", "a_t1"):
        scaling.variants[task][0].latency_us["2c/none"] = 1000.0
    flat = profile("a", [500.0, 500.0])

    def run(p, arrivals, spare: bool):
        policy = policies.Block()
        policy.spare_cores = spare
        out = simulate.Simulator({"a": p}, 2, policy, {"a": 100.0}, unit_overhead_us=0, stop_us=0).run(arrivals)
        return sorted(r["latency_ms"] for r in out["requests"]), out["conflicts"]

    assert policies.Block.spare_cores is policies.SPARE_CORES is True
    assert policies.ModelFcfs().spare(None, 0, 2, 1, 2) == 1  # the paper's baseline holds what it planned
    # Alone, the spare core makes it twice as fast; the plan (one core) is still what it
    # wanted, so lending is no conflict.
    assert run(scaling, [(0.0, "a")], spare=False) == ([pytest.approx(4.0)], 0)
    assert run(scaling, [(0.0, "a")], spare=True) == ([pytest.approx(2.0)], 0)
    # A second request 0.5 ms later (a later deadline) finds no free core and waits for the
    # first, which ends at 2 ms, then gets both: 1.5 ms waiting + 2 ms, 3.5 ms in all --
    # where without lending each ran on one core, 4 ms.
    assert run(scaling, [(0.0, "a"), (0.0005, "a")], spare=True) == ([pytest.approx(2.0), pytest.approx(3.5)], 0)
    assert run(scaling, [(0.0, "a"), (0.0005, "a")], spare=False) == ([pytest.approx(4.0), pytest.approx(4.0)], 0)
    # A flat table gains nothing from a second core: it keeps one.
    policy = policies.Block()
    assert policy.spare(policies.Pending("a", 0.0, 0.1, 0, flat), 2, 2, 1, 2) == 1
    assert policy.spare(policies.Pending("a", 0.0, 0.1, 0, scaling), 2, 2, 1, 2) == 2
    assert policies.Layer().spare(policies.Pending("a", 0.0, 0.1, 0, scaling), 2, 2, 1, 2) == 2  # per call alike
    # Beside a model whose target (1 ms) is shorter than the unit on both cores (2 ms), the
    # last free core stays free for it; beside a looser one (3 ms) it is lent.
    policy.set_targets({"a": 100.0, "b": 1.0})
    assert policy.spare(policies.Pending("a", 0.0, 0.1, 0, scaling), 2, 2, 1, 2) == 1
    policy.set_targets({"a": 100.0, "b": 3.0})
    assert policy.spare(policies.Pending("a", 0.0, 0.1, 0, scaling), 2, 2, 1, 2) == 2
    # A second core that saves less than SPARE_MIN_GAIN_US (waking its thread costs) is not
    # lent: 800 -> 600 µs.
    short = profile("a", [800.0], two_core_share=0.75)
    assert policies.SPARE_MIN_GAIN_US == 500.0
    assert policy.spare(policies.Pending("a", 0.0, 0.1, 0, short), 1, 2, 1, 2) == 1


def test_each_unit_draws_its_round_trip_from_the_measured_quantiles():
    # 1 ms of kernels; round trips measured between 0 and 1 ms (quantiles p0, p50, p100).
    # One figure: every request 1.2 ms.  Quantiles: each unit draws its own, so the
    # latencies spread over 1..2 ms -- the same spread for the same arrivals.
    arrivals = [(0.01 * k, "a") for k in range(200)]

    def run(overhead):
        sim = simulate.Simulator({"a": profile("a", [1000.0])}, 1, "model-fcfs", {"a": 10.0},
                                 unit_overhead_us=overhead, stop_us=0)
        return [r["latency_ms"] for r in sim.run(arrivals)["requests"]]

    assert run(200.0) == [pytest.approx(1.2)] * len(arrivals)
    drawn = run([0.0, 500.0, 1000.0])
    assert drawn == run([0.0, 500.0, 1000.0])
    assert 1.0 <= min(drawn) < 1.05 and 1.95 < max(drawn) <= 2.0
    assert 1.4 < sorted(drawn)[100] < 1.6


def test_the_core_timeline_keeps_the_latest_events_and_counts_them_all(monkeypatch):
    """A server runs for days: the allocator keeps the last TIMELINE_EVENTS grants and
    releases, counts every one, and `since(n)` gives what came after the n-th."""
    from mtcc.runtime import cores

    monkeypatch.setattr(cores, "TIMELINE_EVENTS", 4)
    ticks = iter(range(100))
    allocator = cores.CoreAllocator([0, 1], clock=lambda: next(ticks))
    for k in range(5):
        assert allocator.grant(("lane", "m", 0), 1 + k % 2) is not None
        allocator.release(("lane", "m", 0))
    assert allocator.events == 10 and len(allocator.timeline) == 4
    assert [t for t, *_ in allocator.since(8)] == [8, 9]
    assert [t for t, *_ in allocator.since(0)] == [6, 7, 8, 9]  # the older ones are gone
    assert allocator.since(10) == []

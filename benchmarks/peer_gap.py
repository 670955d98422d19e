#!/usr/bin/env python3
"""What remains between mtcc and OpenVINO f32: both models' time by kind of layer, side by side.

    .venv/bin/python benchmarks/peer_gap.py build/inception_v1.mtcc examples/models/inception_v1.onnx
    .venv/bin/python benchmarks/peer_gap.py B.mtcc M.onnx --threads 1 --threads 2 --rounds 5 --json

For each thread count a fresh process pinned to that many cores times, in turns for
`--rounds` rounds, the bundle's call plan call by call (`mtcc profile`'s executor timers,
bench.calls.profile_calls) and OpenVINO f32 with its own per-layer counters (PERF_COUNT),
each round `--repeat` inferences.  Both sides' time is put into the same kinds (KINDS):
convolutions, matmuls, pools, normalizations, softmax, concatenations, layout changes and
the element-wise rest, and convolution FLOP rates are given with mtcc's FLOP count for both.
Medians over the rounds.  OpenVINO's counters time each layer apart, which costs small
layers more than they take in a plain run: their sum is printed beside the whole
inference's time, and a kind's gap means little where the two differ much.  A layer OpenVINO fuses into a convolution (bias, ReLU, a residual
add) counts as convolution there, as mtcc's fused epilogues do here.  A benchmark: it
asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KINDS = ("conv", "matmul", "pool", "norm", "softmax", "concat", "layout", "elementwise")

# mtcc's task kinds (frontend.tasks._ANCHORS) and OpenVINO's executed layer types, by kind
MTCC_KIND = {"conv2d": "conv", "conv1d": "conv", "conv3d": "conv", "conv2d_transpose": "conv",
             "matmul": "matmul", "dense": "matmul", "batch_matmul": "matmul",
             "max_pool2d": "pool", "avg_pool2d": "pool", "adaptive_avg_pool2d": "pool", "mean": "pool",
             "lrn": "norm", "layer_norm": "norm", "group_norm": "norm", "softmax": "softmax",
             "concatenate": "concat", "transpose": "layout", "reshape": "layout", "layout_transform": "layout",
             "te_layout_transform": "layout"}
OPENVINO_KIND = {"Convolution": "conv", "GroupConvolution": "conv", "Deconvolution": "conv",
                 "FullyConnected": "matmul", "MatMul": "matmul", "Gemm": "matmul",
                 "Pooling": "pool", "MaxPool": "pool", "AvgPool": "pool", "AdaptivePooling": "pool",
                 "Reduce": "pool", "ReduceMean": "pool",
                 "LRN": "norm", "MVN": "norm", "NormalizeL2": "norm", "Softmax": "softmax", "SoftMax": "softmax",
                 "Concatenation": "concat", "Concat": "concat",
                 "Reorder": "layout", "Transpose": "layout", "Reshape": "layout", "Squeeze": "layout",
                 "Unsqueeze": "layout"}
# OpenVINO's entries that are no layer's work
OPENVINO_SKIPPED = {"Input", "Parameter", "Output", "Result", "Constant"}


def openvino_kind(layer_type: str) -> str:
    return OPENVINO_KIND.get(layer_type, "elementwise")


def measure(bundle: str, onnx_path: str, threads: int, rounds: int, repeat: int) -> dict:
    """In this process (pool size and affinity already set)."""
    import numpy as np
    import openvino as ov

    from mtcc import frontend
    from mtcc.bench.baselines import OpenVino, random_inputs
    from mtcc.bench.calls import profile_calls
    from mtcc.runtime.loader import load, pin_cores

    used = pin_cores(threads)
    loaded = load(bundle)
    model = frontend.load(onnx_path)
    feeds = random_inputs(model, seed=0)
    peer = OpenVino(model, threads, precision="f32", config={"PERF_COUNT": True})
    flops = {t["name"]: float(t.get("flops") or 0.0) for t in loaded.manifest.get("tasks", [])}

    mtcc_rounds, peer_rounds, mtcc_flops = [], [], dict.fromkeys(KINDS, 0.0)
    for number in range(rounds):
        with loaded.pinned(used):
            report = profile_calls(loaded, repeat=repeat, warmup=2)
        by_kind = dict.fromkeys(KINDS, 0.0)
        for task in report["tasks"]:
            kind = MTCC_KIND.get(task["kind"], "elementwise")
            by_kind[kind] += task["us"]
            if number == 0:
                mtcc_flops[kind] += flops.get(task["task"], 0.0) * task["calls"]
        mtcc_rounds.append({"whole_us": report["whole_ms"] * 1e3, **by_kind})

        for _ in range(2):
            peer.run(feeds)
        runs = []
        for _ in range(repeat):
            start = time.perf_counter()
            peer.run(feeds)
            whole_us = (time.perf_counter() - start) * 1e6
            by_kind = dict.fromkeys(KINDS, 0.0)
            for info in peer.request.profiling_info:
                if info.status != ov.ProfilingInfo.Status.EXECUTED or info.node_type in OPENVINO_SKIPPED:
                    continue
                by_kind[openvino_kind(info.node_type)] += info.real_time.total_seconds() * 1e6
            runs.append({"whole_us": whole_us, **by_kind})
        peer_rounds.append({key: statistics.median(r[key] for r in runs) for key in runs[0]})

    def medians(samples: list[dict]) -> dict:
        return {key: round(statistics.median(s[key] for s in samples), 1) for key in samples[0]}

    mtcc_us, peer_us = medians(mtcc_rounds), medians(peer_rounds)
    rows = []
    for kind in KINDS:
        if not mtcc_us[kind] and not peer_us[kind]:
            continue
        rate = (lambda us: round(mtcc_flops[kind] / us / 1e3, 1) if mtcc_flops[kind] and us else None)
        rows.append({"kind": kind, "mtcc_us": mtcc_us[kind], "openvino_us": peer_us[kind],
                     "gap_us": round(mtcc_us[kind] - peer_us[kind], 1),
                     "mtcc_gflops_per_s": rate(mtcc_us[kind]), "openvino_gflops_per_s": rate(peer_us[kind])})
    return {"threads": threads, "cores": used, "rounds": rounds, "repeat": repeat,
            "mtcc_whole_us": mtcc_us["whole_us"], "openvino_whole_us": peer_us["whole_us"],
            "mtcc_rounds_whole_us": [round(r["whole_us"], 1) for r in mtcc_rounds],
            "openvino_rounds_whole_us": [round(r["whole_us"], 1) for r in peer_rounds],
            "mtcc_calls_sum_us": round(sum(mtcc_us[k] for k in KINDS), 1),
            "openvino_counters_sum_us": round(sum(peer_us[k] for k in KINDS), 1),
            "kinds": rows, "flops_by_kind": mtcc_flops}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle")
    parser.add_argument("onnx")
    parser.add_argument("--threads", type=int, action="append", help="repeatable (default: 1 and 2)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=20, help="inferences of each system per round")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:  # the per-thread-count process
        print(json.dumps(measure(args.bundle, args.onnx, args.child, args.rounds, args.repeat)))
        return

    from pinned import run_child

    report = {"bundle": args.bundle, "onnx": args.onnx, "results": []}
    for threads in args.threads or [1, 2]:
        result = run_child(__file__, [args.bundle, args.onnx, "--rounds", str(args.rounds), "--repeat", str(args.repeat),
                                      "--child", str(threads)], threads)
        report["results"].append(result)
        if not args.json:
            print(f"{Path(args.bundle).name}, {threads} thread(s): mtcc {result['mtcc_whole_us'] / 1e3:.2f} ms, "
                  f"OpenVINO f32 {result['openvino_whole_us'] / 1e3:.2f} ms (whole inference, median of "
                  f"{args.rounds} rounds); sums of the timed calls / of OpenVINO's counters "
                  f"{result['mtcc_calls_sum_us'] / 1e3:.2f} / {result['openvino_counters_sum_us'] / 1e3:.2f} ms")
            print(f"  {'kind':<12} {'mtcc ms':>8} {'OV ms':>8} {'gap ms':>8} {'mtcc GF/s':>10} {'OV GF/s':>9}")
            for row in result["kinds"]:
                rates = [f"{v:.1f}" if v else "-" for v in (row["mtcc_gflops_per_s"], row["openvino_gflops_per_s"])]
                print(f"  {row['kind']:<12} {row['mtcc_us'] / 1e3:8.2f} {row['openvino_us'] / 1e3:8.2f} "
                      f"{row['gap_us'] / 1e3:8.2f} {rates[0]:>10} {rates[1]:>9}")
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()

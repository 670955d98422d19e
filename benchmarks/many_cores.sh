#!/usr/bin/env bash
# `mtcc bench` at several core counts of one many-core machine: each count a separate
# bench run on the first N cores (taskset), its JSON report into OUTDIR/bench-N.json and
# its log appended to OUTDIR/bench.log (TAG=x names the reports bench-Nx.json: a second
# set with other flags beside the first).  What 2 vCPUs cannot show: whether the block
# policies pay where code gets faster with more cores, and the blocks' tables there
# (each report's config.models.<m>.block_us_by_cores: every block measured alone at
# 1 .. N cores by the server at start).
#
#   benchmarks/many_cores.sh OUTDIR "4 8 16" BUNDLE... [mtcc bench flags]
#   e.g. benchmarks/many_cores.sh out "4 8 16" build/squeezenet-x86-64-v3.mtcc \
#        build/transformer-x86-64-v3.mtcc --policy block-adaptive --policy model-fcfs \
#        --baseline onnxruntime --qos 2 --duration 1 --max-trials 4
#
# Plots from a report afterwards: mtcc.cli.render.bench_plots (see docs/bench/).
#
# On a machine without network or TVM (how docs/bench/many-cores-2026-11-26 was made): pack
# the bundles here, carry them with the apache-tvm-ffi wheel for its Python and a copy of
# apache-tvm's package without lib/libtvm_compiler.so (the runtime alone: a few MB), put both
# on PYTHONPATH there and set TVM_USE_RUNTIME_LIB=1; the bench needs no compiler (the ONNX
# Runtime baseline reads its model with onnx alone), only mtcc's own sources.
set -u
out=$1 counts=$2
shift 2
python=${PYTHON:-python3}
mkdir -p "$out"
{ echo "== $(date -u +%FT%TZ) $(nproc) cores"; lscpu | grep -E 'Model name|^CPU\(s\)|L3|NUMA node\(s\)|Thread'; } >>"$out/bench.log"
status=0
for n in $counts; do
    echo "== $n cores ${TAG:-} ($(date -u +%T)): $*" >>"$out/bench.log"
    start=$SECONDS
    taskset -c "0-$((n - 1))" "$python" -m mtcc.cli bench "$@" --json >"$out/bench-$n${TAG:-}.json" 2>>"$out/bench.log" || status=$?
    echo "== $n cores took $((SECONDS - start)) s, exit $status" >>"$out/bench.log"
done
exit $status

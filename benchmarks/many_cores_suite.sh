#!/usr/bin/env bash
# What a lent many-core machine can show that 2 vCPUs cannot, in one bounded run: the
# runtime's costs where blocks are short (benchmarks/runtime_costs.py), real tenants
# loading a shared LLC (benchmarks/tenant_interference.py beside 1 and N-1 copies), and
# `mtcc bench` on the first N cores (benchmarks/many_cores.sh) -- most telling first,
# each step skipped when the time left (SECONDS_BUDGET, default 540) is short of its
# usual length, so the run ends with what it has.
#
#   benchmarks/many_cores_suite.sh OUTDIR SQUEEZENET.mtcc TRANSFORMER.mtcc [INCEPTION_V1.mtcc]
#
# With an inception_v1 bundle it also profiles that and runs the medium mix (squeezenet +
# inception_v1 + transformer) on all N cores first: a model that scales beside two that
# scale less (bench-Nmedium.json).
# Writes into OUTDIR: suite.log (machine, steps, timings), profiles.txt (`mtcc profile --json`
# of each bundle at 1, 4 and N cores: does the code scale there), costs.txt (runtime_costs
# reports, one JSON object after another), interference.json, bench-N.json and bench.log.
# Extra `mtcc bench` flags in BENCH_FLAGS (default below); SKIP=REGEX skips the steps
# whose names match (e.g. SKIP='interference|bench 8').
set -u
out=$1 squeezenet=$2 transformer=$3 inception=${4:-}
python=${PYTHON:-python3}
budget=${SECONDS_BUDGET:-540}
mkdir -p "$out"
log=$out/suite.log
ncores=$(nproc)
bench_flags=${BENCH_FLAGS:---policy block-adaptive --policy block --policy model-edf --policy model-fcfs --baseline onnxruntime --qos 2 --qos 4@1 --duration 1 --min-requests 60 --max-trials 4 --rate 100 --simulate 16}
{ echo "== $(date -u +%FT%TZ) $ncores cores"; lscpu | grep -E 'Model name|^CPU\(s\)|L3|NUMA node\(s\)|Thread|Flags' | cut -c1-400
  "$python" -c "from mtcc.interference import machine; print('vCPU sharing:', machine.vcpu_sharing())"; } >>"$log" 2>&1

# step NAME SECONDS_NEEDED OUTFILE COMMAND...: run (stdout appended to OUTFILE) unless the
# budget left is short of SECONDS_NEEDED
step() {
    local name=$1 need=$2 dest=$3; shift 3
    local left=$((budget - SECONDS)) start=$SECONDS rc
    if [ "$left" -lt "$need" ]; then echo "== skip $name: ${left}s left, needs ~${need}s" >>"$log"; return; fi
    if [ -n "${SKIP:-}" ] && [[ $name =~ $SKIP ]]; then echo "== skip $name: SKIP=$SKIP" >>"$log"; return; fi
    echo "== $name ($(date -u +%T), ${left}s left): $*" >>"$log"
    timeout "$left" "$@" >>"$dest" 2>>"$log"
    rc=$?
    echo "== $name took $((SECONDS - start)) s, exit $rc" >>"$log"
}
costs=$out/costs.txt  # runtime_costs reports, one JSON object after another
profiles=$out/profiles.txt  # mtcc profile reports, likewise
on() { echo taskset -c "0-$(($1 - 1))"; }

# shellcheck disable=SC2046,SC2086  # $(on N) and the flags are words
{
for bundle in "$squeezenet" "$transformer" $inception; do
    for n in $(printf '%s\n' 1 4 "$ncores" | sort -nu); do
        [ "$n" -le "$ncores" ] || continue
        step "profile $(basename "$bundle") $n" 10 "$profiles" $(on "$n") "$python" -m mtcc.cli profile "$bundle" --cores "$n" --json
    done
done
if [ -n "$inception" ]; then
    step "bench $ncores medium" 200 "$log" env TAG=medium bash benchmarks/many_cores.sh "$out" "$ncores" "$squeezenet" "$inception" "$transformer" $bench_flags
fi
step "costs squeezenet $ncores block" 30 "$costs" $(on "$ncores") "$python" benchmarks/runtime_costs.py "$squeezenet" --policy block --rounds 6
step "costs squeezenet $ncores block-adaptive" 30 "$costs" $(on "$ncores") "$python" benchmarks/runtime_costs.py "$squeezenet" --policy block-adaptive --rounds 6
step "costs transformer $ncores block-adaptive" 30 "$costs" $(on "$ncores") "$python" benchmarks/runtime_costs.py "$transformer" --policy block-adaptive --rounds 6
step "bench $ncores" 110 "$log" bash benchmarks/many_cores.sh "$out" "$ncores" "$squeezenet" "$transformer" $bench_flags
step "interference" 80 "$log" "$python" benchmarks/tenant_interference.py "$squeezenet" "$transformer" --rounds 3 \
    --copies 1 --copies $((ncores - 1)) --json "$out/interference.json"
for n in 8 4; do
    [ "$n" -lt "$ncores" ] || continue
    step "bench $n" 100 "$log" bash benchmarks/many_cores.sh "$out" "$n" "$squeezenet" "$transformer" $bench_flags
done
[ "$ncores" -gt 4 ] && step "costs squeezenet 4 block-adaptive" 30 "$costs" $(on 4) "$python" benchmarks/runtime_costs.py "$squeezenet" --policy block-adaptive --rounds 6
}
echo "== done after $SECONDS s" >>"$log"

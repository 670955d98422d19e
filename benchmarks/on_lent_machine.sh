#!/usr/bin/env bash
# benchmarks/many_cores_suite.sh on a lent many-core machine that has Python 3.12, numpy,
# onnx, ONNX Runtime, click, rich, psutil and matplotlib but no network, no TVM and no
# compiler for it (the workplace's device machines).  What travels, in an ignored folder
# DEVENV of the checkout (prepared on the 2-core machine):
#   DEVENV/whl/apache_tvm_ffi-*-cp312-*.whl   the FFI wheel for that Python (pip download)
#   DEVENV/tvm-runtime.txz                    apache-tvm's Python package without
#                                             lib/libtvm_compiler.so, 3rdparty/, src/: the
#                                             runtime alone (TVM_USE_RUNTIME_LIB=1)
#   DEVENV/bundles/{squeezenet,transformer[,inception_v1]}.mtcc   packed here from the
#                                             committed schedules
#   DEVENV/vcpu-sharing                       the workplace's vCPU-sharing tool
# The ONNX models for the ONNX Runtime baseline are made there (examples/make_models.py;
# their sha256 is logged to compare with the ones the bundles were packed from).  The
# committed schedules (46 MB) need not travel: with inception_v1's bundle the checkout is
# over the workplace tool's 64 MiB, so take them out of the index for the call
# (`git rm -r --cached -q schedules` and `/schedules/` in .git/info/exclude; afterwards
# `git reset -q schedules` and drop the line) -- the files themselves stay where they are.
#
#   OUT=/results benchmarks/on_lent_machine.sh DEVENV [SECONDS_BUDGET]
#
# Everything lands in /tmp/mtcc-suite/, packed into $OUT/suite.tgz with copies of its logs
# beside it (the device tool brings back at most 8 files).  The suite stops each step in
# time, so the archive is made even when the budget runs short.
set -u
devenv=$1
export SECONDS_BUDGET=${2:-420}
site=/tmp/mtcc-site
suite=/tmp/mtcc-suite
rm -rf "$suite"
mkdir -p "$site" "$suite" "$OUT"
log=$suite/setup.log
{
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
        "$devenv"/whl/*.whl
    tar xJf "$devenv/tvm-runtime.txz" -C "$site"
} >>"$log" 2>&1
export PYTHONPATH=$site:$PWD${PYTHONPATH:+:$PYTHONPATH} TVM_USE_RUNTIME_LIB=1 PYTHONUNBUFFERED=1
export MTCC_VCPU_SHARING_TOOL=$PWD/$devenv/vcpu-sharing
models="--only squeezenet --only transformer"
[ -f "$devenv/bundles/inception_v1.mtcc" ] && models="$models --only inception_v1"
{
    python3 -c "import sys, tvm, onnxruntime, numpy; print(sys.version.split()[0], 'tvm', tvm.__version__, \
'runtime only', tvm.base._RUNTIME_ONLY, 'onnxruntime', onnxruntime.__version__, 'numpy', numpy.__version__)"
    # shellcheck disable=SC2086  # $models is words
    python3 examples/make_models.py --out examples/models $models
    sha256sum examples/models/*.onnx
} >>"$log" 2>&1
inception=""
[ -f "$devenv/bundles/inception_v1.mtcc" ] && inception=$devenv/bundles/inception_v1.mtcc
bash benchmarks/many_cores_suite.sh "$suite" "$devenv/bundles/squeezenet.mtcc" "$devenv/bundles/transformer.mtcc" \
    $inception
tar czf "$OUT/suite.tgz" -C /tmp mtcc-suite
cp "$suite"/*.log "$OUT/"

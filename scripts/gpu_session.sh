#!/usr/bin/env bash
# One device-tool call on the GPU host: the GPU test binaries, the Python
# tests that exercise the GPU, then the benchmarks named on the command
# line (bench/<name>.py, each under a time limit), over a build made
# elsewhere and carried in $BUILD (scripts/pack_gpu.sh), with the carried
# wheels in $WHL. Everything lands in $OUT.
#   BUILD=.gpu WHL=.whl bash scripts/gpu_session.sh bench_spatial bench_ccl ...
set -u
OUT=${OUT:-/tmp/vp-gpu}
mkdir -p "$OUT"
BUILD=${BUILD:-.gpu}
WHL=${WHL:-.whl}
if ls "$WHL"/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$WHL"/*.whl >"$OUT/pip.log" 2>&1 && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}"
export LD_LIBRARY_PATH="$PWD/$BUILD/deps${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export VP_TEST_DATA_DIR="$PWD/tests/data" VP_CLI="$PWD/$BUILD/bin/voxpipe"
[ -e build ] || ln -s "$BUILD" build   # benches look for build/bin/voxpipe
nvidia-smi -L | tee "$OUT/gpu.txt"
if [ -z "${SKIP_TESTS:-}" ]; then
  for t in "$BUILD"/tests/test_*${TESTS:-}*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    timeout 300 "$t" >"$OUT/$name.log" 2>&1
    echo "$name rc=$? $(grep -cE '^\[       OK' "$OUT/$name.log") ok $(grep -E '^\[  FAILED  \] [a-z]' "$OUT/$name.log" | tr '\n' ' ')"
  done | tee "$OUT/ctests.txt"
  timeout 400 python3 -m pytest -q -rs -x ${PYTEST_FILES:-tests/python/test_fusion.py \
    tests/python/test_pipeline.py tests/python/test_tensor.py tests/python/test_examples.py} \
    >"$OUT/pytest.log" 2>&1
  echo "pytest rc=$?"; tail -n 5 "$OUT/pytest.log"
fi
for b in "$@"; do
  start=$(date +%s)
  timeout "${BENCH_LIMIT:-150}" python3 "bench/$b.py" ${BENCH_ARGS:-} >"$OUT/$b.txt" 2>&1
  echo "== $b rc=$? $(( $(date +%s) - start )) s"; tail -n 30 "$OUT/$b.txt"
done

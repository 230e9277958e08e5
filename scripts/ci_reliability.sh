#!/usr/bin/env bash
# Reliability checks that .ci/run does not already make (it runs every C
# test under ASan+UBSan, the pipeline tests under TSan and every fuzz
# target for FUZZ_SECONDS):
#   1. the CLI over the bad-input corpus (info, convert, run of a bad
#      pipeline file) under valgrind (memcheck: invalid accesses, uses of
#      uninitialised values, definite leaks), or under LSan/ASan when
#      valgrind is missing (apt package: valgrind);
#   2. the fault-injection and determinism tests under TSan (destroy from
#      another thread, thread counts 1..4);
#   3. the reliability fuzz targets (gzip, pipeline_json, op_args), in
#      parallel, FUZZ_SECONDS each (default 60; 0 skips them, e.g. when
#      .ci/run's fuzz loop already ran them).
# 2.5 minutes on 2 cores when the build directories exist (5 from
# scratch).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/cuda/bin"
JOBS=${JOBS:-$(nproc)}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
fail=0
BAD=tests/data/bad
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# cmake --build quietly; the log only when it fails
quiet_build() {
  if ! cmake --build "$@" >"$work/build.log" 2>&1; then
    tail -n 40 "$work/build.log"
    exit 1
  fi
}

bad_files() {
  ls "$BAD" | grep -v -E '\.(py|img|img\.gz)$'
}

# Runs one CLI command under the checker ($CHECK); the CLI must exit 1 (a
# clean error), the checker must report nothing.
check_cli() {
  local what=$1
  shift
  local log="$work/check.log"
  set +e
  $CHECK "$@" >"$work/out.txt" 2>"$log"
  local rc=$?
  set -e
  if [ "$rc" -ne 1 ] || grep -q -E 'ERROR SUMMARY: [1-9]|definitely lost: [1-9]|Sanitizer|runtime error' "$log"; then
    echo "FAIL ($what, exit $rc): $*"
    tail -n 25 "$log"
    fail=1
  fi
}

echo "== 1. the CLI over the bad-input corpus"
if command -v valgrind >/dev/null; then
  # a CPU-only build: CUDA's runtime drowns memcheck in reports of its own
  cmake -S . -B build-valgrind -DCMAKE_BUILD_TYPE=Debug -DVP_WITH_CUDA=OFF -DVP_BUILD_PYTHON=OFF \
    -DVP_BUILD_TESTS=OFF >/dev/null
  quiet_build build-valgrind -j"$JOBS" --target voxpipe_cli
  CLI=build-valgrind/bin/voxpipe
  CHECK="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite"
  echo "   (valgrind memcheck)"
else
  echo "   valgrind not installed (apt-get install valgrind): using ASan + LSan"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DVP_SANITIZE=address,undefined \
    -DVP_WITH_CUDA=OFF -DVP_BUILD_PYTHON=OFF >/dev/null
  quiet_build build-asan -j"$JOBS" --target voxpipe_cli
  CLI=build-asan/bin/voxpipe
  CHECK=""
  export ASAN_OPTIONS=detect_leaks=1:exitcode=99 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=99
fi
n=0
for f in $(bad_files); do
  check_cli info $CLI info "$BAD/$f"
  check_cli convert $CLI convert "$BAD/$f" "$work/converted.nii.gz"
  [ -e "$work/converted.nii.gz" ] && { echo "FAIL: convert of $f left an output file"; fail=1; }
  n=$((n + 1))
done
# pipeline files: malformed JSON, unknown keys, a dataset of bad files
mkdir -p "$work/ds"
for f in npy_truncated_data.npy npy_bad_shape_tuple.npy; do cp "$BAD/$f" "$work/ds/img_$f"; done
printf '{"reader": {"root": "%s", "image_glob": "img_*.npy"}, "outputs": ["image"]}' "$work/ds" \
  >"$work/badcases.json"
printf '{"reader": {"root": ".", "shufle": true}, "outputs": ["image"]}' >"$work/badkey.json"
printf '{"reader": {"root": ".", "image_glob": "*.npy"}, "nodes": [{"op": "pad", "inputs": ["image"], "args": {"before": [1099511627776]}, "outputs": ["x"]}], "outputs": ["x"]' >"$work/truncated.json"
for j in badcases badkey truncated; do
  check_cli run $CLI run "$work/$j.json" --iterations 2 --device cpu
done
echo "   $n bad files x (info, convert) and 3 bad pipeline files: $([ $fail = 0 ] && echo clean || echo FAILURES)"

echo "== 2. fault injection and determinism under TSan"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DVP_SANITIZE=thread -DVP_WITH_CUDA=OFF \
  -DVP_BUILD_PYTHON=OFF >/dev/null
quiet_build build-tsan -j"$JOBS" --target test_faults test_determinism test_arg_validation
TSAN_OPTIONS=halt_on_error=1 ctest --test-dir build-tsan --output-on-failure \
  -R '^(test_faults|test_determinism|test_arg_validation)$' || fail=1

if [ "$FUZZ_SECONDS" -gt 0 ]; then
  echo "== 3. reliability fuzz targets, $FUZZ_SECONDS s each (in parallel)"
  CC=clang cmake -S . -B build-fuzz -DVP_FUZZ=ON -DVP_WITH_CUDA=OFF -DVP_BUILD_PYTHON=OFF \
    -DVP_BUILD_TESTS=OFF >/dev/null
  quiet_build build-fuzz -j"$JOBS" --target fuzz_gzip fuzz_pipeline_json fuzz_op_args
  pids=()
  for name in gzip pipeline_json op_args; do
    mkdir -p "$work/fuzz_$name"
    cp -r "fuzz/corpus/$name"/. "$work/fuzz_$name"/
    build-fuzz/fuzz/fuzz_$name -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -timeout=60 \
      -print_final_stats=1 -artifact_prefix="$work/fuzz_$name-" "$work/fuzz_$name" \
      >"$work/fuzz_$name.log" 2>&1 &
    pids+=($!)
  done
  i=0
  for name in gzip pipeline_json op_args; do
    if ! wait "${pids[$i]}"; then
      echo "FAIL: fuzz_$name found a problem:"
      grep -E -A12 '^==[0-9]+==ERROR|deadly signal|SUMMARY' "$work/fuzz_$name.log" | head -40
      mkdir -p build-fuzz/artifacts && cp "$work"/fuzz_$name-* build-fuzz/artifacts/ 2>/dev/null || true
      fail=1
    fi
    echo "-- fuzz_$name: $(grep -h 'stat::number_of_executed_units' "$work/fuzz_$name.log" | awk '{print $2}') executions"
    i=$((i + 1))
  done
fi

if [ "$fail" != 0 ]; then
  echo "ci_reliability: FAILED"
  exit 1
fi
echo "ci_reliability: all checks passed"

#!/usr/bin/env bash
# Long fuzzing: each libFuzzer target for RUNS executions (default 10
# million), one after another, starting from its seed corpus plus what
# earlier long runs found. Results go to $OUT (default $BUILD/out/, ignored by git): per
# target a log, the grown corpus, crash/leak/timeout artifacts and a line
# in $OUT/summary.md. Exit status 1 when any target left a crash, leak,
# timeout or out-of-memory artifact.
#
#   scripts/fuzz_long.sh                     # every fuzz/fuzz_*.c target
#   scripts/fuzz_long.sh gzip op_args        # some of them
#   RUNS=1000000 JOBS=2 scripts/fuzz_long.sh # shorter, 2 processes per target
#
# docs/reliability.md lists the expected time per target.
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10000000}
JOBS=${JOBS:-1}
BUILD=${BUILD:-build-fuzz-long}
OUT=${OUT:-$BUILD/out}
export PATH="$PATH:/usr/local/cuda/bin"

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  CC=clang cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVP_FUZZ=ON \
    -DVP_WITH_CUDA=OFF -DVP_BUILD_PYTHON=OFF -DVP_BUILD_TESTS=OFF >/dev/null || exit 2
fi
if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=($(cd fuzz && ls fuzz_*.c | sed 's/^fuzz_//; s/\.c$//'))
fi
cmake --build "$BUILD" -j"${BUILD_JOBS:-2}" --target $(printf 'fuzz_%s ' "${targets[@]}") >/dev/null || exit 2

mkdir -p "$OUT"
[ -f "$OUT/summary.md" ] || {
  echo "| target | executions | seconds | exec/s | corpus | peak RSS MB | crashes/leaks/timeouts | slow units |" >"$OUT/summary.md"
  echo "|---|---|---|---|---|---|---|---|" >>"$OUT/summary.md"
}
status=0
for name in "${targets[@]}"; do
  dir="$OUT/$name"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  [ -d "fuzz/corpus/$name" ] && cp -rn "fuzz/corpus/$name"/. "$dir/corpus"/
  log="$OUT/$name.log"
  echo "-- fuzz_$name: $RUNS executions ($JOBS job(s)), log $log"
  t0=$(date +%s)
  if [ "$JOBS" -gt 1 ]; then
    # -jobs splits the runs: each worker does RUNS / JOBS
    "$BUILD/fuzz/fuzz_$name" -runs=$((RUNS / JOBS)) -jobs="$JOBS" -workers="$JOBS" \
      -rss_limit_mb=2048 -timeout=60 -report_slow_units=30 -print_final_stats=1 \
      -artifact_prefix="$dir/artifacts/" "$dir/corpus" >"$log" 2>&1
    cat fuzz-*.log >>"$log" 2>/dev/null && rm -f fuzz-*.log
  else
    "$BUILD/fuzz/fuzz_$name" -runs="$RUNS" -rss_limit_mb=2048 -timeout=60 -report_slow_units=30 -print_final_stats=1 \
      -artifact_prefix="$dir/artifacts/" "$dir/corpus" >"$log" 2>&1
  fi
  t1=$(date +%s)
  execs=$(grep -h 'stat::number_of_executed_units' "$log" | awk '{s += $2} END {print s + 0}')
  rss=$(grep -h 'stat::peak_rss_mb' "$log" | awk '$2 > m {m = $2} END {print m + 0}')
  secs=$((t1 - t0))
  rate=$((execs / (secs > 0 ? secs : 1)))
  # slow units are reported, not failures: a starved (niced, shared) process
  # shows wall-clock stalls that replay in milliseconds
  nart=$(ls "$dir/artifacts" | grep -c -E '^(crash|leak|timeout|oom)-' || true)
  nslow=$(ls "$dir/artifacts" | grep -c '^slow-unit-' || true)
  ncorp=$(ls "$dir/corpus" | wc -l)
  echo "| fuzz_$name | $execs | $secs | $rate | $ncorp | $rss | $nart | $nslow |" >>"$OUT/summary.md"
  echo "   $execs executions in $secs s, $nart crash/leak/timeout artifact(s), $nslow slow unit(s)"
  if [ "$nart" -gt 0 ]; then
    status=1
    grep -h -m3 -E '^==[0-9]+==ERROR|SUMMARY' "$log"
  fi
done
cat "$OUT/summary.md"
exit $status

#!/usr/bin/env bash
# The long fuzz runs on a many-core host (the GPU machine's 16 cores): each
# named target from $BIN (libFuzzer binaries, ASan + UBSan) split over $JOBS
# processes of RUNS / JOBS executions each, from its seed corpus; a table of
# executions and findings per target goes to $OUT/fuzz_long.md.
#   BIN=.fuzzpack/bin JOBS=16 RUNS=10000000 bash scripts/fuzz_device.sh gzip op_args
# MAX_SECONDS caps each process's time (it then stops cleanly and reports).
set -u
BIN=${BIN:-.fuzzpack/bin}
JOBS=${JOBS:-16}
RUNS=${RUNS:-10000000}
OUT=${OUT:-/tmp/vp-fuzz}
mkdir -p "$OUT"
[ -f "$OUT/fuzz_long.md" ] || printf '| target | processes | executions | seconds | findings |\n|---|---:|---:|---:|---|\n' >"$OUT/fuzz_long.md"
for t in "$@"; do
  start=$(date +%s)
  per=$(( (RUNS + JOBS - 1) / JOBS ))
  declare -A ART
  for j in $(seq 1 "$JOBS"); do
    w=$(mktemp -d); a=$(mktemp -d); ART[$j]=$a
    cp -r "fuzz/corpus/$t/." "$w/" 2>/dev/null
    ( "$BIN/fuzz_$t" -runs="$per" -seed="$j" -rss_limit_mb=2048 -timeout=60 \
        ${MAX_SECONDS:+-max_total_time=$MAX_SECONDS} \
        -artifact_prefix="$a/" -print_final_stats=1 "$w" >"$OUT/$t.$j.log" 2>&1;
      ls "$a" >"$OUT/$t.$j.artifacts" ) &
  done
  wait
  execs=$(grep -h "stat::number_of_executed_units" "$OUT/$t".*.log | awk '{s+=$2} END {print s+0}')
  finds=$(cat "$OUT/$t".*.artifacts | grep -c . )
  # keep the artifacts and the logs of the processes that found something
  mkdir -p "$OUT/findings"
  for j in $(seq 1 "$JOBS"); do
    if [ -s "$OUT/$t.$j.artifacts" ] || ! grep -q "stat::number_of_executed_units" "$OUT/$t.$j.log"; then
      cp "$OUT/$t.$j.log" "$OUT/findings/"
      for f in $(cat "$OUT/$t.$j.artifacts"); do cp "${ART[$j]}/$f" "$OUT/findings/$t.$j.$f"; done
    fi
    rm -f "$OUT/$t.$j.log" "$OUT/$t.$j.artifacts"
  done
  printf '| fuzz_%s | %d | %d | %d | %s |\n' "$t" "$JOBS" "$execs" $(( $(date +%s) - start )) \
    "$([ "$finds" -eq 0 ] && echo none || echo "$finds artifacts")" | tee -a "$OUT/fuzz_long.md"
done

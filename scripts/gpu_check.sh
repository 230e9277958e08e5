#!/usr/bin/env bash
# Runs on the GPU host (the device tool) over a build made elsewhere:
# every C test binary (the GPU ones included) and the Python tests, with
# carried wheels for what the host lacks. Logs go to $OUT.
set -u
OUT=${OUT:-/tmp/vp-gpu}
mkdir -p "$OUT"
BUILD=${BUILD:-build}
WHL=${WHL:-.whl}
if ls "$WHL"/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$WHL"/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}"
export LD_LIBRARY_PATH="$PWD/$BUILD/deps${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export VP_TEST_DATA_DIR="$PWD/tests/data" VP_CLI="$PWD/$BUILD/bin/voxpipe"
nvidia-smi -L | tee "$OUT/gpu.txt"
fail=0
for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  "$t" >"$OUT/$name.log" 2>&1
  rc=$?
  echo "$name rc=$rc $(grep -E 'PASSED|FAILED|SKIPPED' "$OUT/$name.log" | tr '\n' ' ')"
  [ $rc -eq 0 ] || fail=1
done | tee "$OUT/ctests.txt"
grep -q "rc=[^0]" "$OUT/ctests.txt" && fail=1
python3 -m pytest -q -rs tests/python ${PYTEST_ARGS:-} >"$OUT/pytest.log" 2>&1 || fail=1
tail -n 15 "$OUT/pytest.log"
exit $fail

#!/usr/bin/env bash
# Copies what the GPU host needs from a build folder (CLI, test binaries,
# bundled shared libraries) into .gpu/, small enough to carry with the
# device tool: run `BUILD=.gpu bash scripts/gpu_check.sh` there.
set -euo pipefail
BUILD=${BUILD:-build}
rm -rf .gpu
mkdir -p .gpu/tests
cp -r "$BUILD/bin" "$BUILD/deps" .gpu/
cp "$BUILD"/tests/test_* .gpu/tests/
strip --strip-unneeded .gpu/bin/* .gpu/tests/* 2>/dev/null || true
du -sh .gpu

#!/usr/bin/env bash
# The I/O benchmarks of the foundation issue, side by side with the peers in
# one run: NIfTI .nii.gz read/write against nibabel, .npy region reads
# against NumPy. Writes bench/results/io.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}"
out=bench/results/io.md
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 bench/bench_nifti.py --out "$tmp/nifti.md"
python3 bench/bench_npy_roi.py --path "$tmp/roi.npy" --out "$tmp/npy.md"
{
  echo "# I/O benchmarks"
  echo
  echo "Command: \`bench/run_io.sh\` (from the repository root, after \`make\`)."
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'),"
  echo "$(free -g | awk '/Mem:/{print $2}') GiB; $(date -u +%Y-%m-%d); voxpipe $(python3 -c 'import voxpipe; print(voxpipe.__version__)'),"
  echo "nibabel $(python3 -c 'import nibabel; print(nibabel.__version__)'), NumPy $(python3 -c 'import numpy; print(numpy.__version__)'), Python $(python3 -c 'import platform; print(platform.python_version())')."
  echo "Files are in the page cache (warm reads); medians of several runs after a warm-up."
  echo
  echo "## NIfTI (.nii.gz, BraTS-like 4 x 155 x 240 x 240 int16)"
  echo
  cat "$tmp/nifti.md"
  echo
  echo "## NumPy .npy region of interest (128^3 of 512 x 512 x 300 float32)"
  echo
  cat "$tmp/npy.md"
} >"$out"
cat "$out"

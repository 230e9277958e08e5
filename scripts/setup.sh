#!/usr/bin/env bash
# Installs what voxpipe needs to build and test, only what is missing:
# quick when everything is there. Debian packages and PyPI only.
set -euo pipefail

APT_PACKAGES=(cmake pkg-config libdeflate-dev zlib1g-dev libpng-dev libjansson-dev
              libcmocka-dev libdlpack-dev clang libclang-rt-14-dev valgrind)
PY_MODULES=(numpy scipy nibabel pytest)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
pymissing=()
for m in "${PY_MODULES[@]}"; do
  "$PY" -c "import $m" 2>/dev/null || pymissing+=("$m")
done
if [ ${#pymissing[@]} -gt 0 ]; then
  echo "setup: installing Python packages: ${pymissing[*]}"
  "$PY" -m pip install -q --disable-pip-version-check "${pymissing[@]}"
fi

command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] ||
  echo "setup: nvcc not found: voxpipe builds without its CUDA backend"
exit 0

#!/usr/bin/env bash
# The main job on a fresh machine: synthesise a small BraTS-like dataset,
# describe it, run the nnU-Net example pipeline (on the GPU when there is
# one, else on the CPU) for a few hundred batches with a progress line, print
# the throughput and write previews to demo-out/.
set -euo pipefail
BUILD=${BUILD:-build}
VP="$BUILD/bin/voxpipe"
OUT=demo-out
ITER=${DEMO_ITERATIONS:-200}
export VP_PROGRESS=1
rm -rf "$OUT"
mkdir -p "$OUT"

echo "== voxpipe synth: 4 BraTS-like cases (4 modalities x 155 x 240 x 240), nnU-Net's npy layout"
"$VP" synth --kind brats --cases 4 --seed 7 --format npy --out "$OUT/data/brats"
echo "== voxpipe info (the first case)"
"$VP" info "$OUT"/data/brats/case_00000_x.npy "$OUT"/data/brats/case_00000_y.npy

gpus=$(PYTHONPATH=python ${PYTHON:-python3} -c 'import voxpipe; print(voxpipe.cuda_device_count())' 2>/dev/null || echo 0)
device=cpu
[ "$gpus" -gt 0 ] && device=gpu
echo "== voxpipe run examples/nnunet_brats.json on the $device: $ITER batches of 2 x 128^3 patches"
"$VP" run examples/nnunet_brats.json --device "$device" --iterations "$ITER" --save "$OUT/nnunet"

echo "== previews"
"$VP" preview "$OUT"/data/brats/case_00000_x.npy --label "$OUT"/data/brats/case_00000_y.npy \
  --out "$OUT/case_00000.png"
"$VP" preview --pipeline examples/nnunet_brats.json --out "$OUT/stages"
echo "wrote $OUT/case_00000.png (a whole case), $OUT/nnunet/preview.png (an augmented patch)"
echo "and $OUT/stages/ (one patch before and after each augmentation)"

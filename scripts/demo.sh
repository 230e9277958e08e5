#!/usr/bin/env bash
# The main job, for now: synthesise a small BraTS-like dataset, describe it
# and draw a preview. (The pipeline issue grows this into a training feed.)
set -euo pipefail
BUILD=${BUILD:-build}
VP="$BUILD/bin/voxpipe"
OUT=${DEMO_DIR:-demo}
rm -rf "$OUT"
echo "== voxpipe synth: 2 BraTS-like cases (4 x 155 x 240 x 240) into $OUT/brats"
"$VP" synth --kind brats --cases 2 --seed 7 --out "$OUT/brats"
echo "== voxpipe info"
"$VP" info "$OUT"/brats/imagesTr/*_001.nii.gz "$OUT"/brats/labelsTr/*_001.nii.gz
echo "== voxpipe preview"
"$VP" preview "$OUT"/brats/imagesTr/*_001.nii.gz --label "$OUT"/brats/labelsTr/*_001.nii.gz \
  --out "$OUT/brats_001.png"
echo "wrote $OUT/brats_001.png"

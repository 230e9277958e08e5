/* libFuzzer target: the input is a whole single-file .nii or .nii.gz held
 * in memory (gzip is recognised by its magic bytes). It is loaded whole,
 * raw, and through a small region steered by the last byte; whatever comes
 * back is released. */
#include <stddef.h>
#include <stdint.h>

#include "io/formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  vp_source s;
  vp_tensor *t = NULL;

  vp_source_from_memory(&s, data, size, "fuzz.nii");
  if (vp_nifti_load_source(&s, NULL, &t) == VP_OK) vp_tensor_release(t);
  t = NULL;

  uint8_t k = size ? data[size - 1] : 0;
  vp_load_opts o;
  vp_load_opts_init(&o);
  o.raw = k & 1;
  o.roi_ndim = 1 + k % 3;
  o.oob = (vp_oob_policy)(k / 3 % 3);
  o.fill = -2.5;
  for (int a = 0; a < o.roi_ndim; a++) {
    o.roi_start[a] = (int64_t)(k >> (a + 2) & 3) - 1;
    o.roi_shape[a] = 1 + (k >> a & 3);
  }
  vp_source_from_memory(&s, data, size, "fuzz.nii");
  if (vp_nifti_load_source(&s, &o, &t) == VP_OK) vp_tensor_release(t);
  return 0;
}

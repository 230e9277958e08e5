/* Synthetic datasets (stub until implemented). */
#include <string.h>

#include "core/status.h"

void vp_synth_opts_init(vp_synth_opts *o) { memset(o, 0, sizeof *o); }
vp_status vp_synth_case(const vp_synth_opts *o, int case_index, vp_tensor **image,
                        vp_tensor **label) {
  (void)o, (void)case_index, (void)image, (void)label;
  return vp_fail(VP_ERR_UNSUPPORTED, "synth not implemented yet");
}
vp_status vp_synth_dataset(const vp_synth_opts *o, const char *dir,
                           void (*progress)(int done, int total, void *ctx), void *ctx) {
  (void)o, (void)dir, (void)progress, (void)ctx;
  return vp_fail(VP_ERR_UNSUPPORTED, "synth not implemented yet");
}

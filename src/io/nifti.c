/* NIfTI-1/2 (stub until implemented). */
#include "core/status.h"
#include "io/formats.h"

vp_status vp_nifti_load(const char *path, const vp_load_opts *opts, vp_tensor **out) {
  (void)opts, (void)out;
  return vp_fail(VP_ERR_UNSUPPORTED, "%s: NIfTI not implemented yet", path);
}
vp_status vp_nifti_load_source(vp_source *s, const vp_load_opts *opts, vp_tensor **out) {
  (void)opts, (void)out;
  return vp_fail(VP_ERR_UNSUPPORTED, "%s: NIfTI not implemented yet", s->name);
}
vp_status vp_nifti_info(const char *path, vp_file_info *out) {
  (void)out;
  return vp_fail(VP_ERR_UNSUPPORTED, "%s: NIfTI not implemented yet", path);
}
vp_status vp_nifti_save(const char *path, const vp_tensor *t, const vp_save_opts *opts) {
  (void)t, (void)opts;
  return vp_fail(VP_ERR_UNSUPPORTED, "%s: NIfTI not implemented yet", path);
}

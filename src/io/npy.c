/* NumPy .npy reader and writer (stub until implemented). */
#include "core/status.h"
#include "io/formats.h"
#include "io/region.h"

vp_status vp_npy_parse_header(const void *buf, size_t n, uint64_t file_size, const char *name,
                              vp_npy_header *out) {
  (void)buf, (void)n, (void)file_size, (void)out;
  return vp_fail(VP_ERR_UNSUPPORTED, "%s: npy not implemented yet", name);
}
vp_status vp_npy_load_source(vp_source *s, const vp_load_opts *opts, vp_tensor **out) {
  (void)opts, (void)out;
  return vp_fail(VP_ERR_UNSUPPORTED, "%s: npy not implemented yet", s->name);
}
vp_status vp_npy_info(vp_source *s, vp_file_info *out) {
  (void)out;
  return vp_fail(VP_ERR_UNSUPPORTED, "%s: npy not implemented yet", s->name);
}
vp_status vp_npy_save(const char *path, const vp_tensor *t) {
  (void)t;
  return vp_fail(VP_ERR_UNSUPPORTED, "%s: npy not implemented yet", path);
}

/* Regions of interest (stub until implemented). */
#include "core/status.h"
#include "io/region.h"

vp_status vp_region_resolve(const vp_load_opts *opts, int ndim, const int64_t *shape,
                            const char *name, vp_region *out) {
  (void)opts, (void)ndim, (void)shape, (void)out;
  return vp_fail(VP_ERR_UNSUPPORTED, "%s: regions not implemented yet", name);
}
vp_status vp_region_read(vp_source *s, uint64_t offset, vp_dtype dtype, int ndim,
                         const int64_t *shape, const vp_region *r, double fill, int swapped,
                         void *dst) {
  (void)offset, (void)dtype, (void)ndim, (void)shape, (void)r, (void)fill, (void)swapped, (void)dst;
  return vp_fail(VP_ERR_UNSUPPORTED, "%s: regions not implemented yet", s->name);
}
void vp_region_copy(const void *src, vp_dtype dtype, int ndim, const int64_t *shape,
                    const vp_region *r, double fill, void *dst) {
  (void)src, (void)dtype, (void)ndim, (void)shape, (void)r, (void)fill, (void)dst;
}
void vp_fill_element(vp_dtype dtype, double fill, void *elem) { (void)dtype, (void)fill, (void)elem; }

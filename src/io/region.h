/* Regions of interest of C-order arrays: resolving a request against an
 * array's shape, and copying a region out of a file (reading only the
 * bytes the region needs) or out of memory. */
#ifndef VP_IO_REGION_H
#define VP_IO_REGION_H

#include <stdint.h>

#include "io/source.h"
#include "voxpipe.h"

typedef struct vp_region {
  int ndim;
  int64_t start[VP_MAX_NDIM]; /* may be negative / past the end under VP_OOB_PAD */
  int64_t shape[VP_MAX_NDIM]; /* the output's shape */
} vp_region;

/* The region that opts asks of an array of `shape` (the whole array when
 * opts is NULL or roi_ndim is 0). Applies the out-of-bounds policy: error
 * (message names `name`, the axis and the bounds), pad (kept as asked) or
 * trim (clipped; may become empty). */
vp_status vp_region_resolve(const vp_load_opts *opts, int ndim, const int64_t *shape,
                            const char *name, vp_region *out);

/* Copies region r of the C-order array (ndim, shape, dtype) stored at byte
 * `offset` of s into dst (C-order, r->shape). Reads each contiguous run
 * once with one pread; voxels outside the array take `fill` (converted to
 * the dtype; for swapped=1 the fill is stored byte-swapped so a later
 * whole-buffer swap restores it). */
vp_status vp_region_read(vp_source *s, uint64_t offset, vp_dtype dtype, int ndim,
                         const int64_t *shape, const vp_region *r, double fill, int swapped,
                         void *dst);

/* Same, from an array in memory. */
void vp_region_copy(const void *src, vp_dtype dtype, int ndim, const int64_t *shape,
                    const vp_region *r, double fill, void *dst);

/* Writes `fill` converted to dtype (saturated, rounded) into one element. */
void vp_fill_element(vp_dtype dtype, double fill, void *elem);

#endif

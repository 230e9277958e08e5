/* Connected-component labelling, shared by the connected_components,
 * random_object_bbox, remove_small_objects and keep_largest_components
 * operators (CPU side; the GPU side is src/cuda/ccl.h).
 *
 * A volume is (D, H, W) in C order (2-D data: D = 1 and a 2-D
 * connectivity). Foreground: with `select` set, voxels equal to
 * select_value (binary); otherwise voxels != background, which join when
 * their values are equal (multi_label) or whatever their values (binary).
 * Labels are int32, 0 = background, components numbered 1..count in the
 * order of each component's first voxel in C order, so the numbering is
 * a function of the input alone (whatever the thread count or backend). */
#ifndef VP_OPS_CCL_H
#define VP_OPS_CCL_H

#include <stdint.h>

#include "core/threadpool.h"
#include "voxpipe.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vp_ccl_params {
  int connectivity;    /* 3-D: 6, 18, 26; 2-D (D = 1): 4, 8 */
  int multi_label;     /* 1: neighbours join only when their values are equal */
  int select;          /* 1: foreground = (value == select_value), binary */
  double select_value; /* exact comparison in the input's dtype */
  double background;   /* without select: foreground = value != background */
} vp_ccl_params;

/* Labels one volume: in has dtype `dtype` (any of voxpipe's) and shape
 * (D, H, W); labels (int32, D*H*W) and *count are written. Multithreaded on
 * pool (may be NULL). Volumes of more than INT32_MAX voxels are refused
 * (labels are int32). */
vp_status vp_ccl_label_cpu(const void *in, vp_dtype dtype, const int64_t shape[3],
                           const vp_ccl_params *p, int32_t *labels, int64_t *count,
                           vp_threadpool *pool);

/* Per-component statistics of a labelling with `count` components: sizes
 * (voxel counts, `count` values) and boxes (count x 6: lo d, h, w then hi
 * d, h, w, hi exclusive); either may be NULL. */
vp_status vp_ccl_stats_cpu(const int32_t *labels, const int64_t shape[3], int64_t count,
                           int64_t *sizes, int64_t *boxes, vp_threadpool *pool);

#ifdef __cplusplus
}
#endif
#endif

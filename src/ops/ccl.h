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

#include "core/convert.h"
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


/* ---- shared by the CPU and GPU labellers (additions) ---- */

/* The foreground test of one volume, resolved from vp_ccl_params and the
 * dtype once: integer dtypes compare exactly as int64 (a reference value
 * that is no integer in int64's range equals no voxel), float dtypes as
 * doubles (so NaN is foreground against any background, and never
 * selected). */
typedef struct vp_ccl_pred {
  int select;   /* 1: fg = (value == ref); 0: fg = (value != ref) */
  int has_ref;  /* integers: ref is representable (else it equals nothing) */
  int64_t iref; /* integer dtypes */
  double dref;  /* float dtypes */
} vp_ccl_pred;

VP_HD int vp_ccl_fg_int(const vp_ccl_pred *pr, int64_t v) {
  return pr->select ? (pr->has_ref && v == pr->iref) : (!pr->has_ref || v != pr->iref);
}
VP_HD int vp_ccl_fg_float(const vp_ccl_pred *pr, double v) {
  return pr->select ? v == pr->dref : !(v == pr->dref);
}
/* The predicate of reference value x in mode `select` (x need not be an
 * integer; the GPU's per-sample selection builds it on the device). */
VP_HD vp_ccl_pred vp_ccl_pred_of(int select, double x) {
  vp_ccl_pred pr;
  pr.select = select;
  pr.dref = x;
  /* -2^63 <= x < 2^63 and integral: exactly an int64 */
  pr.has_ref = x >= -9223372036854775808.0 && x < 9223372036854775808.0 && x == floor(x);
  pr.iref = pr.has_ref ? (int64_t)x : 0;
  return pr;
}

/* Checks a volume's shape and the parameters (connectivity valid for the
 * shape, at most INT32_MAX voxels); messages start with `who`. Returns the
 * 3-D connectivity to use in *conn3 (2-D 4 -> 6, 8 -> 18: the same
 * neighbours when D = 1). */
vp_status vp_ccl_check(const char *who, const int64_t shape[3], const vp_ccl_params *p,
                       int *conn3);

/* Operators on the labelling (connected_components, component filters):
 * the volume of tensor t, (H, W) -> (1, H, W), (D, H, W), (1, D, H, W) ->
 * (D, H, W), its spatial rank (2 or 3), and parameters with the
 * connectivity argument resolved (0 = full: 8 in 2-D, 26 in 3-D); the
 * other fields zero. */
vp_status vp_ccl_op_geometry(const char *op, const vp_tensor *t, int conn_arg, int64_t shape[3],
                             int *spatial, vp_ccl_params *p);

#ifdef __cplusplus
}
#endif
#endif

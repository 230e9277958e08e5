/* Component filters on the GPU (src/cuda/component_filters.cu): the GPU
 * bodies of remove_small_objects and keep_largest_components
 * (src/ops/component_filters.c), bit for bit the CPU bodies' outputs.
 *
 * Method, per run of samples that share dtype and labelling parameters
 * (normally the whole batch), all queued on the call's stream with no host
 * round trip:
 *   label      vp_cuda_ccl_label into scratch int32 labels (with counts)
 *   histogram  sizes[L - 1] += 1 per voxel of label L, int32 entries, one
 *              per voxel of the sample (a sample has at most one component
 *              per voxel, so every count fits whatever the data); atomics
 *              aggregated per warp, since runs of a label are long
 *   rank       keep_largest only: one 64-bit key per component, (group
 *              value, sample, size descending, label) packed into as few
 *              bits as the run needs, sorted by CUB radix sort (two stable
 *              sorts when the value does not fit beside the rest); in
 *              sorted order a component is among its group's k largest iff
 *              the entry k places before it belongs to another group
 *   apply      out = in, or the background where the component is dropped
 *
 * The top half is plain C (the op file includes it with or without CUDA). */
#ifndef VP_CUDA_COMPONENT_FILTERS_H
#define VP_CUDA_COMPONENT_FILTERS_H

#include <stdint.h>

#include "core/convert.h"
#include "ops/ccl.h"
#include "voxpipe.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The group of a component's value under keep_largest_components'
 * `independent`: values compared as doubles (as the CPU body loads them),
 * +0 and -0 one group, all NaNs one group (NaN == NaN is false, so without
 * this every NaN component would be a group of its own and the CPU's sort
 * comparator inconsistent). The key orders as the doubles do, NaN last. */
VP_HD uint64_t vp_cf_group_key(double x) {
  union {
    double d;
    uint64_t u;
  } b;
  if (x != x) return 0xfff8000000000000ull; /* above +inf's key, 0xfff0... */
  b.d = x == 0 ? 0.0 : x;
  return (b.u >> 63) ? ~b.u : b.u | 0x8000000000000000ull;
}

/* One sample: device pointers to D*H*W elements (in may equal out). */
typedef struct vp_cf_sample {
  const void *in;
  void *out;
  int64_t shape[3]; /* (D, H, W); 2-D data has D = 1 */
  /* remove_small_objects: components of fewer than `threshold` voxels go;
   * keep_largest_components: the `threshold` largest of each group stay */
  int64_t threshold;
  uint64_t background; /* the bytes removed voxels take, in the dtype */
} vp_cf_sample;

typedef enum vp_cf_mode { VP_CF_REMOVE_SMALL, VP_CF_KEEP_LARGEST } vp_cf_mode;

/* Runs the filter over n samples of dtype `dtype` on stream `stream` (a
 * cudaStream_t), labelled with p (connectivity, multi_label, background;
 * select unused). keep_largest groups components by value when
 * p->multi_label (`independent`), else per sample only. Scratch comes from
 * vp_cuda_malloc_async on the stream and goes back in stream order.
 * Returns without synchronising. */
vp_status vp_cuda_component_filter(const vp_cf_sample *samples, int64_t n, vp_dtype dtype,
                                   const vp_ccl_params *p, vp_cf_mode mode, void *stream);

#ifdef __cplusplus
}
#endif
#endif

/* Connected-component labelling on the GPU, batched (src/cuda/ccl.cu).
 *
 * The same semantics as vp_ccl_label_cpu (src/ops/ccl.h), bit for bit:
 * int32 labels, 0 = background, components numbered 1..count in the order
 * of each component's first voxel in C order. Volumes of up to INT32_MAX
 * voxels each.
 *
 * Method: union-find with one node per voxel stored in the labels array
 * itself (parent = a smaller linear index, so a root is its component's
 * first voxel), merges by atomicMin, path compression, then deterministic
 * renumbering: one bit per root voxel, a prefix sum over the 32-voxel words
 * of those bits, label = rank of the root + 1. Binary labelling at full
 * connectivity (26, 2-D 8) uses one node per 2x2x2 block instead
 * (ccl_blocks.cu), numbered the same way. A call queues a fixed
 * number of kernels on the stream (no host round trip, no synchronisation)
 * whatever the data, for the whole batch.
 *
 * Plain C: callers include it from .c files; defined only when voxpipe is
 * built with its CUDA backend (VP_HAVE_CUDA). */
#ifndef VP_CUDA_CCL_H
#define VP_CUDA_CCL_H

#include <stddef.h>
#include <stdint.h>

#include "ops/ccl.h"
#include "voxpipe.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One volume of the batch: device pointers. `in` holds D*H*W elements of
 * the call's dtype in C order; `labels` receives D*H*W int32 (it may not
 * alias `in`). shape = (D, H, W); 2-D data has D = 1. */
typedef struct vp_ccl_gpu_sample {
  const void *in;
  int32_t *labels;
  int64_t shape[3];
} vp_ccl_gpu_sample;

/* Optional per-component statistics, on the device, sized by the caller:
 * `capacity` K entries per sample (the number of components is unknown
 * until the labelling ran). Component L (1 <= L <= min(count, K)) of
 * sample i has
 *   sizes[i*K + L-1]            its voxel count, and
 *   boxes[(i*K + L-1)*6 + 0..5] lo d, h, w then hi d, h, w (hi exclusive).
 * Entries L > count are zero. Components with L > K are not recorded:
 * the caller detects that from counts[i] > K (counts are always full).
 * sizes or boxes may be NULL (not wanted); both NULL or K = 0: no stats. */
typedef struct vp_ccl_gpu_stats {
  int64_t capacity;
  int64_t *sizes; /* n * K */
  int64_t *boxes; /* n * K * 6 */
} vp_ccl_gpu_stats;

/* Bytes of device workspace a vp_cuda_ccl_label call on these n shapes
 * needs (about 1.5 bytes per voxel plus the descriptor table and the
 * scan's scratch). The same for every dtype and parameter set, so a
 * caller may allocate it once per batch (cudaMallocAsync on its stream).
 * Refuses volumes of more than INT32_MAX voxels (VP_ERR_UNSUPPORTED). */
vp_status vp_cuda_ccl_workspace_bytes(const int64_t (*shapes)[3], int64_t n, size_t *bytes);

/* Labels n volumes of dtype `dtype` (any voxpipe dtype) on stream `stream`
 * (a cudaStream_t; NULL = the default stream), on the current device.
 *
 * p: connectivity (6/18/26; 4/8 need D = 1), multi_label, background,
 *    select/select_value as in src/ops/ccl.h.
 * select: NULL, or a DEVICE array of n int64: sample i's foreground is
 *    then (value == select[i]) (binary; integer dtypes compare exactly as
 *    integers, float dtypes as doubles), and select[i] < 0 means nothing
 *    selected: sample i is all background (labels 0, count 0). It
 *    overrides p->select and p->background for that call.
 * counts: NULL, or a DEVICE array of n int64 receiving the counts.
 * stats: NULL, or per-component statistics (above), on the device.
 * workspace: device memory of at least vp_cuda_ccl_workspace_bytes bytes,
 *    used in stream order (the caller may free it in stream order after
 *    the call).
 *
 * Argument errors are reported before anything is queued; launch errors
 * as VP_ERR_CUDA. Returns without synchronising. */
vp_status vp_cuda_ccl_label(const vp_ccl_gpu_sample *samples, int64_t n, vp_dtype dtype,
                            const vp_ccl_params *p, const int64_t *select, int64_t *counts,
                            const vp_ccl_gpu_stats *stats, void *workspace,
                            size_t workspace_bytes, void *stream);

#ifdef __cplusplus
}
#endif
#endif

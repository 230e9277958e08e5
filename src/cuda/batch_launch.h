/* One kernel launch for a whole batch of samples of different shapes.
 *
 * An operator's C body fills a host table of per-sample descriptors
 * (vp_bl_desc: pointers, shapes, parameters); its launcher uploads the
 * table with the per-sample offsets of the work units in one allocation
 * (one cudaMallocAsync and one cudaMemcpyAsync on the stream, freed in
 * stream order after the launch) and runs vp_bl_kernel: a grid-stride loop
 * over the total unit count in which each thread finds its sample by a
 * search of the offsets. Any mix of sample sizes keeps every block busy,
 * which a block-per-sample mapping would not when one sample dwarfs the
 * others.
 *
 * The top half is plain C (the op files include it); the kernel template
 * is CUDA C++ only. */
#ifndef VP_CUDA_BATCH_LAUNCH_H
#define VP_CUDA_BATCH_LAUNCH_H

#include <stddef.h>
#include <stdint.h>

#include "core/convert.h"
#include "voxpipe.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Flags of vp_bl_desc. */
#define VP_BL_FLIP_D 1u
#define VP_BL_FLIP_H 2u
#define VP_BL_FLIP_W 4u

/* One sample. Shapes are normalised to (outer, D, H, W): the leading
 * non-spatial axes merged into `outer`, missing spatial axes 1. Plain data,
 * the same layout in C and CUDA C++. */
typedef struct vp_bl_desc {
  const void *in;
  void *out;
  int64_t in_shape[4];
  int64_t out_shape[4];
  int64_t start[4]; /* slice: the input voxel of output voxel 0 (start[0] = 0) */
  int64_t numel;    /* output elements */
  uint32_t flags;
  uint32_t sample; /* the Philox counter's sample index */
  uint64_t fill;   /* slice: the fill value's bytes in the output dtype */
} vp_bl_desc;

/* (outer, D, H, W) of a tensor with `sn` trailing spatial axes. */
static inline void vp_bl_shape4(int ndim, const int64_t *shape, int sn, int64_t out[4]) {
  if (sn > ndim) sn = ndim;
  out[0] = out[1] = out[2] = out[3] = 1;
  for (int a = 0; a < ndim - sn; a++) out[0] *= shape[a];
  for (int k = 0; k < sn; k++) out[3 - k] = shape[ndim - 1 - k];
}

#ifdef __cplusplus
}
#endif

#if defined(__CUDACC__)
#include <cuda_runtime_api.h>

/* A table on the device: offsets[n + 1] of the samples' first units, then
 * the n descriptors. */
struct vp_bl_table {
  void *dev;
  const int64_t *offsets;
  const void *descs;
  int64_t n, total;
};

/* Uploads n descriptors of desc_size bytes and the prefix sums of units[]
 * (work units per sample) on stream s. */
vp_status vp_bl_upload(const void *descs, size_t desc_size, int64_t n, const int64_t *units,
                       cudaStream_t s, vp_bl_table *out);
/* Frees the table in stream order (after the kernels queued before it). */
void vp_bl_free(vp_bl_table *t, cudaStream_t s);
/* Blocks for `total` units at vp_bl_threads per block, capped: the
 * grid-stride loop covers the rest. */
unsigned vp_bl_blocks(int64_t total);
constexpr int vp_bl_threads = 256;

/* a / b for non-negative a and positive b: 32-bit division when both fit,
 * which is several times cheaper on the GPU than the 64-bit routine. */
__device__ __forceinline__ int64_t vp_bl_div(int64_t a, int64_t b) {
  if (((uint64_t)a | (uint64_t)b) >> 32 == 0) return (int64_t)((uint32_t)a / (uint32_t)b);
  return a / b;
}

/* The last sample s' >= s with offsets[s'] <= u (empty samples share the
 * next one's offset and are skipped). Threads move forward through the
 * units, so the previous answer is a lower bound. */
__device__ __forceinline__ int64_t vp_bl_find(const int64_t *off, int64_t s, int64_t n, int64_t u) {
  if (off[s + 1] > u) return s;
  int64_t lo = s + 1, hi = n - 1;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo + 1) / 2;
    if (off[mid] <= u) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/* body(desc, unit) for every unit of every sample. */
template <class Desc, class Body>
__global__ void __launch_bounds__(vp_bl_threads)
    vp_bl_kernel(const int64_t *off, const Desc *descs, int64_t n, int64_t total, Body body) {
  const int64_t stride = (int64_t)blockDim.x * gridDim.x;
  int64_t s = 0;
  for (int64_t u = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; u < total; u += stride) {
    s = vp_bl_find(off, s, n, u);
    body(descs[s], u - off[s]);
  }
}

/* Uploads, launches body over units[i] units of sample i, queues the free
 * and reports launch errors. Desc: vp_bl_desc or an op's own descriptor. */
template <class Desc, class Body>
vp_status vp_bl_run(const Desc *descs, int64_t n, const int64_t *units, cudaStream_t s,
                    Body body) {
  vp_bl_table t;
  vp_status st = vp_bl_upload(descs, sizeof *descs, n, units, s, &t);
  if (st != VP_OK) return st;
  if (t.total > 0)
    vp_bl_kernel<Desc, Body><<<vp_bl_blocks(t.total), vp_bl_threads, 0, s>>>(
        t.offsets, (const Desc *)t.descs, t.n, t.total, body);
  cudaError_t e = cudaGetLastError();
  vp_bl_free(&t, s);
  if (e != cudaSuccess) return vp_cuda_status(e, "batched kernel launch");
  return VP_OK;
}
#endif

#endif

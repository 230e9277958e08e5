/* Device-side pieces shared by the two GPU labellers (CUDA C++ only):
 * src/cuda/ccl.cu (one union-find node per voxel; every connectivity,
 * multi-label) and src/cuda/ccl_blocks.cu (one node per 2x2x2 block;
 * binary labelling at full connectivity). ccl.cu builds the descriptor
 * table, counts and statistics tail for both. */
#ifndef VP_CUDA_CCL_DEVICE_H
#define VP_CUDA_CCL_DEVICE_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#include "core/convert.h"
#include "ops/ccl.h"
#include "voxpipe.h"

namespace vp_ccl {

struct CclDesc {
  const void *in;
  int32_t *lab;
  uint32_t D, H, W;
  uint32_t n;       /* voxels, < 2^31 */
  int64_t word_off; /* first word of the sample in bits/cnt/prefix */
  int64_t words;    /* ceil(n / 32) */
  vp_ccl_pred pred; /* unless a device select array overrides it */
};

/* Element access per dtype: the foreground test and value equality, the
 * CPU's (src/ops/ccl.c) comparisons. */
struct Half {
  uint16_t b;
};
template <class T>
struct Elem {
  static __device__ __forceinline__ bool fg(const vp_ccl_pred &p, T v) {
    return vp_ccl_fg_int(&p, (int64_t)v);
  }
  static __device__ __forceinline__ bool eq(T a, T b) { return a == b; }
};
template <>
struct Elem<float> {
  static __device__ __forceinline__ bool fg(const vp_ccl_pred &p, float v) {
    return vp_ccl_fg_float(&p, (double)v);
  }
  static __device__ __forceinline__ bool eq(float a, float b) { return a == b; }
};
template <>
struct Elem<double> {
  static __device__ __forceinline__ bool fg(const vp_ccl_pred &p, double v) {
    return vp_ccl_fg_float(&p, v);
  }
  static __device__ __forceinline__ bool eq(double a, double b) { return a == b; }
};
template <>
struct Elem<Half> {
  static __device__ __forceinline__ bool fg(const vp_ccl_pred &p, Half v) {
    return vp_ccl_fg_float(&p, (double)vp_cvt_half_to_float(v.b));
  }
  static __device__ __forceinline__ bool eq(Half a, Half b) {
    return vp_cvt_half_to_float(a.b) == vp_cvt_half_to_float(b.b);
  }
};

/* The sample's predicate: its own, or "== select[s]" (nothing when < 0). */
template <class T>
__device__ __forceinline__ vp_ccl_pred pred_of(const CclDesc &d, const int64_t *select, int64_t s) {
  if (!select) return d.pred;
  const int64_t v = select[s];
  vp_ccl_pred p = vp_ccl_pred_of(1, (double)v);
  p.has_ref = v >= 0; /* integers compare to the exact int64 */
  p.iref = v;
  if (v < 0) p.dref = __longlong_as_double(0x7ff8000000000000LL); /* NaN: equals nothing */
  return p;
}

__device__ __forceinline__ int32_t find_root(const int32_t *lab, int32_t x) {
  int32_t p = __ldcg(lab + x);
  while (p != x) {
    x = p;
    p = __ldcg(lab + x);
  }
  return x;
}

/* Links the larger root under the smaller until a and b share a root
 * (an atomicMin that finds its target already re-parented retries from
 * the parent it found). */
__device__ __forceinline__ void unite(int32_t *lab, int32_t a, int32_t b) {
  for (;;) {
    a = find_root(lab, a);
    b = find_root(lab, b);
    if (a == b) return;
    if (a > b) {
      const int32_t t = a;
      a = b;
      b = t;
    }
    const int32_t old = atomicMin(lab + b, a);
    if (old == b) return;
    b = old;
  }
}

/* Only improving atomics are issued: a component's hot box entries stop
 * taking atomics once they hold their extreme. */
__device__ __forceinline__ void min_to(int64_t *p, int64_t v) {
  if (v < *(volatile int64_t *)p) atomicMin((long long *)p, (long long)v);
}
__device__ __forceinline__ void max_to(int64_t *p, int64_t v) {
  if (v > *(volatile int64_t *)p) atomicMax((long long *)p, (long long)v);
}

struct Grid {
  const int64_t *off; /* n + 1 unit offsets (multiples of 32) */
  const CclDesc *descs;
  int64_t n, total;
};

/* ---- the block path (ccl_blocks.cu) ---- */

/* Blocks of a sample: ceil of each extent / 2. */
__host__ __device__ __forceinline__ int64_t blocks_of(int64_t D, int64_t H, int64_t W) {
  return ((D + 1) / 2) * ((H + 1) / 2) * ((W + 1) / 2);
}

/* Workspace of the block path. Per block unit (g.off counts blocks, each
 * sample's padded to 32): the union-find word (ccl_blocks.cu) and the
 * mask. Per 32-voxel word: bits, cnt, prefix as in ccl.cu. */
struct BlockWs {
  unsigned long long *parent;
  uint8_t *mask;
  uint32_t *bits, *cnt, *prefix;
  int64_t words;
  void *scratch;
  size_t scratch_bytes;
  int64_t *work;             /* units of the foreground blocks, in no particular order */
  unsigned long long *nwork; /* how many (0 when init starts: uploaded with the table) */
};

/* Queues init, merge, compress, scan and final for the batch of g
 * (binary labels; every sample at full connectivity). The caller queues
 * the stats init before and k_tail after. */
vp_status blocks_launch(vp_dtype dtype, const Grid &g, const int64_t *select, const BlockWs &w,
                        int64_t cap, int64_t *sizes, int64_t *boxes, cudaStream_t st);

}  // namespace vp_ccl

#endif

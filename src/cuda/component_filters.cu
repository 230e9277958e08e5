/* remove_small_objects and keep_largest_components on the GPU (method:
 * src/cuda/component_filters.h).
 *
 * Key layout of keep_largest, per chunk of m samples whose largest has
 * maxn voxels, B = bits(maxn - 1), sb = bits(m - 1), low = sb + 2B:
 *   bits [0, B)        label - 1
 *   bits [B, 2B)       maxn - size (so ascending order is size descending)
 *   bits [2B, low)     the sample's index in the chunk
 *   bits [low, low+vb) the value's group key (one-sort layout only)
 *   bit top            set on entries past the sample's count (no
 *                      component there), so they sort after every real one
 * Entries are indexed base(sample) + label - 1 with one entry per voxel: a
 * sample's count is at most its voxel count, and the count is known on the
 * device only. A batch is cut into chunks where the bits would not fit
 * (top > 63: several samples of near 2^31 voxels). */
#include <cuda_runtime_api.h>
#include <stdlib.h>
#include <string.h>

#include <cub/device/device_radix_sort.cuh>

extern "C" {
#include "core/cuda_rt.h"
#include "core/status.h"
}
#include "cuda/batch_launch.h"
#include "cuda/ccl.h"
#include "cuda/component_filters.h"

namespace {

struct CfDesc {
  const void *in;
  void *out;
  const int32_t *lab;
  int32_t *size;        /* entry L - 1: size of label L; then its keep flag */
  uint64_t *vkey;       /* entry L - 1: group key of label L's value, or NULL */
  const int64_t *count; /* the labeller's count of this sample */
  int64_t thr;          /* apply: the component stays iff size[L - 1] >= thr */
  int64_t k;
  int64_t base; /* first entry of the sample in the chunk's key arrays */
  uint64_t index;
  uint64_t bg;
};

/* The group key of one element: integers of up to 32 bits offset to
 * unsigned (exact, and short enough to share a key with the rest);
 * int64 and floats by vp_cf_group_key of the double the CPU body loads. */
struct Half {
  uint16_t b;
};
template <class T>
struct Val;
template <>
struct Val<uint8_t> {
  static __device__ uint64_t key(uint8_t v) { return v; }
};
template <>
struct Val<int8_t> {
  static __device__ uint64_t key(int8_t v) { return (uint64_t)(v + 128); }
};
template <>
struct Val<uint16_t> {
  static __device__ uint64_t key(uint16_t v) { return v; }
};
template <>
struct Val<int16_t> {
  static __device__ uint64_t key(int16_t v) { return (uint64_t)(v + 32768); }
};
template <>
struct Val<uint32_t> {
  static __device__ uint64_t key(uint32_t v) { return v; }
};
template <>
struct Val<int32_t> {
  static __device__ uint64_t key(int32_t v) { return (uint64_t)((int64_t)v + 2147483648LL); }
};
template <>
struct Val<int64_t> {
  static __device__ uint64_t key(int64_t v) { return vp_cf_group_key((double)v); }
};
template <>
struct Val<Half> {
  static __device__ uint64_t key(Half v) { return vp_cf_group_key(vp_cvt_half_to_float(v.b)); }
};
template <>
struct Val<float> {
  static __device__ uint64_t key(float v) { return vp_cf_group_key(v); }
};
template <>
struct Val<double> {
  static __device__ uint64_t key(double v) { return vp_cf_group_key(v); }
};

int value_bits(vp_dtype t) {
  switch (t) {
    case VP_U8:
    case VP_I8: return 8;
    case VP_U16:
    case VP_I16: return 16;
    case VP_U32:
    case VP_I32: return 32;
    default: return 64;
  }
}

/* Bits to write 0..x (none for x <= 0). */
int bits_for(int64_t x) {
  int b = 0;
  while (b < 63 && x > 0 && (x >> b) != 0) b++;
  return b;
}

/* Sizes by a histogram over the labels. Whole warps step through the
 * units together (stride and start multiples of 32) so that the full-mask
 * match is well defined; lanes of one label add once, by their count. The
 * group key is written by every warp that meets the label: the same value
 * each time, since a multi-label component holds one value. */
template <class T>
__global__ void __launch_bounds__(vp_bl_threads)
    k_hist(const int64_t *off, const CfDesc *descs, int64_t n, int64_t total) {
  const int64_t stride = (int64_t)blockDim.x * gridDim.x;
  const unsigned lane = threadIdx.x & 31u;
  int64_t s = 0;
  for (int64_t u0 = (int64_t)blockIdx.x * blockDim.x + (threadIdx.x - lane); u0 < total;
       u0 += stride) {
    const int64_t u = u0 + lane;
    const CfDesc *d = NULL;
    int64_t v = 0;
    int32_t L = 0;
    if (u < total) {
      s = vp_bl_find(off, s, n, u);
      d = &descs[s];
      v = u - off[s];
      L = d->lab[v];
    }
    int32_t *slot = L ? d->size + (L - 1) : NULL;
    const unsigned same = __match_any_sync(0xffffffffu, (unsigned long long)slot);
    if (slot && lane == (unsigned)(__ffs(same) - 1)) {
      atomicAdd(slot, __popc(same));
      if (d->vkey) d->vkey[L - 1] = Val<T>::key(((const T *)d->in)[v]);
    }
  }
}

/* One key per entry (see the top of the file). */
struct KeyBody {
  uint64_t *keys;
  int B, low, top;
  int with_value; /* one-sort layout: the group key goes into bits [low, top) */
  int64_t maxn;
  __device__ void operator()(const CfDesc &d, int64_t e) const {
    if (e >= *d.count) {
      keys[d.base + e] = 1ull << top;
      if (d.vkey) d.vkey[e] = ~0ull; /* the two-sort payload: defined, sorts last */
      return;
    }
    uint64_t key = d.index << (2 * B) | (uint64_t)(maxn - d.size[e]) << B | (uint64_t)e;
    if (with_value) key |= d.vkey[e] << low;
    keys[d.base + e] = key;
  }
};

/* Entries in sorted order: a component is among the k first of its group
 * (value and sample) iff the entry k places back is of another group. The
 * flag replaces the size, read by the apply pass with threshold 1. */
__global__ void __launch_bounds__(vp_bl_threads)
    k_mark(const uint64_t *keys, const uint64_t *vk, const CfDesc *descs, int64_t total, int B,
           int sb, int top) {
  const int64_t stride = (int64_t)blockDim.x * gridDim.x;
  for (int64_t p = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; p < total; p += stride) {
    const uint64_t key = keys[p];
    if (key >> top) continue; /* no component */
    const uint64_t group = key >> (2 * B);
    const CfDesc &d = descs[group & ((1ull << sb) - 1)];
    const int64_t e = (int64_t)(key & ((1ull << B) - 1));
    const int64_t q = p - d.k;
    const bool kept = d.k > 0 && (q < 0 || (keys[q] >> (2 * B)) != group || (vk && vk[q] != vk[p]));
    d.size[e] = kept;
  }
}

template <class T>
struct ApplyBody {
  __device__ void operator()(const CfDesc &d, int64_t v) const {
    const int32_t L = d.lab[v];
    T x = ((const T *)d.in)[v];
    if (L && d.size[L - 1] < d.thr) x = (T)d.bg; /* the low bytes: little-endian */
    ((T *)d.out)[v] = x;
  }
};

vp_status launched(const char *what) {
  cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? VP_OK : vp_cuda_status(e, what);
}

vp_status launch_hist(vp_dtype t, const vp_bl_table &tb, cudaStream_t st) {
  const unsigned blocks = vp_bl_blocks(tb.total);
  const CfDesc *d = (const CfDesc *)tb.descs;
#define CF_HIST(T) k_hist<T><<<blocks, vp_bl_threads, 0, st>>>(tb.offsets, d, tb.n, tb.total)
  switch (t) {
    case VP_U8: CF_HIST(uint8_t); break;
    case VP_I8: CF_HIST(int8_t); break;
    case VP_U16: CF_HIST(uint16_t); break;
    case VP_I16: CF_HIST(int16_t); break;
    case VP_U32: CF_HIST(uint32_t); break;
    case VP_I32: CF_HIST(int32_t); break;
    case VP_I64: CF_HIST(int64_t); break;
    case VP_F16: CF_HIST(Half); break;
    case VP_F32: CF_HIST(float); break;
    case VP_F64: CF_HIST(double); break;
    default: return vp_fail(VP_ERR_INVALID_ARG, "component filter: invalid dtype %d", (int)t);
  }
#undef CF_HIST
  return launched("component filter: histogram kernel");
}

template <class Body>
vp_status launch_units(const vp_bl_table &tb, Body body, cudaStream_t st, const char *what) {
  vp_bl_kernel<CfDesc, Body><<<vp_bl_blocks(tb.total), vp_bl_threads, 0, st>>>(
      tb.offsets, (const CfDesc *)tb.descs, tb.n, tb.total, body);
  return launched(what);
}

vp_status launch_apply(size_t es, const vp_bl_table &tb, cudaStream_t st) {
  const char *what = "component filter: apply kernel";
  switch (es) {
    case 1: return launch_units(tb, ApplyBody<uint8_t>(), st, what);
    case 2: return launch_units(tb, ApplyBody<uint16_t>(), st, what);
    case 4: return launch_units(tb, ApplyBody<uint32_t>(), st, what);
    case 8: return launch_units(tb, ApplyBody<unsigned long long>(), st, what);
    default: return vp_fail(VP_ERR_INTERNAL, "component filter: element size %zu", es);
  }
}

size_t align256(size_t x) { return (x + 255) & ~(size_t)255; }

/* The sort plan of a chunk (keep_largest). */
struct Plan {
  int B, sb, low, vb, top;
  int one_sort; /* the value (if any) fits in the key */
  int64_t maxn;
};

/* Everything that one chunk allocates and the host tables. */
struct Chunk {
  vp_cf_mode mode;
  int indep;
  Plan pl;
  int64_t m, total;
  CfDesc *descs;
  int64_t *units;
  vp_ccl_gpu_sample *cs;
  int64_t (*shapes)[3];
  char *buf;
  vp_bl_table tb;
};

/* The two stable sorts, or the one, on the chunk's buffers; *keys and *vk
 * receive the sorted arrays (vk NULL in the one-sort layout). tmp == NULL
 * queries *tmp_bytes. */
cudaError_t sort_entries(const Chunk &c, uint64_t *k0, uint64_t *k1, uint64_t *v0, uint64_t *v1,
                         void *tmp, size_t *tmp_bytes, cudaStream_t st, uint64_t **keys,
                         uint64_t **vk) {
  cub::DoubleBuffer<uint64_t> kb(k0, k1);
  if (c.pl.one_sort) {
    cudaError_t e =
        cub::DeviceRadixSort::SortKeys(tmp, *tmp_bytes, kb, c.total, 0, c.pl.top + 1, st);
    *keys = kb.Current();
    *vk = NULL;
    return e;
  }
  cub::DoubleBuffer<uint64_t> vb(v0, v1);
  size_t b1 = 0, b2 = 0;
  if (!tmp) {
    cudaError_t e = cub::DeviceRadixSort::SortPairs(NULL, b1, kb, vb, c.total, 0, c.pl.top + 1, st);
    if (e == cudaSuccess)
      e = cub::DeviceRadixSort::SortPairs(NULL, b2, vb, kb, c.total, 0, c.pl.vb, st);
    *tmp_bytes = b1 > b2 ? b1 : b2;
    return e;
  }
  /* by (sample, size, label), then stably by value: keys and values swap */
  cudaError_t e =
      cub::DeviceRadixSort::SortPairs(tmp, *tmp_bytes, kb, vb, c.total, 0, c.pl.top + 1, st);
  cub::DoubleBuffer<uint64_t> kb2(vb.Current(), vb.Alternate()), vb2(kb.Current(), kb.Alternate());
  if (e == cudaSuccess)
    e = cub::DeviceRadixSort::SortPairs(tmp, *tmp_bytes, kb2, vb2, c.total, 0, c.pl.vb, st);
  *keys = vb2.Current();
  *vk = kb2.Current();
  return e;
}

vp_status run_chunk(Chunk &c, const vp_cf_sample *smp, vp_dtype dtype, const vp_ccl_params *p,
                    cudaStream_t st) {
  const int64_t m = c.m;
  int64_t maxn = 0;
  c.total = 0;
  for (int64_t i = 0; i < m; i++) {
    const int64_t v = smp[i].shape[0] * smp[i].shape[1] * smp[i].shape[2];
    c.units[i] = v;
    c.descs[i].base = c.total;
    c.total += v;
    maxn = v > maxn ? v : maxn;
    c.cs[i].in = smp[i].in;
    memcpy(c.cs[i].shape, smp[i].shape, sizeof c.cs[i].shape);
    memcpy(c.shapes[i], smp[i].shape, sizeof c.shapes[i]);
  }
  if (c.total == 0) return VP_OK;
  size_t ws = 0;
  VP_TRY(vp_cuda_ccl_workspace_bytes((const int64_t(*)[3])c.shapes, m, &ws));
  const int largest = c.mode == VP_CF_KEEP_LARGEST;
  Plan &pl = c.pl;
  pl.maxn = maxn;
  pl.B = bits_for(maxn - 1);
  pl.sb = bits_for(m - 1);
  pl.low = pl.sb + 2 * pl.B;
  pl.vb = c.indep ? value_bits(dtype) : 0;
  pl.one_sort = !c.indep || pl.low + pl.vb <= 63;
  pl.top = pl.one_sort ? pl.low + pl.vb : pl.low;
  const size_t N = (size_t)c.total;
  size_t tmp_bytes = 0, sort_bytes = 0;
  if (largest) {
    uint64_t *kk, *vv;
    cudaError_t e = sort_entries(c, NULL, NULL, NULL, NULL, NULL, &tmp_bytes, st, &kk, &vv);
    if (e != cudaSuccess) return vp_cuda_status(e, "component filter: sort size query");
    /* keys twice; group keys once (one sort) or twice (payload of two) */
    sort_bytes = align256(2 * N * 8) + (c.indep ? align256((pl.one_sort ? 1 : 2) * N * 8) : 0) +
                 align256(tmp_bytes);
  }
  const size_t lab_b = align256(N * 4), cnt_b = align256((size_t)m * 8);
  const size_t region = ws > sort_bytes ? ws : sort_bytes;
  VP_TRY(vp_cuda_malloc_async((void **)&c.buf, 2 * lab_b + cnt_b + region, st,
                              "component filter: scratch"));
  int32_t *labels = (int32_t *)c.buf, *sizes = (int32_t *)(c.buf + lab_b);
  int64_t *counts = (int64_t *)(c.buf + 2 * lab_b);
  /* the labeller's workspace, then (in stream order) the sort's buffers */
  char *r = c.buf + 2 * lab_b + cnt_b;
  uint64_t *k0 = (uint64_t *)r, *k1 = k0 + N;
  uint64_t *v0 = (uint64_t *)(r + align256(2 * N * 8)), *v1 = pl.one_sort ? NULL : v0 + N;
  void *tmp = r + align256(2 * N * 8) + (c.indep ? align256((pl.one_sort ? 1 : 2) * N * 8) : 0);
  for (int64_t i = 0; i < m; i++) {
    CfDesc &d = c.descs[i];
    d.in = smp[i].in;
    d.out = smp[i].out;
    d.lab = labels + d.base;
    d.size = sizes + d.base;
    d.vkey = largest && c.indep ? v0 + d.base : NULL;
    d.count = counts + i;
    d.thr = largest ? 1 : smp[i].threshold;
    d.k = smp[i].threshold;
    d.index = (uint64_t)i;
    d.bg = smp[i].background;
    c.cs[i].labels = labels + d.base;
  }
  VP_TRY(vp_bl_upload(c.descs, sizeof *c.descs, m, c.units, st, &c.tb));
  VP_TRY(vp_cuda_ccl_label(c.cs, m, dtype, p, NULL, largest ? counts : NULL, NULL, r, ws, st));
  cudaError_t e = cudaMemsetAsync(sizes, 0, N * 4, st);
  if (e != cudaSuccess) return vp_cuda_status(e, "component filter: cudaMemsetAsync");
  VP_TRY(launch_hist(c.indep && largest ? dtype : VP_U8, c.tb, st));
  if (largest) {
    KeyBody kb = {k0, pl.B, pl.low, pl.top, pl.one_sort && c.indep, pl.maxn};
    VP_TRY(launch_units(c.tb, kb, st, "component filter: key kernel"));
    uint64_t *keys, *vk;
    e = sort_entries(c, k0, k1, v0, v1, tmp, &tmp_bytes, st, &keys, &vk);
    if (e != cudaSuccess) return vp_cuda_status(e, "component filter: radix sort");
    k_mark<<<vp_bl_blocks(c.total), vp_bl_threads, 0, st>>>(keys, vk, (const CfDesc *)c.tb.descs,
                                                            c.total, pl.B, pl.sb, pl.top);
    VP_TRY(launched("component filter: rank kernel"));
  }
  return launch_apply(vp_dtype_size(dtype), c.tb, st);
}

}  // namespace

extern "C" vp_status vp_cuda_component_filter(const vp_cf_sample *samples, int64_t n,
                                              vp_dtype dtype, const vp_ccl_params *p,
                                              vp_cf_mode mode, void *stream) {
  const char *who = "component filter";
  if (n < 0 || (n > 0 && !samples) || !p)
    return vp_fail(VP_ERR_INVALID_ARG, "%s: %lld samples at %p, parameters %p", who, (long long)n,
                   (const void *)samples, (const void *)p);
  if (!vp_dtype_size(dtype)) return vp_fail(VP_ERR_INVALID_ARG, "%s: invalid dtype", who);
  cudaStream_t st = (cudaStream_t)stream;
  vp_status s = VP_OK;
  for (int64_t i = 0; i < n; i++) {
    int conn3;
    VP_TRY(vp_ccl_check(who, samples[i].shape, p, &conn3));
  }
  for (int64_t i0 = 0; i0 < n && s == VP_OK;) {
    /* the longest run from i0 whose keys fit (see the top of the file);
     * one sample always does: B <= 31 */
    int64_t i1 = i0, maxn = 0;
    for (; i1 < n; i1++) {
      const int64_t *sh = samples[i1].shape;
      const int64_t v = sh[0] * sh[1] * sh[2], mx = v > maxn ? v : maxn;
      if (i1 > i0 && bits_for(i1 - i0) + 2 * bits_for(mx - 1) > 63) break;
      maxn = mx;
    }
    Chunk c;
    memset(&c, 0, sizeof c);
    c.mode = mode;
    c.indep = p->multi_label != 0;
    c.m = i1 - i0;
    c.descs = (CfDesc *)calloc((size_t)c.m, sizeof *c.descs);
    c.units = (int64_t *)calloc((size_t)c.m, sizeof *c.units);
    c.cs = (vp_ccl_gpu_sample *)calloc((size_t)c.m, sizeof *c.cs);
    c.shapes = (int64_t(*)[3])calloc((size_t)c.m, sizeof *c.shapes);
    s = c.descs && c.units && c.cs && c.shapes
            ? run_chunk(c, samples + i0, dtype, p, st)
            : vp_fail(VP_ERR_NOMEM, "%s: host tables of %lld samples", who, (long long)c.m);
    vp_bl_free(&c.tb, st);
    if (c.buf) (void)cudaFreeAsync(c.buf, st);
    free(c.descs), free(c.units), free(c.cs), free(c.shapes);
    i0 = i1;
  }
  return s;
}

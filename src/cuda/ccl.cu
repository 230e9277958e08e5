/* Connected-component labelling on the GPU, batched (interface and method:
 * src/cuda/ccl.h).
 *
 * Work units: every sample is padded to a whole number of 32-voxel words,
 * so that a warp (32 consecutive units of a grid-stride loop whose stride
 * is a multiple of 32) always covers one word of one sample: the root
 * bits come straight from a ballot. Kernels, in stream order:
 *   init    fg voxel v: parent v
 *   merge   fg voxel v: union with each backward neighbour it joins
 *   flatten fg voxel v: parent = root; bit v = (root == v); word counts
 *   scan    exclusive sum of the word counts (CUB)
 *   final   label = rank of the root among the sample's roots + 1, stats
 *   tail    counts per sample, empty stats entries zeroed
 * Parents are linear indices within the sample, always <= the voxel's own,
 * so roots are first voxels in C order and the rank order is the CPU's.
 *
 * Binary labelling at full connectivity (every sample) takes the 2x2x2
 * block path instead (ccl_blocks.cu: its units are blocks, 32 per warp),
 * with the same bits/cnt/prefix words, stats init and tail. */
#include <cuda_runtime_api.h>

#include <cub/device/device_scan.cuh>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "core/cuda_rt.h"
#include "core/status.h"
}
#include "cuda/batch_launch.h"
#include "cuda/ccl.h"
#include "cuda/ccl_blocks.h"
#include "cuda/ccl_device.h"

namespace {

using namespace vp_ccl;

template <class T>
__global__ void __launch_bounds__(vp_bl_threads) k_init(Grid g, const int64_t *select) {
  const int64_t stride = (int64_t)blockDim.x * gridDim.x;
  int64_t s = 0;
  for (int64_t u = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; u < g.total; u += stride) {
    s = vp_bl_find(g.off, s, g.n, u);
    const CclDesc &d = g.descs[s];
    const int64_t v = u - g.off[s];
    if (v >= d.n) continue;
    const vp_ccl_pred p = pred_of<T>(d, select, s);
    if (Elem<T>::fg(p, ((const T *)d.in)[v])) d.lab[v] = (int32_t)v;
  }
}

template <class T>
__global__ void __launch_bounds__(vp_bl_threads)
    k_merge(Grid g, const int64_t *select, int conn, int multi) {
  const int64_t stride = (int64_t)blockDim.x * gridDim.x;
  int64_t s = 0;
  for (int64_t u = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; u < g.total; u += stride) {
    s = vp_bl_find(g.off, s, g.n, u);
    const CclDesc &d = g.descs[s];
    const int64_t v64 = u - g.off[s];
    if (v64 >= d.n) continue;
    const uint32_t v = (uint32_t)v64;
    const T *in = (const T *)d.in;
    const T x = in[v];
    const vp_ccl_pred p = pred_of<T>(d, select, s);
    if (!Elem<T>::fg(p, x)) continue;
    const uint32_t W = d.W, H = d.H, HW = H * W;
    const uint32_t w = v % W, t = v / W, h = t % H, z = t / H;
    /* backward neighbours: (dz, dy, dx) before (0, 0, 0) in C order, with
     * at most conn/6+... nonzero offsets: 6 -> 1, 18 -> 2, 26 -> 3 */
    const int maxnz = conn == 6 ? 1 : (conn == 18 ? 2 : 3);
#pragma unroll
    for (int dz = -1; dz <= 0; dz++) {
      if (dz < 0 && z == 0) continue;
#pragma unroll
      for (int dy = -1; dy <= 1; dy++) {
        if (dz == 0 && dy > 0) continue;
        if ((dy < 0 && h == 0) || (dy > 0 && h + 1 >= H)) continue;
#pragma unroll
        for (int dx = -1; dx <= 1; dx++) {
          if (dz == 0 && dy == 0 && dx >= 0) continue;
          if ((dz != 0) + (dy != 0) + (dx != 0) > maxnz) continue;
          if ((dx < 0 && w == 0) || (dx > 0 && w + 1 >= W)) continue;
          const uint32_t nb = v + (uint32_t)((int32_t)dz * (int32_t)HW + dy * (int32_t)W + dx);
          const T y = in[nb];
          if (multi ? Elem<T>::eq(x, y) : Elem<T>::fg(p, y)) unite(d.lab, (int32_t)v, (int32_t)nb);
        }
      }
    }
  }
}

/* The loop is warp-uniform (total and the stride are multiples of 32 and
 * a warp's units are one aligned word), as the ballot needs. */
template <class T>
__global__ void __launch_bounds__(vp_bl_threads)
    k_flatten(Grid g, const int64_t *select, uint32_t *bits, uint32_t *cnt, int64_t words) {
  const int64_t stride = (int64_t)blockDim.x * gridDim.x;
  const unsigned lane = threadIdx.x & 31u;
  int64_t s = 0;
  if (blockIdx.x == 0 && threadIdx.x == 0) cnt[words] = 0;
  for (int64_t u = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; u < g.total; u += stride) {
    s = vp_bl_find(g.off, s, g.n, u);
    const CclDesc &d = g.descs[s];
    const int64_t v = u - g.off[s];
    bool root = false;
    if (v < d.n && Elem<T>::fg(pred_of<T>(d, select, s), ((const T *)d.in)[v])) {
      const int32_t r = find_root(d.lab, (int32_t)v);
      d.lab[v] = r;
      root = r == (int32_t)v;
    }
    const unsigned m = __ballot_sync(0xffffffffu, root);
    if (lane == 0) {
      const int64_t word = d.word_off + (v >> 5);
      bits[word] = m;
      cnt[word] = (uint32_t)__popc(m);
    }
  }
}

template <class T>
__global__ void __launch_bounds__(vp_bl_threads)
    k_final(Grid g, const int64_t *select, const uint32_t *bits, const uint32_t *prefix,
            int64_t cap, int64_t *sizes, int64_t *boxes) {
  const int64_t stride = (int64_t)blockDim.x * gridDim.x;
  const unsigned lane = threadIdx.x & 31u;
  int64_t s = 0;
  for (int64_t u = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; u < g.total; u += stride) {
    s = vp_bl_find(g.off, s, g.n, u);
    const CclDesc &d = g.descs[s];
    const int64_t v = u - g.off[s];
    int32_t label = 0;
    if (v < d.n) {
      if (Elem<T>::fg(pred_of<T>(d, select, s), ((const T *)d.in)[v])) {
        const int32_t r = d.lab[v];
        const int64_t w = d.word_off + (r >> 5);
        const uint32_t below = bits[w] & ((1u << (r & 31)) - 1u);
        label = (int32_t)(prefix[w] - prefix[d.word_off] + (uint32_t)__popc(below)) + 1;
      }
      d.lab[v] = label;
    }
    if (cap > 0) { /* warp-uniform: every lane of the word is here */
      const unsigned same = __match_any_sync(0xffffffffu, label);
      const int32_t prev = __shfl_up_sync(0xffffffffu, label, 1);
      const int32_t next = __shfl_down_sync(0xffffffffu, label, 1);
      if (label > 0 && label <= cap) {
        const int64_t e = s * cap + (label - 1);
        if (sizes && lane == (unsigned)(__ffs(same) - 1))
          atomicAdd((unsigned long long *)(sizes + e), (unsigned long long)__popc(same));
        if (boxes) {
          const uint32_t vv = (uint32_t)v, x = vv % d.W, t = vv / d.W, h = t % d.H, z = t / d.H;
          int64_t *b = boxes + e * 6;
          if (lane == 0 || x == 0 || prev != label) { /* a run starts here */
            min_to(b + 0, z);
            min_to(b + 1, h);
            min_to(b + 2, x);
            max_to(b + 3, (int64_t)z + 1);
            max_to(b + 4, (int64_t)h + 1);
          }
          if (lane == 31 || x + 1 == d.W || next != label) max_to(b + 5, (int64_t)x + 1);
        }
      }
    }
  }
}

__global__ void k_stats_init(int64_t m, int64_t *sizes, int64_t *boxes) {
  const int64_t stride = (int64_t)blockDim.x * gridDim.x;
  for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < m; e += stride) {
    if (sizes) sizes[e] = 0;
    if (boxes)
      for (int a = 0; a < 3; a++) {
        boxes[e * 6 + a] = INT64_MAX;
        boxes[e * 6 + 3 + a] = 0;
      }
  }
}

/* counts (items < n), then stats entries no voxel reached zeroed */
__global__ void k_tail(Grid g, const uint32_t *prefix, int64_t *counts, int64_t cap,
                       int64_t *boxes) {
  const int64_t stride = (int64_t)blockDim.x * gridDim.x;
  const int64_t items = g.n + (boxes ? g.n * cap : 0);
  for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < items; e += stride) {
    if (e < g.n) {
      if (counts) {
        const CclDesc &d = g.descs[e];
        counts[e] = (int64_t)(uint32_t)(prefix[d.word_off + d.words] - prefix[d.word_off]);
      }
    } else {
      int64_t *b = boxes + (e - g.n) * 6;
      if (b[0] == INT64_MAX)
        for (int a = 0; a < 6; a++) b[a] = 0;
    }
  }
}

/* ---- host side ---- */

size_t align_up(size_t x) { return (x + 255) & ~(size_t)255; }

struct Layout {
  int64_t words, block_units; /* block units: each sample's blocks padded to 32 */
  size_t table, bits, cnt, prefix, scratch, scratch_bytes, parent, mask, work, nwork, total;
};

int64_t block_units_of(const int64_t sh[3]) {
  return (blocks_of(sh[0], sh[1], sh[2]) + 31) & ~31LL;
}

vp_status layout_of(const int64_t (*shapes)[3], int64_t n, Layout *L) {
  const char *who = "connected components (GPU)";
  if (n < 0)
    return vp_fail(VP_ERR_INVALID_ARG, "%s: batch size %lld is negative", who, (long long)n);
  if (n > 0 && !shapes) return vp_fail(VP_ERR_INVALID_ARG, "%s: shapes are NULL", who);
  vp_ccl_params any = {};
  any.connectivity = 26;
  int64_t words = 0, units = 0;
  for (int64_t i = 0; i < n; i++) {
    int conn;
    VP_TRY(vp_ccl_check(who, shapes[i], &any, &conn));
    words += (shapes[i][0] * shapes[i][1] * shapes[i][2] + 31) / 32;
    units += block_units_of(shapes[i]);
  }
  L->words = words;
  L->block_units = units;
  size_t at = 0;
  L->table = at;
  /* the table: unit offsets, descriptors, then the block path's worklist
   * count (zero in the upload, so it needs no memset) */
  L->nwork = at + ((size_t)(n + 1) * sizeof(int64_t) + (size_t)n * sizeof(CclDesc) + 7) / 8 * 8;
  at += align_up(L->nwork + sizeof(unsigned long long) - at);
  L->bits = at;
  at += align_up((size_t)(words + 1) * sizeof(uint32_t));
  L->cnt = at;
  at += align_up((size_t)(words + 1) * sizeof(uint32_t));
  L->prefix = at;
  at += align_up((size_t)(words + 1) * sizeof(uint32_t));
  size_t scratch = 0;
  cudaError_t e = cub::DeviceScan::ExclusiveSum(nullptr, scratch, (const uint32_t *)nullptr,
                                                (uint32_t *)nullptr, (int64_t)(words + 1));
  if (e != cudaSuccess) return vp_cuda_status(e, "connected components: scan scratch query");
  L->scratch = at;
  L->scratch_bytes = scratch;
  at += align_up(scratch);
  /* the block path's arrays (unused by the voxel path, which keeps its
   * union-find in the labels) */
  L->parent = at;
  at += align_up((size_t)units * sizeof(unsigned long long));
  L->mask = at;
  at += align_up((size_t)units);
  L->work = at;
  at += align_up((size_t)units * sizeof(int64_t));
  L->total = at;
  return VP_OK;
}

template <class T>
vp_status launch_all(const Grid &g, const int64_t *select, int conn, int multi, uint32_t *bits,
                     uint32_t *cnt, uint32_t *prefix, int64_t words, void *scratch,
                     size_t scratch_bytes, int64_t cap, int64_t *sizes, int64_t *boxes,
                     cudaStream_t st) {
  const unsigned blocks = vp_bl_blocks(g.total);
  if (g.total > 0) {
    k_init<T><<<blocks, vp_bl_threads, 0, st>>>(g, select);
    k_merge<T><<<blocks, vp_bl_threads, 0, st>>>(g, select, conn, multi);
  }
  k_flatten<T><<<g.total > 0 ? blocks : 1, vp_bl_threads, 0, st>>>(g, select, bits, cnt, words);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return vp_cuda_status(e, "connected components: labelling kernels");
  size_t sb = scratch_bytes;
  e = cub::DeviceScan::ExclusiveSum(scratch, sb, cnt, prefix, (int64_t)(words + 1), st);
  if (e != cudaSuccess) return vp_cuda_status(e, "connected components: scan");
  if (g.total > 0)
    k_final<T><<<blocks, vp_bl_threads, 0, st>>>(g, select, bits, prefix, cap, sizes, boxes);
  e = cudaGetLastError();
  if (e != cudaSuccess) return vp_cuda_status(e, "connected components: final kernel");
  return VP_OK;
}

}  // namespace

extern "C" vp_status vp_cuda_ccl_workspace_bytes(const int64_t (*shapes)[3], int64_t n,
                                                 size_t *bytes) {
  if (!bytes) return vp_fail(VP_ERR_INVALID_ARG, "connected components (GPU): bytes is NULL");
  Layout L;
  VP_TRY(layout_of(shapes, n, &L));
  *bytes = L.total;
  return VP_OK;
}

extern "C" vp_status vp_cuda_ccl_label(const vp_ccl_gpu_sample *samples, int64_t n,
                                       vp_dtype dtype, const vp_ccl_params *p,
                                       const int64_t *select, int64_t *counts,
                                       const vp_ccl_gpu_stats *stats, void *workspace,
                                       size_t workspace_bytes, void *stream) {
  const char *who = "connected components (GPU)";
  if (n < 0 || (n > 0 && !samples) || !p)
    return vp_fail(VP_ERR_INVALID_ARG, "%s: NULL samples or parameters, or n < 0", who);
  if (n == 0) return VP_OK;
  if (!vp_dtype_size(dtype)) return vp_fail(VP_ERR_INVALID_ARG, "%s: invalid dtype", who);
  int64_t(*shapes)[3] = (int64_t(*)[3])malloc((size_t)n * sizeof *shapes);
  if (!shapes) return vp_fail(VP_ERR_NOMEM, "%s: out of host memory", who);
  int conn = 26, full = 1;
  vp_status st = VP_OK;
  for (int64_t i = 0; i < n && st == VP_OK; i++) {
    memcpy(shapes[i], samples[i].shape, sizeof shapes[i]);
    st = vp_ccl_check(who, shapes[i], p, &conn);
    if (st == VP_OK) full = full && vp_ccl_conn_is_full(conn, shapes[i]);
    const int64_t numel = shapes[i][0] * shapes[i][1] * shapes[i][2];
    if (st == VP_OK && numel > 0 && (!samples[i].in || !samples[i].labels))
      st = vp_fail(VP_ERR_INVALID_ARG, "%s: sample %lld has a NULL input or labels pointer", who,
                   (long long)i);
  }
  Layout L;
  if (st == VP_OK) st = layout_of(shapes, n, &L);
  free(shapes);
  VP_TRY(st);
  if (!workspace || workspace_bytes < L.total)
    return vp_fail(VP_ERR_INVALID_ARG, "%s: workspace of %zu bytes, %zu needed", who,
                   workspace ? workspace_bytes : (size_t)0, L.total);
  const int64_t cap = stats && (stats->sizes || stats->boxes) ? stats->capacity : 0;
  if (cap < 0) return vp_fail(VP_ERR_INVALID_ARG, "%s: stats capacity %lld is negative", who,
                              (long long)cap);

  const int multi = p->multi_label && !p->select && !select;
  const int blocks = full && !multi; /* the 2x2x2 block path */

  /* the table: unit offsets (voxels or blocks), then descriptors */
  const size_t off_bytes = (size_t)(n + 1) * sizeof(int64_t);
  const size_t table_bytes = L.nwork - L.table + sizeof(unsigned long long);
  char *host = (char *)calloc(1, table_bytes); /* the worklist count starts at 0 */
  if (!host) return vp_fail(VP_ERR_NOMEM, "%s: out of host memory", who);
  int64_t *off = (int64_t *)host;
  CclDesc *descs = (CclDesc *)(host + off_bytes);
  const vp_ccl_pred pred =
      vp_ccl_pred_of(p->select != 0, p->select ? p->select_value : p->background);
  int64_t word = 0, unit = 0;
  for (int64_t i = 0; i < n; i++) {
    const int64_t *sh = samples[i].shape;
    CclDesc &d = descs[i];
    memset(&d, 0, sizeof d);
    d.in = samples[i].in;
    d.lab = samples[i].labels;
    d.D = (uint32_t)sh[0];
    d.H = (uint32_t)sh[1];
    d.W = (uint32_t)sh[2];
    d.n = (uint32_t)(sh[0] * sh[1] * sh[2]);
    d.word_off = word;
    d.words = ((int64_t)d.n + 31) / 32;
    d.pred = pred;
    off[i] = blocks ? unit : word * 32;
    unit += block_units_of(sh);
    word += d.words;
  }
  off[n] = blocks ? unit : word * 32;
  const int64_t total_units = off[n]; /* host is freed once uploaded */
  cudaStream_t s = (cudaStream_t)stream;
  char *ws = (char *)workspace;
  vp_status up = vp_cuda_upload(ws + L.table, host, table_bytes, s, "connected components: table");
  free(host); /* the upload copied it */
  if (up != VP_OK) return up;

  Grid g;
  g.off = (const int64_t *)(ws + L.table);
  g.descs = (const CclDesc *)(ws + L.table + off_bytes);
  g.n = n;
  g.total = total_units;
  int64_t *sizes = cap > 0 ? stats->sizes : NULL, *boxes = cap > 0 ? stats->boxes : NULL;
  if (cap > 0) {
    const int64_t m = n * cap;
    k_stats_init<<<vp_bl_blocks(m), vp_bl_threads, 0, s>>>(m, sizes, boxes);
  }
  uint32_t *bits = (uint32_t *)(ws + L.bits), *cnt = (uint32_t *)(ws + L.cnt),
           *prefix = (uint32_t *)(ws + L.prefix);
  void *scratch = ws + L.scratch;
#define CCL_LAUNCH(T)                                                                     \
  launch_all<T>(g, select, conn, multi, bits, cnt, prefix, L.words, scratch, L.scratch_bytes, \
                cap, sizes, boxes, s)
  if (blocks) {
    const BlockWs w = {(unsigned long long *)(ws + L.parent), (uint8_t *)(ws + L.mask), bits,
                       cnt, prefix, L.words, scratch, L.scratch_bytes, (int64_t *)(ws + L.work),
                       (unsigned long long *)(ws + L.nwork)};
    st = blocks_launch(dtype, g, select, w, cap, sizes, boxes, s);
  } else {
    switch (dtype) {
      case VP_U8: st = CCL_LAUNCH(uint8_t); break;
      case VP_I8: st = CCL_LAUNCH(int8_t); break;
      case VP_U16: st = CCL_LAUNCH(uint16_t); break;
      case VP_I16: st = CCL_LAUNCH(int16_t); break;
      case VP_U32: st = CCL_LAUNCH(uint32_t); break;
      case VP_I32: st = CCL_LAUNCH(int32_t); break;
      case VP_I64: st = CCL_LAUNCH(int64_t); break;
      case VP_F16: st = CCL_LAUNCH(Half); break;
      case VP_F32: st = CCL_LAUNCH(float); break;
      case VP_F64: st = CCL_LAUNCH(double); break;
      default: st = vp_fail(VP_ERR_INVALID_ARG, "%s: invalid dtype", who); break;
    }
  }
#undef CCL_LAUNCH
  VP_TRY(st);
  if (counts || boxes) {
    const int64_t items = n + (boxes ? n * cap : 0);
    k_tail<<<vp_bl_blocks(items), vp_bl_threads, 0, s>>>(g, prefix, counts, cap, boxes);
  }
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return vp_cuda_status(e, "connected components: tail kernel");
  return VP_OK;
}

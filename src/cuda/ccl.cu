/* Connected-component labelling on the GPU, batched (interface and method:
 * src/cuda/ccl.h).
 *
 * Block union-find (after Playne and Hawick, Allegretti et al.): a tile of
 * TD x TH x TW voxels is labelled entirely in shared memory, so that only
 * the unions across tile faces (a third of the voxels look outside their
 * tile, and only foreground ones do anything) touch global memory. Kernels,
 * in stream order:
 *   memset  both root bitmaps
 *   local   per tile: shared union-find; fg voxel v: lab[v] = its tile root;
 *           tile roots set in both bitmaps (`roots`, `tile_roots`)
 *   border  fg voxels on a tile's low faces: union with the neighbours in
 *           lexicographically smaller tiles (global atomicMin; a root that
 *           gets a parent leaves `roots`)
 *   scan    exclusive sum of popc(roots word) (CUB)
 *   roots   per tile root t: lab[t] = -(rank of its root + 1)
 *   final   fg v: lab[v] = the label its tile root holds; stats
 *   tail    counts per sample, empty stats entries zeroed
 * Parents are linear indices within the sample, always <= the voxel's own,
 * so roots are first voxels in C order and the rank order is the CPU's.
 *
 * Every value stored in lab[] of a foreground voxel before `roots` is a
 * tile root (the local kernel writes tile roots, atomicMin and path
 * compression only store values read from lab[]). `roots` turns each tile
 * root's entry into its negated label; `final` then needs lab[v] and at
 * most lab[lab[v]], which reads -L or, once its owner got there, L: both
 * give L, so overwriting labels in place is race free.
 *
 * The bitmaps and the final kernel work on 32-voxel words in linear
 * order; every sample is padded to a whole number of 128 voxels so that a
 * warp of the final kernel (32 threads of 4 voxels) is one sample. */
#include <cuda_runtime_api.h>
#include <stdlib.h>
#include <string.h>
#include <thrust/iterator/transform_iterator.h>

#include <cub/device/device_scan.cuh>

extern "C" {
#include "core/cuda_rt.h"
#include "core/status.h"
}
#include "cuda/batch_launch.h"
#include "cuda/ccl.h"

namespace {

/* The tile: one warp per row along W, one thread per (h, w) column of TD
 * voxels; local index (d * TH + h) * TW + w keeps C order. */
constexpr int TW = 32, TH = 8, TD = 4, TILE = TW * TH * TD, TPB = TW * TH;
/* voxels of a tile with a neighbour in a smaller tile: d = 0, or h = 0,
 * or w = 0 */
constexpr int NFACE = TH * TW + (TD - 1) * TW + (TD - 1) * (TH - 1);
constexpr int64_t kPad = 128; /* voxels per sample, rounded up */
constexpr int64_t kMaxTileBlocks = 65536;

struct CclDesc {
  const void *in;
  int32_t *lab;
  uint32_t D, H, W;
  uint32_t n;                /* voxels, < 2^31 */
  uint32_t tiles_h, tiles_w; /* tiles along H and W */
  int64_t word_off;          /* first word of the sample in the bitmaps/prefix */
  int64_t words;             /* 4 * ceil(n / 128) */
  vp_ccl_pred pred;          /* unless a device select array overrides it */
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

/* Four consecutive elements from p (4 * sizeof(T)-aligned) in one load
 * where the size allows. */
template <int S>
struct Load4 {
  template <class T>
  static __device__ __forceinline__ void run(const T *p, T *out) {
    for (int k = 0; k < 4; k++) out[k] = p[k];
  }
};
template <>
struct Load4<1> {
  template <class T>
  static __device__ __forceinline__ void run(const T *p, T *out) {
    const uint32_t w = *(const uint32_t *)p;
    memcpy(out, &w, 4);
  }
};
template <>
struct Load4<2> {
  template <class T>
  static __device__ __forceinline__ void run(const T *p, T *out) {
    const uint2 w = *(const uint2 *)p;
    memcpy(out, &w, 8);
  }
};
template <>
struct Load4<4> {
  template <class T>
  static __device__ __forceinline__ void run(const T *p, T *out) {
    const uint4 w = *(const uint4 *)p;
    memcpy(out, &w, 16);
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

/* ---- union-find: shared (tile-local) and global ---- */

/* Root with path halving (without it, chains built by concurrent links
 * grew long and a few threads of each warp walked them while the rest of
 * the block waited at the barrier: 7.8 active threads a warp under Nsight
 * Compute). A halving store only gives a non-root one of its ancestors; a
 * concurrent atomicMin it overwrites retries from the parent it saw (as in
 * find_g below). */
__device__ __forceinline__ int find_s(volatile int32_t *par, int x) {
  for (;;) {
    const int p = par[x];
    if (p == x) return x;
    const int gp = par[p];
    if (gp == p) return p;
    par[x] = gp;
    x = gp;
  }
}

/* Links the larger root under the smaller until a and b share a root (an
 * atomicMin that finds its target already re-parented retries from the
 * parent it found: the link it replaced must still be made). */
__device__ __forceinline__ void unite_s(int32_t *par, int a, int b) {
  for (;;) {
    a = find_s(par, a);
    b = find_s(par, b);
    if (a == b) return;
    if (a > b) {
      const int t = a;
      a = b;
      b = t;
    }
    const int old = atomicMin(par + b, a);
    if (old == b) return;
    b = old;
  }
}

/* Root with path halving. L1 is not coherent with the atomics: loads go
 * to L2. A halving store only replaces the parent of a non-root by one of
 * its ancestors (smaller, same tree); if it overwrites a concurrent
 * atomicMin's link, that unite retries from the parent it saw, so no
 * union is lost. */
__device__ __forceinline__ int32_t find_g(int32_t *lab, int32_t x) {
  for (;;) {
    const int32_t p = __ldcg(lab + x);
    if (p == x) return x;
    const int32_t gp = __ldcg(lab + p);
    if (gp == p) return p;
    __stcg(lab + x, gp);
    x = gp;
  }
}

/* The union of unite_s on global labels; a root that gets a parent leaves
 * the root bitmap of its sample (each root does so exactly once: only the
 * atomicMin that finds it still a root). */
__device__ __forceinline__ void unite_g(int32_t *lab, uint32_t *roots, int32_t a, int32_t b) {
  for (;;) {
    a = find_g(lab, a);
    b = find_g(lab, b);
    if (a == b) return;
    if (a > b) {
      const int32_t t = a;
      a = b;
      b = t;
    }
    const int32_t old = atomicMin(lab + b, a);
    if (old == b) {
      atomicAnd(roots + (b >> 5), ~(1u << (b & 31)));
      return;
    }
    b = old;
  }
}

struct Grid {
  const int64_t *offq; /* n + 1: first quad (4 voxels) of each sample */
  const int64_t *offt; /* n + 1: first tile of each sample */
  const CclDesc *descs;
  int64_t n, quads, tiles, words;
};

struct TilePos {
  uint32_t z0, y0, x0;
};
__device__ __forceinline__ TilePos tile_pos(const CclDesc &d, int64_t t) {
  const uint32_t tt = (uint32_t)t; /* tiles of a sample < its voxels < 2^31 */
  const uint32_t tw = tt % d.tiles_w, r = tt / d.tiles_w;
  TilePos p;
  p.x0 = tw * TW;
  p.y0 = (r % d.tiles_h) * TH;
  p.z0 = (r / d.tiles_h) * TD;
  return p;
}

template <class T>
__global__ void __launch_bounds__(TPB) k_local(Grid g, const int64_t *select, int conn, int multi,
                                               uint32_t *roots, uint32_t *tile_roots) {
  __shared__ int32_t par[TILE]; /* local parent; -1: background or outside */
  __shared__ T val[TILE];       /* multi-label only */
  const int lane = threadIdx.x & 31, h = threadIdx.x >> 5;
  const int maxnz = conn == 6 ? 1 : (conn == 18 ? 2 : 3);
  int64_t s = 0;
  for (int64_t t = blockIdx.x; t < g.tiles; t += gridDim.x) {
    s = vp_bl_find(g.offt, s, g.n, t);
    const CclDesc &d = g.descs[s];
    const uint32_t D = d.D, H = d.H, W = d.W;
    const TilePos tp = tile_pos(d, t - g.offt[s]);
    const vp_ccl_pred p = pred_of<T>(d, select, s);
    const T *in = (const T *)d.in;
    const uint32_t y = tp.y0 + h, x = tp.x0 + lane;
    T v[TD];
    bool f[TD];
    int any = 0;
#pragma unroll
    for (int k = 0; k < TD; k++) {
      const int li = (k * TH + h) * TW + lane;
      const uint32_t z = tp.z0 + k;
      f[k] = false;
      if (z < D && y < H && x < W) {
        v[k] = in[((uint64_t)z * H + y) * W + x];
        f[k] = Elem<T>::fg(p, v[k]);
        if (multi) val[li] = v[k];
      }
      par[li] = f[k] ? li : -1;
      any |= f[k];
    }
    if (!__syncthreads_or(any)) continue; /* nothing to write: block-uniform */
      /* backward neighbours inside the tile; those outside it are the
       * border kernel's */
#pragma unroll
    for (int k = 0; k < TD; k++) {
      if (!f[k]) continue;
      const int li = (k * TH + h) * TW + lane;
#pragma unroll
      for (int dz = -1; dz <= 0; dz++) {
        if (dz < 0 && k == 0) continue;
#pragma unroll
        for (int dy = -1; dy <= 1; dy++) {
          if ((dz == 0 && dy > 0) || h + dy < 0 || h + dy >= TH) continue;
#pragma unroll
          for (int dx = -1; dx <= 1; dx++) {
            if (dz == 0 && dy == 0 && dx >= 0) continue;
            if ((dz != 0) + (dy != 0) + (dx != 0) > maxnz) continue;
            if (lane + dx < 0 || lane + dx >= TW) continue;
            const int nb = li + (dz * TH + dy) * TW + dx;
            if (((volatile int32_t *)par)[nb] < 0) continue;
            if (!multi || Elem<T>::eq(v[k], val[nb])) unite_s(par, li, nb);
          }
        }
      }
    }
    __syncthreads();
    /* each fg voxel: its tile root's global index; tile roots into both
     * bitmaps (a row of the tile spans at most two words) */
#pragma unroll
    for (int k = 0; k < TD; k++) {
      const uint32_t z = tp.z0 + k;
      if (z >= D || y >= H) continue;       /* warp-uniform */
      const uint32_t row = (z * H + y) * W; /* < n: fits */
      const int li = (k * TH + h) * TW + lane;
      bool is_root = false;
      if (f[k]) {
        const int r = find_s(par, li);
        is_root = r == li;
        const uint32_t rz = tp.z0 + (r >> 8), ry = tp.y0 + ((r >> 5) & 7), rx = tp.x0 + (r & 31);
        d.lab[row + x] = (int32_t)((rz * H + ry) * W + rx);
      }
      const uint32_t b = __ballot_sync(0xffffffffu, is_root);
      if (b && lane < 2) {
        const uint32_t first = row + tp.x0, sh = first & 31;
        const uint32_t m = lane == 0 ? b << sh : (sh ? b >> (32 - sh) : 0u);
        if (m) {
          const int64_t w = d.word_off + (first >> 5) + lane;
          atomicOr(roots + w, m);
          atomicOr(tile_roots + w, m);
        }
      }
    }
    __syncthreads(); /* par and val are reused by the next tile */
  }
  static_assert(TW == 32 && TH == 8 && TILE == 1024, "local index decoding above");
}

/* -1, 0 or 1: the tile a tile-local coordinate c (of extent E) falls in. */
__device__ __forceinline__ int tile_shift(int c, int E) { return c < 0 ? -1 : (c >= E ? 1 : 0); }

/* Each pair of neighbours in different tiles is united once, by the voxel
 * in the lexicographically larger tile: that voxel has a tile coordinate
 * 0 along the first axis where the tiles differ, so the low faces
 * (NFACE voxels per tile) cover every pair. */
template <class T>
__global__ void __launch_bounds__(TPB)
    k_border(Grid g, const int64_t *select, int conn, int multi, uint32_t *roots) {
  const int maxnz = conn == 6 ? 1 : (conn == 18 ? 2 : 3);
  int64_t s = 0;
  for (int64_t t = blockIdx.x; t < g.tiles; t += gridDim.x) {
    s = vp_bl_find(g.offt, s, g.n, t);
    const CclDesc &d = g.descs[s];
    const uint32_t D = d.D, H = d.H, W = d.W;
    const TilePos tp = tile_pos(d, t - g.offt[s]);
    const T *in = (const T *)d.in;
    const vp_ccl_pred p = pred_of<T>(d, select, s);
    for (int i = threadIdx.x; i < NFACE; i += TPB) {
      int k, h, w;
      if (i < TH * TW) {
        k = 0, h = i >> 5, w = i & 31;
      } else if (i < TH * TW + (TD - 1) * TW) {
        const int j = i - TH * TW;
        k = 1 + (j >> 5), h = 0, w = j & 31;
      } else {
        const int j = i - TH * TW - (TD - 1) * TW;
        k = 1 + j / (TH - 1), h = 1 + j % (TH - 1), w = 0;
      }
      const uint32_t z = tp.z0 + k, y = tp.y0 + h, x = tp.x0 + w;
      if (z >= D || y >= H || x >= W) continue;
      const int32_t v = (int32_t)((z * H + y) * W + x);
      const T xv = in[v];
      if (!Elem<T>::fg(p, xv)) continue;
#pragma unroll
      for (int dz = -1; dz <= 1; dz++) {
#pragma unroll
        for (int dy = -1; dy <= 1; dy++) {
#pragma unroll
          for (int dx = -1; dx <= 1; dx++) {
            const int nz = (dz != 0) + (dy != 0) + (dx != 0);
            if (nz == 0 || nz > maxnz) continue;
            const int sd = tile_shift(k + dz, TD), sh = tile_shift(h + dy, TH),
                      sw = tile_shift(w + dx, TW);
            if ((sd ? sd : (sh ? sh : sw)) >= 0) continue; /* same or larger tile */
            if ((dz < 0 && z == 0) || (dz > 0 && z + 1 >= D) || (dy < 0 && y == 0) ||
                (dy > 0 && y + 1 >= H) || (dx < 0 && x == 0) || (dx > 0 && x + 1 >= W))
              continue;
            const int32_t nb = (int32_t)(((z + dz) * H + (y + dy)) * W + (x + dx));
            const T yv = in[nb];
            if (multi ? Elem<T>::eq(xv, yv) : Elem<T>::fg(p, yv))
              unite_g(d.lab, roots + d.word_off, v, nb);
          }
        }
      }
    }
  }
}

struct Popc {
  __host__ __device__ uint32_t operator()(uint32_t w) const {
#ifdef __CUDA_ARCH__
    return (uint32_t)__popc(w);
#else
    return (uint32_t)__builtin_popcount(w);
#endif
  }
};

/* Label of global root r of the sample whose words start at word_off. */
__device__ __forceinline__ int32_t rank_label(const uint32_t *roots, const uint32_t *prefix,
                                              int64_t word_off, int32_t r) {
  const int64_t w = word_off + (r >> 5);
  const uint32_t below = roots[w] & ((1u << (r & 31)) - 1u);
  return (int32_t)(prefix[w] - prefix[word_off] + (uint32_t)__popc(below)) + 1;
}

/* One thread per word of the tile-root bitmap. The chain from a tile root
 * to its root only holds tile roots, whose entries turn from parent to
 * -label concurrently here: a negative entry is the answer already. */
__global__ void __launch_bounds__(vp_bl_threads)
    k_roots(Grid g, const uint32_t *roots, const uint32_t *tile_roots, const uint32_t *prefix) {
  const int64_t stride = (int64_t)blockDim.x * gridDim.x;
  int64_t s = 0;
  for (int64_t w = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; w < g.words; w += stride) {
    uint32_t m = tile_roots[w];
    if (!m) continue;
    s = vp_bl_find(g.offq, s, g.n, w * 8); /* 8 quads a word */
    const CclDesc &d = g.descs[s];
    int32_t *lab = d.lab;
    const int32_t base = (int32_t)((w - d.word_off) * 32);
    while (m) {
      const int32_t t = base + __ffs(m) - 1;
      m &= m - 1;
      int32_t x = t, label;
      for (;;) {
        const int32_t pp = __ldcg(lab + x);
        if (pp < 0) {
          label = -pp;
          break;
        }
        if (pp == x) {
          label = rank_label(roots, prefix, d.word_off, x);
          break;
        }
        x = pp;
      }
      __stcg(lab + t, -label);
    }
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

/* Per warp: 32 quads of one sample (samples are padded to 128 voxels),
 * so the loop and the stats' warp intrinsics are warp-uniform. */
template <class T>
__global__ void __launch_bounds__(vp_bl_threads)
    k_final(Grid g, const int64_t *select, int64_t cap, int64_t *sizes, int64_t *boxes) {
  const int64_t stride = (int64_t)blockDim.x * gridDim.x;
  const unsigned lane = threadIdx.x & 31u;
  int64_t s = 0;
  for (int64_t u = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; u < g.quads; u += stride) {
    s = vp_bl_find(g.offq, s, g.n, u);
    const CclDesc &d = g.descs[s];
    const int64_t v0 = (u - g.offq[s]) * 4;
    int32_t l[4] = {0, 0, 0, 0};
    if (v0 < d.n) {
      const T *in = (const T *)d.in + v0;
      int32_t *lab = d.lab + v0;
      const bool whole = v0 + 4 <= d.n;
      T x[4];
      if (whole && ((uintptr_t)in & (4 * sizeof(T) - 1)) == 0) {
        Load4<sizeof(T) <= 4 ? (int)sizeof(T) : 8>::run(in, x);
      } else {
        for (int k = 0; k < 4; k++)
          if (v0 + k < d.n) x[k] = in[k];
      }
      const vp_ccl_pred p = pred_of<T>(d, select, s);
      bool f[4], any = false;
      for (int k = 0; k < 4; k++) {
        f[k] = v0 + k < d.n && Elem<T>::fg(p, x[k]);
        any |= f[k];
      }
      const bool vec = whole && ((uintptr_t)lab & 15) == 0;
      if (any) {
        int32_t a[4];
        if (vec) {
          const int4 q = *(const int4 *)lab;
          a[0] = q.x, a[1] = q.y, a[2] = q.z, a[3] = q.w;
        } else {
          for (int k = 0; k < 4; k++) a[k] = f[k] ? lab[k] : 0;
        }
        for (int k = 0; k < 4; k++) {
          if (!f[k]) continue;
          /* own entry: -label (a tile root) or a tile root's index, whose
           * entry is -label or, already final, label */
          if (a[k] < 0)
            l[k] = -a[k];
          else
            l[k] = abs(((volatile const int32_t *)d.lab)[a[k]]);
        }
      }
      if (vec) {
        *(int4 *)lab = make_int4(l[0], l[1], l[2], l[3]);
      } else {
        for (int k = 0; k < 4; k++)
          if (v0 + k < d.n) lab[k] = l[k];
      }
    }
    if (cap > 0) { /* warp-uniform */
      for (int k = 0; k < 4; k++) {
        const unsigned same = __match_any_sync(0xffffffffu, l[k]);
        if (sizes && l[k] > 0 && l[k] <= cap && lane == (unsigned)(__ffs(same) - 1))
          atomicAdd((unsigned long long *)(sizes + s * cap + (l[k] - 1)),
                    (unsigned long long)__popc(same));
      }
      const int32_t prev = __shfl_up_sync(0xffffffffu, l[3], 1);
      const int32_t next = __shfl_down_sync(0xffffffffu, l[0], 1);
      if (boxes && v0 < d.n) {
        const uint32_t W = d.W, H = d.H;
        uint32_t vv = (uint32_t)v0, x = vv % W, t = vv / W, h = t % H, z = t / H;
        for (int k = 0; k < 4 && v0 + k < d.n; k++) {
          const int32_t lk = l[k];
          if (lk > 0 && lk <= cap) {
            int64_t *b = boxes + (s * cap + (lk - 1)) * 6;
            const int32_t before = k ? l[k - 1] : prev, after = k < 3 ? l[k + 1] : next;
            if ((k == 0 && lane == 0) || x == 0 || before != lk) { /* a run starts here */
              min_to(b + 0, z);
              min_to(b + 1, h);
              min_to(b + 2, x);
              max_to(b + 3, (int64_t)z + 1);
              max_to(b + 4, (int64_t)h + 1);
            }
            if ((k == 3 && lane == 31) || x + 1 == W || after != lk) max_to(b + 5, (int64_t)x + 1);
          }
          if (++x == W) {
            x = 0;
            if (++h == H) h = 0, z++;
          }
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

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t tiles_of(const int64_t *sh) {
  return ceil_div(sh[0], TD) * ceil_div(sh[1], TH) * ceil_div(sh[2], TW);
}

typedef thrust::transform_iterator<Popc, const uint32_t *> PopcIter;

struct Layout {
  int64_t words;
  size_t table, bits, prefix, scratch, scratch_bytes, total;
};

/* bits: the root bitmap (words + 1, the last word zero so that the scan
 * yields the total) then the tile-root bitmap (words), cleared at once */
vp_status layout_of(const int64_t (*shapes)[3], int64_t n, Layout *L) {
  const char *who = "connected components (GPU)";
  if (n < 0)
    return vp_fail(VP_ERR_INVALID_ARG, "%s: batch size %lld is negative", who, (long long)n);
  if (n > 0 && !shapes) return vp_fail(VP_ERR_INVALID_ARG, "%s: shapes are NULL", who);
  vp_ccl_params any = {};
  any.connectivity = 26;
  int64_t words = 0;
  for (int64_t i = 0; i < n; i++) {
    int conn;
    VP_TRY(vp_ccl_check(who, shapes[i], &any, &conn));
    words += ceil_div(shapes[i][0] * shapes[i][1] * shapes[i][2], kPad) * (kPad / 32);
  }
  L->words = words;
  size_t at = 0;
  L->table = at;
  at += align_up((size_t)(2 * (n + 1)) * sizeof(int64_t) + (size_t)n * sizeof(CclDesc));
  L->bits = at;
  at += align_up((size_t)(2 * words + 1) * sizeof(uint32_t));
  L->prefix = at;
  at += align_up((size_t)(words + 1) * sizeof(uint32_t));
  size_t scratch = 0;
  cudaError_t e = cub::DeviceScan::ExclusiveSum(nullptr, scratch, PopcIter(nullptr, Popc()),
                                                (uint32_t *)nullptr, (int64_t)(words + 1));
  if (e != cudaSuccess) return vp_cuda_status(e, "connected components: scan scratch query");
  L->scratch = at;
  L->scratch_bytes = scratch;
  at += align_up(scratch);
  L->total = at;
  return VP_OK;
}

template <class T>
vp_status launch_all(const Grid &g, const int64_t *select, int conn, int multi, uint32_t *bits,
                     uint32_t *prefix, void *scratch, size_t scratch_bytes, int64_t cap,
                     int64_t *sizes, int64_t *boxes, cudaStream_t st) {
  uint32_t *roots = bits, *tile_roots = bits + g.words + 1;
  cudaError_t e = cudaMemsetAsync(bits, 0, (size_t)(2 * g.words + 1) * sizeof(uint32_t), st);
  if (e != cudaSuccess) return vp_cuda_status(e, "connected components: clearing the bitmaps");
  if (g.tiles > 0) {
    const unsigned tb = (unsigned)(g.tiles < kMaxTileBlocks ? g.tiles : kMaxTileBlocks);
    k_local<T><<<tb, TPB, 0, st>>>(g, select, conn, multi, roots, tile_roots);
    k_border<T><<<tb, TPB, 0, st>>>(g, select, conn, multi, roots);
  }
  e = cudaGetLastError();
  if (e != cudaSuccess) return vp_cuda_status(e, "connected components: labelling kernels");
  size_t sb = scratch_bytes;
  e = cub::DeviceScan::ExclusiveSum(scratch, sb, PopcIter(roots, Popc()), prefix,
                                    (int64_t)(g.words + 1), st);
  if (e != cudaSuccess) return vp_cuda_status(e, "connected components: scan");
  if (g.quads > 0) {
    k_roots<<<vp_bl_blocks(g.words), vp_bl_threads, 0, st>>>(g, roots, tile_roots, prefix);
    k_final<T><<<vp_bl_blocks(g.quads), vp_bl_threads, 0, st>>>(g, select, cap, sizes, boxes);
  }
  e = cudaGetLastError();
  if (e != cudaSuccess) return vp_cuda_status(e, "connected components: final kernels");
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

extern "C" vp_status vp_cuda_ccl_label(const vp_ccl_gpu_sample *samples, int64_t n, vp_dtype dtype,
                                       const vp_ccl_params *p, const int64_t *select,
                                       int64_t *counts, const vp_ccl_gpu_stats *stats,
                                       void *workspace, size_t workspace_bytes, void *stream) {
  const char *who = "connected components (GPU)";
  if (n < 0 || (n > 0 && !samples) || !p)
    return vp_fail(VP_ERR_INVALID_ARG, "%s: NULL samples or parameters, or n < 0", who);
  if (n == 0) return VP_OK;
  if (!vp_dtype_size(dtype)) return vp_fail(VP_ERR_INVALID_ARG, "%s: invalid dtype", who);
  int64_t(*shapes)[3] = (int64_t(*)[3])malloc((size_t)n * sizeof *shapes);
  if (!shapes) return vp_fail(VP_ERR_NOMEM, "%s: out of host memory", who);
  int conn = 26;
  vp_status st = VP_OK;
  for (int64_t i = 0; i < n && st == VP_OK; i++) {
    memcpy(shapes[i], samples[i].shape, sizeof shapes[i]);
    st = vp_ccl_check(who, shapes[i], p, &conn);
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
  if (cap < 0)
    return vp_fail(VP_ERR_INVALID_ARG, "%s: stats capacity %lld is negative", who, (long long)cap);

  /* the table: quad offsets, tile offsets, then descriptors */
  const size_t off_bytes = (size_t)(n + 1) * sizeof(int64_t);
  const size_t table_bytes = 2 * off_bytes + (size_t)n * sizeof(CclDesc);
  char *host = (char *)malloc(table_bytes);
  if (!host) return vp_fail(VP_ERR_NOMEM, "%s: out of host memory", who);
  int64_t *offq = (int64_t *)host, *offt = offq + (n + 1);
  CclDesc *descs = (CclDesc *)(host + 2 * off_bytes);
  const vp_ccl_pred pred =
      vp_ccl_pred_of(p->select != 0, p->select ? p->select_value : p->background);
  int64_t word = 0, tiles = 0;
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
    d.tiles_h = (uint32_t)ceil_div(sh[1], TH);
    d.tiles_w = (uint32_t)ceil_div(sh[2], TW);
    d.word_off = word;
    d.words = ceil_div((int64_t)d.n, kPad) * (kPad / 32);
    d.pred = pred;
    offq[i] = word * 8;
    offt[i] = tiles;
    word += d.words;
    tiles += d.n ? tiles_of(sh) : 0;
  }
  offq[n] = word * 8;
  offt[n] = tiles;
  cudaStream_t s = (cudaStream_t)stream;
  char *ws = (char *)workspace;
  vp_status up = vp_cuda_upload(ws + L.table, host, table_bytes, s, "connected components: table");
  free(host); /* the upload copied it */
  if (up != VP_OK) return up;

  Grid g;
  g.offq = (const int64_t *)(ws + L.table);
  g.offt = g.offq + (n + 1);
  g.descs = (const CclDesc *)(ws + L.table + 2 * off_bytes);
  g.n = n;
  g.quads = word * 8;
  g.tiles = tiles;
  g.words = word;
  int64_t *sizes = cap > 0 ? stats->sizes : NULL, *boxes = cap > 0 ? stats->boxes : NULL;
  if (cap > 0) {
    const int64_t m = n * cap;
    k_stats_init<<<vp_bl_blocks(m), vp_bl_threads, 0, s>>>(m, sizes, boxes);
  }
  uint32_t *bits = (uint32_t *)(ws + L.bits), *prefix = (uint32_t *)(ws + L.prefix);
  void *scratch = ws + L.scratch;
  const int multi = p->multi_label && !p->select && !select;
#define CCL_LAUNCH(T)                                                                              \
  launch_all<T>(g, select, conn, multi, bits, prefix, scratch, L.scratch_bytes, cap, sizes, boxes, \
                s)
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

/* Binary labelling at full connectivity on 2x2x2 blocks (the idea of
 * Allegretti, Bolelli and Grana's BKE; geometry: src/cuda/ccl_blocks.h).
 *
 * Any two voxels of a block are 26-adjacent, so a block's foreground
 * voxels are one node of the union-find: 8x fewer nodes than ccl.cu's
 * voxel path and no unions inside a block. Two blocks join iff each has a
 * foreground voxel on its side facing the other (vp_ccl_blocks_touch).
 *
 * Union-find words: key << 32 | parent block, where a block's key is its
 * first foreground voxel (linear index in the sample). Unions link the
 * larger root word under the smaller by atomicMin, so every word is
 * smaller than its child's and a root holds the smallest key of its tree:
 * the component's first voxel in C order (which the smallest block index
 * need not hold: voxels (0, 5, 0) and (1, 0, 0)). The numbering then is
 * ccl.cu's: one bit per root key in the 32-voxel words, a scan of their
 * counts, label = rank of the key + 1.
 *
 * Work units are blocks, each sample's padded to a multiple of 32 so that
 * a warp (and the grid stride, a multiple of 32) stays inside one sample:
 * the final kernel's warp reductions need every lane. Kernels:
 *   init     mask of the block's foreground voxels; word = key | self;
 *            zeroes the sample's bits and counts
 *   merge    fg block: union with each of its 13 backward neighbours
 *            that it touches
 *   compress fg block: word = root's word; a root sets its key's bit
 *   scan     exclusive sum of the word counts (CUB)
 *   final    every voxel's label (two int32 per block row), stats */
#include <cuda_runtime_api.h>

#include <cub/device/device_scan.cuh>

extern "C" {
#include "core/cuda_rt.h"
#include "core/status.h"
}
#include "cuda/batch_launch.h"
#include "cuda/ccl_blocks.h"
#include "cuda/ccl_device.h"

namespace vp_ccl {
namespace {

typedef unsigned long long u64;

/* A sample's block grid and the coordinates of block b. */
struct Blocks {
  uint32_t BW, BH, BHW, nb;
  __device__ explicit Blocks(const CclDesc &d) {
    BW = (d.W + 1) / 2;
    BH = (d.H + 1) / 2;
    BHW = BW * BH;
    nb = BHW * ((d.D + 1) / 2);
  }
};
struct At {
  uint32_t bx, by, bz;
  __device__ At(const Blocks &g, uint32_t b) {
    bx = b % g.BW;
    const uint32_t t = b / g.BW;
    by = t % g.BH;
    bz = t / g.BH;
  }
};

/* Linear index of the voxel of mask bit k of the block at a (k < 8, the
 * voxel inside the volume: below n < 2^31, so 32 bits hold every term). */
__device__ __forceinline__ uint32_t voxel_of(const CclDesc &d, const At &a, int k) {
  const uint32_t z = 2 * a.bz + (k >> 2), y = 2 * a.by + ((k >> 1) & 1), x = 2 * a.bx + (k & 1);
  return (z * d.H + y) * d.W + x;
}

/* f(row, k) for each of the block's (z, y) rows inside the volume: row =
 * the linear index of its voxel at x = 2 bx, k = that voxel's mask bit (the
 * row's second voxel is bit k + 1, when x = 2 bx + 1 < W). */
template <class F>
__device__ __forceinline__ void for_block_rows(const CclDesc &d, const At &a, F f) {
  for (int lz = 0; lz < 2; lz++) {
    const uint32_t z = 2 * a.bz + lz;
    if (z >= d.D) break;
    for (int ly = 0; ly < 2; ly++) {
      const uint32_t y = 2 * a.by + ly;
      if (y >= d.H) break;
      f((z * d.H + y) * d.W + 2 * a.bx, lz * 4 + ly * 2);
    }
  }
}

/* The root word of block x's tree. __ldcg: parents change under other
 * threads' unions, so L1 copies would go stale. */
__device__ __forceinline__ u64 root_of(const u64 *P, uint32_t x) {
  u64 p = __ldcg(P + x);
  while ((uint32_t)p != x) {
    x = (uint32_t)p;
    p = __ldcg(P + x);
  }
  return p;
}

/* root_of with path halving, for merge: each visited word is pointed at
 * its grandparent, so later finds walk shorter paths (without it merge's
 * finds walked long chains). Only non-roots are rewritten, and a non-root
 * never becomes a root again, so a concurrent union's atomicMin on the
 * same word (which sees a parent that is not the word itself and goes on
 * from it) loses no link; the grandparent is an ancestor, so the word
 * stays above the child's. */
__device__ __forceinline__ u64 find_halving(u64 *P, uint32_t x) {
  u64 p = __ldcg(P + x);
  while ((uint32_t)p != x) {
    const uint32_t px = (uint32_t)p;
    const u64 gp = __ldcg(P + px);
    if ((uint32_t)gp == px) return gp;
    __stcg(P + x, gp);
    x = (uint32_t)gp;
    p = __ldcg(P + x);
  }
  return p;
}

/* Joins the trees of root words ra and rb (found just before; either may
 * have been linked under another root since) and returns a word of the
 * joined tree. The larger root goes under the smaller by atomicMin; one
 * that finds its target already re-parented (to `old`, a smaller word) has
 * moved it under ra all the same, and what it displaced still has to join,
 * so the loop goes on from there. A stale ra is still a member of its
 * tree, so linking under it is as good as linking under its root. */
__device__ __forceinline__ u64 unite_roots(u64 *P, u64 ra, u64 rb) {
  for (;;) {
    if (ra == rb) return ra;
    if (ra > rb) {
      const u64 t = ra;
      ra = rb;
      rb = t;
    }
    const u64 old = atomicMin(P + (uint32_t)rb, ra);
    if (old == rb) return ra;
    ra = find_halving(P, (uint32_t)ra);
    rb = find_halving(P, (uint32_t)old);
  }
}

/* Loop over the block units of the batch: s the sample, b the block
 * within it (blocks >= nb are padding). */
#define FOR_UNITS(g)                                       \
  const int64_t stride_ = (int64_t)blockDim.x * gridDim.x; \
  int64_t s = 0;                                           \
  for (int64_t u = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; u < (g).total; u += stride_)

/* Block unit u of sample s: its mask (0 for padding), written with its
 * union-find word; its sample's bit and count words cleared. */
template <class T>
__device__ __forceinline__ uint32_t init_unit(const Grid &g, const int64_t *select,
                                              const BlockWs &w, int64_t s, int64_t u) {
  const CclDesc &d = g.descs[s];
  const int64_t b64 = u - g.off[s];
  /* a sample has at least as many block units as words (a block holds
   * at most 8 voxels, a word 32), so its units can clear its words */
  if (b64 < d.words) {
    w.bits[d.word_off + b64] = 0;
    w.cnt[d.word_off + b64] = 0;
  }
  const Blocks G(d);
  if (b64 >= G.nb) return 0;
  const uint32_t b = (uint32_t)b64;
  const At a(G, b);
  const vp_ccl_pred p = pred_of<T>(d, select, s);
  const T *in = (const T *)d.in;
  const uint32_t x0 = 2 * a.bx;
  uint32_t m = 0;
  for_block_rows(d, a, [&](uint32_t row, int k) {
    if (Elem<T>::fg(p, in[row])) m |= 1u << k;
    if (x0 + 1 < d.W && Elem<T>::fg(p, in[row + 1])) m |= 2u << k;
  });
  w.mask[g.off[s] + b] = (uint8_t)m;
  /* background blocks' words are never read */
  if (m) w.parent[g.off[s] + b] = (u64)voxel_of(d, a, __ffs(m) - 1) << 32 | b;
  return m;
}

/* Init, and the worklist of merge and compress: foreground units take
 * their slots from a shared-memory count, one global atomic per thread
 * block (one per warp on the single counter cost 13 us). The loop is
 * block-uniform for the barriers. */
template <class T>
__global__ void __launch_bounds__(vp_bl_threads) k_binit(Grid g, const int64_t *select, BlockWs w) {
  __shared__ unsigned count;
  __shared__ u64 first;
  if (blockIdx.x == 0 && threadIdx.x == 0) w.cnt[w.words] = 0; /* the scan's last entry */
  const int64_t stride = (int64_t)blockDim.x * gridDim.x;
  int64_t s = 0;
  for (int64_t u0 = (int64_t)blockIdx.x * blockDim.x; u0 < g.total; u0 += stride) {
    const int64_t u = u0 + threadIdx.x;
    uint32_t m = 0;
    if (u < g.total) {
      s = vp_bl_find(g.off, s, g.n, u);
      m = init_unit<T>(g, select, w, s, u);
    }
    if (threadIdx.x == 0) count = 0;
    __syncthreads();
    const unsigned slot = m ? atomicAdd(&count, 1u) : 0;
    __syncthreads();
    if (threadIdx.x == 0 && count) first = atomicAdd(w.nwork, (u64)count);
    __syncthreads();
    if (m) w.work[first + slot] = u;
  }
}

/* Over the foreground blocks of the worklist: s the sample, b the block.
 * Merge and compress walk it instead of every unit: at 5 % foreground
 * about one block in fifteen has work, and over all units each wave of
 * threads waited for its slowest union chain (merge 88 us). */
#define FOR_WORK(g, w)                                     \
  const int64_t count_ = (int64_t) * (w).nwork;            \
  const int64_t stride_ = (int64_t)blockDim.x * gridDim.x; \
  for (int64_t i_ = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i_ < count_; i_ += stride_)

/* Merge: one thread per (foreground block, backward neighbour), the 13
 * neighbours (dz, dy, dx) before (0, 0, 0) in C order numbered 0..12 (the
 * nine of the previous block plane, then three of the row above, then the
 * left one; 13..15 idle). A thread per block walking all 13 in turn kept
 * 3.3 lanes of a warp busy on average and each lane waited on up to 13
 * finds in a row (ncu: 80 us, L1TEX-bound). */
constexpr int kDirSlots = 16;

__device__ __forceinline__ void dir_of(int k, int &dz, int &dy, int &dx) {
  if (k < 9) {
    dz = -1, dy = k / 3 - 1, dx = k % 3 - 1;
  } else if (k < 12) {
    dz = 0, dy = -1, dx = k - 10;
  } else {
    dz = 0, dy = 0, dx = -1;
  }
}

__global__ void __launch_bounds__(vp_bl_threads) k_bmerge(Grid g, BlockWs w) {
  const int64_t count = (int64_t)*w.nwork * kDirSlots;
  const int64_t stride = (int64_t)blockDim.x * gridDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += stride) {
    const int k = (int)(i % kDirSlots);
    if (k >= 13) continue;
    const int64_t u = w.work[i / kDirSlots];
    const int64_t s = vp_bl_find(g.off, 0, g.n, u);
    const CclDesc &d = g.descs[s];
    const Blocks G(d);
    const uint32_t b = (uint32_t)(u - g.off[s]);
    const uint8_t *mask = w.mask + g.off[s];
    const uint32_t ma = mask[b];
    int dz, dy, dx;
    dir_of(k, dz, dy, dx);
    /* this block's side first: it needs no load */
    if (!(ma & vp_ccl_block_face(dz, dy, dx))) continue;
    const At a(G, b);
    if ((dz < 0 && a.bz == 0) || (dy < 0 && a.by == 0) || (dy > 0 && a.by + 1 >= G.BH) ||
        (dx < 0 && a.bx == 0) || (dx > 0 && a.bx + 1 >= G.BW))
      continue;
    const uint32_t nb = b + (uint32_t)(dz * (int32_t)G.BHW + dy * (int32_t)G.BW + dx);
    if (!vp_ccl_blocks_touch(ma, mask[nb], dz, dy, dx)) continue;
    u64 *P = w.parent + g.off[s];
    const u64 ra = find_halving(P, b), rb = find_halving(P, nb);
    if (ra != rb) unite_roots(P, ra, rb);
  }
}

/* After every union (a kernel boundary): trees are fixed, so words may
 * be shortcut to the root (concurrent readers see either the old parent
 * or the root: both on the path). Roots mark their key, the component's
 * first voxel; two roots may share a word, hence the atomics. */
__global__ void __launch_bounds__(vp_bl_threads) k_bcompress(Grid g, BlockWs w) {
  FOR_WORK(g, w) {
    const int64_t u = w.work[i_];
    const int64_t s = vp_bl_find(g.off, 0, g.n, u);
    const CclDesc &d = g.descs[s];
    const uint32_t b = (uint32_t)(u - g.off[s]);
    u64 *P = w.parent + g.off[s];
    const u64 r = root_of(P, b);
    if ((uint32_t)r != b) {
      P[b] = r;
    } else {
      const uint32_t key = (uint32_t)(r >> 32);
      const int64_t word = d.word_off + (key >> 5);
      atomicOr(w.bits + word, 1u << (key & 31));
      atomicAdd(w.cnt + word, 1u);
    }
  }
}

/* The label of block b: the rank of its root's key among the sample's
 * root keys, + 1 (0 for a background block). */
__device__ __forceinline__ int32_t label_of(const CclDesc &d, const BlockWs &w, const u64 *P,
                                            uint32_t b) {
  const uint32_t key = (uint32_t)(P[b] >> 32);
  const int64_t word = d.word_off + (key >> 5);
  const uint32_t below = w.bits[word] & ((1u << (key & 31)) - 1u);
  return (int32_t)(w.prefix[word] - w.prefix[d.word_off] + (uint32_t)__popc(below)) + 1;
}

/* Each block writes its voxels of the volume: two int32 per row (one
 * 8-byte store where W is even and the labels 8-byte aligned). Stats: the
 * lanes of a warp with the same label (match) reduce their sizes and box
 * corners first, so a large component takes one atomic per warp, not per
 * block. The loop is warp-uniform (units and stride are multiples of 32),
 * as the warp intrinsics need. */
__global__ void __launch_bounds__(vp_bl_threads)
    k_bfinal(Grid g, BlockWs w, int64_t cap, int64_t *sizes, int64_t *boxes) {
  const unsigned lane = threadIdx.x & 31u;
  FOR_UNITS(g) {
    s = vp_bl_find(g.off, s, g.n, u);
    const CclDesc &d = g.descs[s];
    const int64_t b64 = u - g.off[s];
    const Blocks G(d);
    uint32_t m = 0, lo[3] = {0, 0, 0}, hi[3] = {0, 0, 0};
    int32_t label = 0;
    if (b64 < G.nb) {
      const uint32_t b = (uint32_t)b64;
      m = w.mask[g.off[s] + b];
      if (m) label = label_of(d, w, w.parent + g.off[s], b);
      const At a(G, b);
      const uint32_t x0 = 2 * a.bx;
      const bool pair = (d.W & 1) == 0 && ((uintptr_t)d.lab & 7) == 0;
      for_block_rows(d, a, [&](uint32_t r, int k) {
        const int32_t l0 = (m >> k) & 1 ? label : 0, l1 = (m >> k) & 2 ? label : 0;
        int32_t *row = d.lab + r;
        if (pair) {
          *(int2 *)row = make_int2(l0, l1);
        } else {
          row[0] = l0;
          if (x0 + 1 < d.W) row[1] = l1;
        }
      });
      /* the block's extent: its lower or upper half on an axis where
       * the other holds no foreground voxel */
      const uint32_t c[3] = {2 * a.bz, 2 * a.by, x0};
      const uint32_t lo_side[3] = {vp_ccl_block_face(-1, 0, 0), vp_ccl_block_face(0, -1, 0),
                                   vp_ccl_block_face(0, 0, -1)};
      for (int ax = 0; ax < 3; ax++) {
        lo[ax] = c[ax] + (m & lo_side[ax] ? 0 : 1);
        hi[ax] = c[ax] + (m & ~lo_side[ax] ? 2 : 1);
      }
    }
    if (cap > 0) {
      const unsigned same = __match_any_sync(0xffffffffu, label);
      const unsigned size = __reduce_add_sync(same, (unsigned)__popc(m));
      for (int ax = 0; ax < 3; ax++) {
        lo[ax] = __reduce_min_sync(same, lo[ax]);
        hi[ax] = __reduce_max_sync(same, hi[ax]);
      }
      if (label > 0 && label <= cap && lane == (unsigned)(__ffs(same) - 1)) {
        const int64_t e = s * cap + (label - 1);
        if (sizes) atomicAdd((u64 *)(sizes + e), (u64)size);
        if (boxes)
          for (int ax = 0; ax < 3; ax++) {
            min_to(boxes + e * 6 + ax, lo[ax]);
            max_to(boxes + e * 6 + 3 + ax, hi[ax]);
          }
      }
    }
  }
}

#undef FOR_UNITS
#undef FOR_WORK

template <class T>
vp_status run(const Grid &g, const int64_t *select, const BlockWs &w, int64_t cap, int64_t *sizes,
              int64_t *boxes, cudaStream_t st) {
  const unsigned blocks = vp_bl_blocks(g.total);
  /* init runs even on an empty batch: it clears the scan's last entry */
  const unsigned init_blocks = g.total > 0 ? blocks : 1;
  k_binit<T><<<init_blocks, vp_bl_threads, 0, st>>>(g, select, w);
  if (g.total > 0) {
    /* the worklist's length is known on the device only: enough threads
     * for every block at once when few have work, looping otherwise */
    const unsigned wblocks = blocks < 1024 ? blocks : 1024;
    /* 16 threads a worklist entry: two million threads at once cover a
     * foreground of 130,000 blocks (the blobs bench has ~100,000); more
     * loop */
    const unsigned mblocks = blocks < 8192 / 16 ? blocks * 16 : 8192;
    k_bmerge<<<mblocks, vp_bl_threads, 0, st>>>(g, w);
    k_bcompress<<<wblocks, vp_bl_threads, 0, st>>>(g, w);
  }
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return vp_cuda_status(e, "connected components: block kernels");
  size_t sb = w.scratch_bytes;
  e = cub::DeviceScan::ExclusiveSum(w.scratch, sb, w.cnt, w.prefix, (int64_t)(w.words + 1), st);
  if (e != cudaSuccess) return vp_cuda_status(e, "connected components: scan");
  if (g.total > 0) k_bfinal<<<blocks, vp_bl_threads, 0, st>>>(g, w, cap, sizes, boxes);
  e = cudaGetLastError();
  if (e != cudaSuccess) return vp_cuda_status(e, "connected components: block final kernel");
  return VP_OK;
}

}  // namespace

vp_status blocks_launch(vp_dtype dtype, const Grid &g, const int64_t *select, const BlockWs &w,
                        int64_t cap, int64_t *sizes, int64_t *boxes, cudaStream_t st) {
  switch (dtype) {
    case VP_U8: return run<uint8_t>(g, select, w, cap, sizes, boxes, st);
    case VP_I8: return run<int8_t>(g, select, w, cap, sizes, boxes, st);
    case VP_U16: return run<uint16_t>(g, select, w, cap, sizes, boxes, st);
    case VP_I16: return run<int16_t>(g, select, w, cap, sizes, boxes, st);
    case VP_U32: return run<uint32_t>(g, select, w, cap, sizes, boxes, st);
    case VP_I32: return run<int32_t>(g, select, w, cap, sizes, boxes, st);
    case VP_I64: return run<int64_t>(g, select, w, cap, sizes, boxes, st);
    case VP_F16: return run<Half>(g, select, w, cap, sizes, boxes, st);
    case VP_F32: return run<float>(g, select, w, cap, sizes, boxes, st);
    case VP_F64: return run<double>(g, select, w, cap, sizes, boxes, st);
    default: return vp_fail(VP_ERR_INVALID_ARG, "connected components (GPU): invalid dtype");
  }
}

}  // namespace vp_ccl

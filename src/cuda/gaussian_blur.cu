/* gaussian_blur on the GPU, in the CPU body's order W, H, D
 * (gaussian_blur.h), every sum rounded as the CPU rounds it.
 *
 * A float sample (not float64) whose radii are all at most kVolMaxR (4:
 * sigma <= 4/3 at truncate 3, nnU-Net's range) runs all three axes in one
 * launch, blur_vol: a block walks a column of planes, summing W and H in
 * shared memory and registers and D in a register ring, so the sample
 * crosses memory twice instead of six times (156 -> 53.5 us for a
 * 4 x 128^3 sample). One launch per D radius serves the batch.
 *
 * Other samples take one 1-D pass per axis of radius > 0: the first pass
 * reads the input, the last writes the output, those between go through
 * scratch of the accumulation type. One launch per axis serves the whole
 * batch; a block takes tiles and finds a tile's sample by a short search
 * of the launch's job table, so nothing is divided per voxel (the generic
 * batched kernel's per-element search and 64-bit divisions made each pass
 * ~5x slower than its memory traffic).
 *
 * W (blur_rows): a tile is RB rows x TW voxels (TW a power of two in
 * 32..256 fitted to W). The block gathers the rows and their reflected
 * halo into shared memory, a warp per row with lanes on consecutive
 * voxels, then each thread sums its outputs from there.
 * H and D (blur_cols): the sample is seen as planes of n positions along
 * the axis, each M contiguous voxels (H: M = W; D: M = H W). A tile is 32
 * consecutive voxels of M (one 128-byte row per warp access) x TN
 * positions, gathered with the halo, then summed down the columns.
 * Loads go four to a thread before they land in shared memory, so that a
 * thread keeps several in flight.
 *
 * Float32 and float64 data run lean kernels (direct loads and stores, 40
 * registers); other dtypes convert through the shared helpers in their
 * launch's first and last pass. A sample that p left alone is copied,
 * bytes, by a fourth launch (not when its output is its input: a chain
 * passing it through); one whose radii are all 0 is converted (input ->
 * float -> output, as the CPU body): by blur_vol's windows of radius 0,
 * or for float64 data by a W pass of radius 0. */
#include <cuda_runtime_api.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "core/cuda_rt.h"
#include "core/status.h"
}
#include "cuda/gaussian_blur.h"

namespace {

constexpr int kThreads = 256;
constexpr int kColW = 32;  /* voxels of M per cols tile: a warp's 128-byte row */
constexpr int kColTN = 64; /* positions per cols tile: 8 outputs a thread */
constexpr int kRowOut = 8; /* outputs a thread in a rows tile, at most */
constexpr int kCopyTile = 2048;
constexpr int kCopyPer = kCopyTile / kThreads;
constexpr int kBatch = 4; /* loads in flight per thread while gathering */
constexpr int64_t kMaxGrid = 1 << 20;
/* blur_vol: output tiles of kVolTX x kVolTY voxels walking zc planes,
 * radii up to kVolMaxR (sigma 4/3 at truncate 3: nnU-Net's range). A
 * thread sums kVolQ consecutive voxels of a row along W, kVolRows of a
 * column along H, and keeps those columns' last 2 rz + 1 planes in
 * registers for D. */
constexpr int kVolTX = 32, kVolTY = 16, kVolMaxR = 4, kVolQ = 4;
constexpr int kVolRows = kVolTY / (kThreads / kVolTX);
/* Blocks an SM (launch bound): the lean kernels fit 80 registers without
 * spilling, the converting ones 128. */
constexpr int vol_blocks(bool any) { return any ? 2 : 3; }
static_assert(kVolTX == 32 && kVolRows == 2, "blur_vol: a warp per two rows of a tile");
constexpr int kVolSpan = kVolTX + 2 * kVolMaxR + 1; /* a row in shared memory, at most */
constexpr int kVolLoads = ((kVolTY + 2 * kVolMaxR) * (kVolTX + 2 * kVolMaxR) + kThreads - 1) / kThreads;
/* what a block may use without opting in, less the weights' static array */
constexpr size_t kSmemPlain = 48 * 1024 - (VP_BLUR_MAX_RADIUS + 1) * sizeof(double);

/* One sample's share of one launch. */
struct Job {
  const void *src;
  void *dst;
  int64_t first;   /* the job's first tile in the launch */
  int64_t lines;   /* rows: rows of W voxels; cols: planes */
  int64_t n;       /* voxels along the axis; copy: elements */
  int64_t m;       /* cols: contiguous voxels per position */
  int64_t tiles_x; /* rows: tiles across W; cols: tiles across M */
  int64_t tiles_n; /* rows: tiles of rows; cols: tiles along the axis */
  int64_t woff;    /* half-kernel in the weight table */
  int32_t r;
  int32_t src_t, dst_t;
  int32_t tw_log2; /* rows: log2 of TW */
  int32_t tn;      /* rows: RB; cols: TN */
  int32_t es;      /* copy: bytes per element */
};

/* One sample of the single-pass kernel (blur_vol): all three radii at
 * most kVolMaxR. */
struct VolJob {
  const void *src;
  void *dst;
  int64_t first; /* the job's first tile in the launch */
  int64_t outer, d, h, w;
  int64_t tiles_x, tiles_y, tiles_z;
  int64_t woff[3]; /* per axis D, H, W */
  int32_t r[3];
  int32_t src_t, dst_t;
  int32_t zc; /* output planes a tile walks */
};

/* The last job j' >= j whose first tile is <= t (tiles only grow along a
 * block's grid-stride walk, so the previous answer is a lower bound). */
template <class J>
__device__ __forceinline__ int64_t job_of(const J *jobs, int64_t nj, int64_t j, int64_t t) {
  int64_t lo = j, hi = nj - 1;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo + 1) / 2;
    if (jobs[mid].first <= t)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

/* Loads and stores of a launch. Lean (kAny false): every job reads and
 * writes the accumulation type (float32 data and scratch, float64 data and
 * scratch), directly, in a kernel that keeps few registers. Any: per job
 * dtypes, through the shared converters (integer and float16 data). */
template <class Acc, bool kAny>
struct Io {
  static __device__ __forceinline__ Acc ld(const void *p, vp_dtype, int64_t i) {
    return __ldg((const Acc *)p + i);
  }
  static __device__ __forceinline__ void st(Acc v, void *p, vp_dtype, int64_t i) {
    ((Acc *)p)[i] = v;
  }
};
template <>
struct Io<float, true> {
  static __device__ __forceinline__ float ld(const void *p, vp_dtype t, int64_t i) {
    return vp_blur_loadf(p, t, i);
  }
  static __device__ __forceinline__ void st(float v, void *p, vp_dtype t, int64_t i) {
    vp_blur_storef(p, t, i, v);
  }
};
template <>
struct Io<double, true> {
  static __device__ __forceinline__ double ld(const void *p, vp_dtype t, int64_t i) {
    return vp_cvt_load(p, t, i);
  }
  static __device__ __forceinline__ void st(double v, void *p, vp_dtype t, int64_t i) {
    vp_cvt_store(p, t, i, v);
  }
};

__device__ __forceinline__ float window(const float *c, int s, const float *w, int r) {
  return vp_blur_window_f(c, s, w, r);
}
__device__ __forceinline__ double window(const double *c, int s, const double *w, int r) {
  return vp_blur_window_d(c, s, w, r);
}

/* buf[rr * span + i] = source row row0 + rr at x0 - r + i (reflected), for
 * rr < nr, i < lim: warp by warp along the rows. */
template <class Acc, bool kAny>
__device__ void gather_rows(const Job &j, Acc *buf, int64_t row0, int nr, int64_t x0, int span,
                            int lim) {
  const int lane = threadIdx.x & 31;
  const vp_dtype t = (vp_dtype)j.src_t;
  for (int rr = threadIdx.x >> 5; rr < nr; rr += kThreads / 32) {
    const int64_t base = (row0 + rr) * j.n;
    for (int i0 = lane; i0 < lim; i0 += 32 * kBatch) {
      Acc v[kBatch];
#pragma unroll
      for (int k = 0; k < kBatch; k++) {
        const int i = i0 + 32 * k;
        if (i < lim) v[k] = Io<Acc, kAny>::ld(j.src, t, base + vp_blur_reflect(x0 - j.r + i, j.n));
      }
#pragma unroll
      for (int k = 0; k < kBatch; k++)
        if (i0 + 32 * k < lim) buf[rr * span + i0 + 32 * k] = v[k];
    }
  }
}

/* buf[i * kColW + lane] = position n0 - r + i (reflected) of column m of
 * the plane at base, for i < lim. */
template <class Acc, bool kAny>
__device__ void gather_cols(const Job &j, Acc *buf, int64_t base, int64_t n0, int64_t m, int lim) {
  const int lane = threadIdx.x & 31;
  const vp_dtype t = (vp_dtype)j.src_t;
  for (int i0 = threadIdx.x >> 5; i0 < lim; i0 += (kThreads / 32) * kBatch) {
    Acc v[kBatch];
#pragma unroll
    for (int k = 0; k < kBatch; k++) {
      const int i = i0 + (kThreads / 32) * k;
      if (i < lim)
        v[k] = Io<Acc, kAny>::ld(j.src, t, base + vp_blur_reflect(n0 - j.r + i, j.n) * j.m + m);
    }
#pragma unroll
    for (int k = 0; k < kBatch; k++) {
      const int i = i0 + (kThreads / 32) * k;
      if (i < lim) buf[i * kColW + lane] = v[k];
    }
  }
}

template <class E>
__device__ __forceinline__ void copy_tile(const Job &j, int64_t tile) {
  const int64_t e0 = tile * kCopyTile + threadIdx.x;
  E v[kCopyPer];
#pragma unroll
  for (int k = 0; k < kCopyPer; k++)
    if (e0 + k * kThreads < j.n) v[k] = ((const E *)j.src)[e0 + k * kThreads];
#pragma unroll
  for (int k = 0; k < kCopyPer; k++)
    if (e0 + k * kThreads < j.n) ((E *)j.dst)[e0 + k * kThreads] = v[k];
}

/* The weights of job j as Acc, as the CPU body rounds them. The caller
 * synchronises before and after. */
template <class Acc>
__device__ __forceinline__ void load_weights(const Job &j, const double *w, Acc *wf) {
  for (int k = threadIdx.x; k <= j.r; k += kThreads) wf[k] = (Acc)w[j.woff + k];
}

/* Blocks per SM the lean kernels are built for: as many as the registers
 * allow without spilling (ptxas -v: 40 registers for float, <= 64 for
 * double), for loads in flight. */
template <class Acc, bool kAny>
constexpr int min_blocks() {
  return kAny ? 1 : (sizeof(Acc) == 8 ? 4 : 6);
}

template <class Acc, bool kAny>
__global__ void __launch_bounds__(kThreads, min_blocks<Acc, kAny>())
    blur_rows(const Job *jobs, int64_t nj, int64_t total, const double *w) {
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ Acc wf[VP_BLUR_MAX_RADIUS + 1];
  Acc *buf = (Acc *)smem;
  int64_t ji = 0;
  for (int64_t t = blockIdx.x; t < total; t += gridDim.x) {
    ji = job_of(jobs, nj, ji, t);
    const Job &j = jobs[ji];
    const int64_t lt = t - j.first;
    const int64_t tr = vp_stencil_div(lt, j.tiles_x), tx = lt - tr * j.tiles_x;
    const int lg = j.tw_log2, tw = 1 << lg, r = j.r, span = tw + 2 * r;
    const int64_t W = j.n, x0 = tx << lg, row0 = tr * j.tn;
    const int nr = (int)(j.lines - row0 < j.tn ? j.lines - row0 : j.tn);
    const int lim = (int)(W - x0 < tw ? W - x0 : tw) + 2 * r;
    __syncthreads(); /* the previous tile is summed */
    load_weights(j, w, wf);
    gather_rows<Acc, kAny>(j, buf, row0, nr, x0, span, lim);
    __syncthreads();
    const int c = threadIdx.x & (tw - 1);
    const int64_t x = x0 + c;
    if (x >= W) continue;
    void *dst = j.dst;
    const vp_dtype dt = (vp_dtype)j.dst_t;
    for (int rr = threadIdx.x >> lg; rr < nr; rr += kThreads >> lg)
      Io<Acc, kAny>::st(window(buf + rr * span + c + r, 1, wf, r), dst, dt, (row0 + rr) * W + x);
  }
}

template <class Acc, bool kAny>
__global__ void __launch_bounds__(kThreads, min_blocks<Acc, kAny>())
    blur_cols(const Job *jobs, int64_t nj, int64_t total, const double *w) {
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ Acc wf[VP_BLUR_MAX_RADIUS + 1];
  Acc *buf = (Acc *)smem;
  const int lane = threadIdx.x & 31;
  int64_t ji = 0;
  for (int64_t t = blockIdx.x; t < total; t += gridDim.x) {
    ji = job_of(jobs, nj, ji, t);
    const Job &j = jobs[ji];
    const int64_t lt = t - j.first;
    const int64_t q = vp_stencil_div(lt, j.tiles_x), tx = lt - q * j.tiles_x;
    const int64_t p = vp_stencil_div(q, j.tiles_n), tn = q - p * j.tiles_n;
    const int r = j.r;
    const int64_t n = j.n, M = j.m, n0 = tn * j.tn, base = p * n * M, m = tx * kColW + lane;
    const int cnt = (int)(n - n0 < j.tn ? n - n0 : j.tn);
    __syncthreads(); /* the previous tile is summed */
    load_weights(j, w, wf);
    if (m < M) gather_cols<Acc, kAny>(j, buf, base, n0, m, cnt + 2 * r);
    __syncthreads();
    if (m >= M) continue;
    void *dst = j.dst;
    const vp_dtype dt = (vp_dtype)j.dst_t;
    for (int i = threadIdx.x >> 5; i < cnt; i += kThreads / 32)
      Io<Acc, kAny>::st(window(buf + (i + r) * kColW + lane, kColW, wf, r), dst, dt,
                        base + (n0 + i) * M + m);
  }
}

/* vp_blur_window_f's sums, in its order, for Q consecutive values of a
 * register window (output o's centre at c[kVolMaxR + o], taps at -+ k for
 * k <= r <= kVolMaxR): the indices are constants once unrolled, so c
 * stays in registers, and each tap's test serves the Q outputs. */
template <int Q, int N>
__device__ __forceinline__ void reg_windows(const float (&c)[N], float (&out)[Q], const float *wf,
                                            int r) {
  static_assert(N == Q + 2 * kVolMaxR, "a window of Q outputs and their halo");
#pragma unroll
  for (int o = 0; o < Q; o++) out[o] = VP_BLUR_FMUL(wf[0], c[kVolMaxR + o]);
#pragma unroll
  for (int k = 1; k <= kVolMaxR; k++)
    if (k <= r)
#pragma unroll
      for (int o = 0; o < Q; o++)
        out[o] = VP_BLUR_FADD(
            out[o], VP_BLUR_FMUL(wf[k], VP_BLUR_FADD(c[kVolMaxR + o - k], c[kVolMaxR + o + k])));
}

/* All three passes in one launch (float accumulation, radii <= kVolMaxR,
 * RZ the D radius): three separate passes move the sample through memory
 * six times, this twice. A block owns a kVolTY x kVolTX column of outputs
 * over zc planes of one outer slice and walks the input planes
 * z0 - RZ .. z0 + nz + RZ. Each plane's tile with its reflected halo goes
 * to shared memory (the next plane's loads in flight meanwhile); a thread
 * sums kVolQ voxels of a row along W from registers into xb, then its two
 * rows of a column along H into a register ring of the last 2 RZ + 1
 * planes, whose slots the unrolled walk names as constants, and from which
 * it sums its outputs along D. Every sum is vp_blur_window_f's, over the
 * values the separate passes would hold (each pass rounded to float), so
 * the bytes equal theirs and the CPU body's. */
template <bool kAny, int RZ>
__global__ void __launch_bounds__(kThreads, vol_blocks(kAny))
    blur_vol(const VolJob *jobs, int64_t nj, int64_t total, const double *w) {
  constexpr int n = 2 * RZ + 1;
  /* kVolMaxR floats (in_s) and rows (xb) of margin on each side: the
   * register windows load all 2 kVolMaxR neighbours without a test, and
   * use those within the radius only */
  __shared__ float in_s_[(kVolTY + 2 * kVolMaxR) * kVolSpan + 2 * kVolMaxR];
  __shared__ __align__(16) float xb_[(kVolTY + 4 * kVolMaxR) * kVolTX];
  float *const in_s = in_s_ + kVolMaxR, *const xb = xb_ + kVolMaxR * kVolTX;
  const int lane = threadIdx.x & 31, g = threadIdx.x >> 5;
  int64_t ji = 0;
  for (int64_t t = blockIdx.x; t < total; t += gridDim.x) {
    ji = job_of(jobs, nj, ji, t);
    const VolJob &j = jobs[ji];
    const int64_t lt = t - j.first;
    const int64_t q = vp_stencil_div(lt, j.tiles_x), tx = lt - q * j.tiles_x;
    const int64_t q2 = vp_stencil_div(q, j.tiles_y), ty = q - q2 * j.tiles_y;
    const int64_t o = vp_stencil_div(q2, j.tiles_z), tz = q2 - o * j.tiles_z;
    const int ry = j.r[1], rx = j.r[2];
    const int64_t D = j.d, H = j.h, W = j.w, HW = H * W, vol = o * D * HW;
    const int64_t x0 = tx * kVolTX, y0 = ty * kVolTY, z0 = tz * j.zc;
    const int nz = (int)(D - z0 < j.zc ? D - z0 : j.zc), np = nz + 2 * RZ;
    /* rows 1 mod 4 apart: a warp's four rows of quads hit 32 banks */
    const int span = kVolTX + 2 * rx, sp = span + ((5 - span % 4) & 3), rows = kVolTY + 2 * ry;
    const int cnt = rows * span;
    float wz[kVolMaxR + 1], wy[kVolMaxR + 1], wx[kVolMaxR + 1];
#pragma unroll
    for (int k = 0; k <= kVolMaxR; k++) {
      wz[k] = k <= RZ ? (float)w[j.woff[0] + k] : 0.f;
      wy[k] = k <= ry ? (float)w[j.woff[1] + k] : 0.f;
      wx[k] = k <= rx ? (float)w[j.woff[2] + k] : 0.f;
    }
    /* each thread's tile elements, the same in every plane */
    int64_t off[kVolLoads];
    int sidx[kVolLoads];
#pragma unroll
    for (int k = 0; k < kVolLoads; k++) {
      const int e = threadIdx.x + k * kThreads, row = e / span, col = e - row * span;
      off[k] = e < cnt ? vp_blur_reflect(y0 - ry + row, H) * W + vp_blur_reflect(x0 - rx + col, W)
                       : 0;
      sidx[k] = e < cnt ? row * sp + col : -1;
    }
    /* held in registers: the output's stores could alias the job table */
    const vp_dtype st = (vp_dtype)j.src_t, dt = (vp_dtype)j.dst_t;
    const void *const src = j.src;
    void *const dst = j.dst;
    float v[kVolLoads];
    const int64_t base0 = vol + vp_blur_reflect(z0 - RZ, D) * HW;
#pragma unroll
    for (int k = 0; k < kVolLoads; k++)
      if (sidx[k] >= 0) v[k] = Io<float, kAny>::ld(src, st, base0 + off[k]);
    float ring[n][kVolRows];
    const int64_t y = y0 + kVolRows * g, x = x0 + lane;
    const int64_t out0 = vol + y * W + x;
    /* no barrier between tiles: a thread's first store to in_s follows the
     * previous tile's last read of it (the barrier after the W sums), and
     * its first W sum follows every thread's last H sum (the barrier
     * after the stores) */
    for (int p0 = 0; p0 < np; p0 += n) {
#pragma unroll
      for (int s = 0; s < n; s++) {
        const int p = p0 + s;
        if (p >= np) break;
#pragma unroll
        for (int k = 0; k < kVolLoads; k++)
          if (sidx[k] >= 0) in_s[sidx[k]] = v[k];
        __syncthreads();
        if (p + 1 < np) {
          const int64_t base = vol + vp_blur_reflect(z0 - RZ + p + 1, D) * HW;
#pragma unroll
          for (int k = 0; k < kVolLoads; k++)
            if (sidx[k] >= 0) v[k] = Io<float, kAny>::ld(src, st, base + off[k]);
        }
        /* W: row threadIdx / 8, voxels 4 (threadIdx % 8) .. + 3 */
        if (threadIdx.x < rows * (kVolTX / kVolQ)) {
          const int row = threadIdx.x >> 3, c0 = (threadIdx.x & 7) * kVolQ;
          const float *line = in_s + row * sp + c0 + rx;
          float c[kVolQ + 2 * kVolMaxR], r4[kVolQ];
#pragma unroll
          for (int i = -kVolMaxR; i < kVolQ + kVolMaxR; i++) c[i + kVolMaxR] = line[i];
          reg_windows(c, r4, wx, rx);
          *(float4 *)&xb[row * kVolTX + c0] = make_float4(r4[0], r4[1], r4[2], r4[3]);
        }
        __syncthreads();
        /* H: rows 2g, 2g + 1 of column lane, into the ring */
        {
          const float *col = xb + (kVolRows * g + ry) * kVolTX + lane;
          float c[kVolRows + 2 * kVolMaxR];
#pragma unroll
          for (int i = -kVolMaxR; i < kVolRows + kVolMaxR; i++) c[i + kVolMaxR] = col[i * kVolTX];
          reg_windows(c, ring[s], wy, ry);
        }
        /* D: plane p - RZ is the centre, in slot (s - RZ) mod n */
        if (p >= 2 * RZ && x < W) {
          const int64_t e = out0 + (z0 + p - 2 * RZ) * HW;
#pragma unroll
          for (int r = 0; r < kVolRows; r++) {
            if (y + r >= H) break;
            /* the D window of row r, centre at c[kVolMaxR], from the ring's slots */
            float c[1 + 2 * kVolMaxR], acc[1];
#pragma unroll
            for (int i = -kVolMaxR; i <= kVolMaxR; i++)
              c[i + kVolMaxR] = i >= -RZ && i <= RZ ? ring[(s - RZ + i + 2 * n) % n][r] : 0.f;
            reg_windows(c, acc, wz, RZ);
            Io<float, kAny>::st(acc[0], dst, dt, e + r * W);
          }
        }
      }
    }
  }
}

/* Samples that p left alone: their bytes, kCopyTile elements a tile. */
__global__ void __launch_bounds__(kThreads)
    blur_copy(const Job *jobs, int64_t nj, int64_t total, const double *) {
  int64_t ji = 0;
  for (int64_t t = blockIdx.x; t < total; t += gridDim.x) {
    ji = job_of(jobs, nj, ji, t);
    const Job &j = jobs[ji];
    switch (j.es) {
      case 1: copy_tile<uint8_t>(j, t - j.first); break;
      case 2: copy_tile<uint16_t>(j, t - j.first); break;
      case 4: copy_tile<uint32_t>(j, t - j.first); break;
      default: copy_tile<uint64_t>(j, t - j.first); break;
    }
  }
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* The W pass of one sample: TW fitted to W, as many rows per tile as keep
 * 8 outputs a thread within the plain shared-memory size. */
void plan_rows(Job *j, const vp_blur_desc *d, size_t as, size_t *smem) {
  const int64_t W = d->shape[3];
  int lg = 5;
  while (lg < 8 && ((int64_t)1 << lg) < W) lg++;
  const int tw = 1 << lg, step = kThreads / tw;
  const size_t row_bytes = (size_t)(tw + 2 * j->r) * as;
  int q = (int)(kSmemPlain / ((size_t)step * row_bytes));
  q = q < 1 ? 1 : (q > kRowOut ? kRowOut : q);
  j->tw_log2 = lg;
  j->tn = step * q;
  j->n = W;
  j->lines = d->numel / W;
  j->tiles_x = ceil_div(W, tw);
  j->tiles_n = ceil_div(j->lines, j->tn);
  const size_t b = (size_t)j->tn * row_bytes;
  if (b > *smem) *smem = b;
}

/* The H (axis 1) or D (axis 0) pass of one sample. */
vp_status plan_cols(Job *j, const vp_blur_desc *d, int axis, size_t as, size_t limit,
                    size_t *smem) {
  j->n = d->shape[axis + 1];
  j->m = axis == 1 ? d->shape[3] : d->shape[2] * d->shape[3];
  j->lines = axis == 1 ? d->shape[0] * d->shape[1] : d->shape[0];
  int tn = kColTN;
  /* only float64 with a radius beyond ~56 opts in; no sm_80+ GPU needs
   * the smaller tiles */
  while (tn > 8 && (size_t)kColW * (tn + 2 * j->r) * as > limit) tn /= 2;
  const size_t b = (size_t)kColW * (tn + 2 * j->r) * as;
  if (b > limit)
    return vp_fail(VP_ERR_UNSUPPORTED,
                   "gaussian_blur: radius %d needs %zu bytes of shared memory per block, the "
                   "GPU offers %zu",
                   j->r, b, limit);
  j->tn = tn;
  j->tiles_x = ceil_div(j->m, kColW);
  j->tiles_n = ceil_div(j->n, tn);
  if (b > *smem) *smem = b;
  return VP_OK;
}

/* Shared memory a block may opt into, less the weights' static array. */
vp_status smem_limit(size_t *out) {
  int dev = 0, v = 0;
  VP_CUDA_TRY(cudaGetDevice(&dev));
  VP_CUDA_TRY(cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  size_t stat = (VP_BLUR_MAX_RADIUS + 1) * sizeof(double);
  *out = (size_t)v > stat ? (size_t)v - stat : 0;
  return VP_OK;
}

/* Launches kernel over the nj jobs at dev (first tiles already set). */
template <class K, class J>
vp_status launch(K kernel, const J *dev, int64_t nj, int64_t total, const double *w, size_t smem,
                 cudaStream_t s, const char *what) {
  if (nj == 0 || total == 0) return VP_OK;
  if (smem > kSmemPlain) {
    cudaError_t e =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e != cudaSuccess) return vp_cuda_status(e, what);
  }
  const unsigned blocks = (unsigned)(total < kMaxGrid ? total : kMaxGrid);
  kernel<<<blocks, kThreads, smem, s>>>(dev, nj, total, w);
  cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? VP_OK : vp_cuda_status(e, what);
}

/* Per launch: its jobs, their shared memory, whether they all read and
 * write the accumulation type (the lean kernels). */
struct Launch {
  Job *jobs;
  int64_t n, total;
  size_t smem;
  bool any;
};

void add_job(Launch *l, const Job &j, int64_t tiles) {
  l->jobs[l->n] = j;
  l->jobs[l->n].first = l->total;
  l->n++;
  l->total += tiles;
}

/* The single-pass launches' jobs, one launch per D radius. */
struct VolLaunch {
  VolJob *jobs;
  int64_t n, total;
  bool any;
};

/* Whether sample d runs in blur_vol: float accumulation, every radius
 * within its tiles' halo. */
bool vol_ok(const vp_blur_desc &d, size_t as) {
  return d.apply && as == sizeof(float) && d.radius[0] <= kVolMaxR && d.radius[1] <= kVolMaxR &&
         d.radius[2] <= kVolMaxR;
}

void plan_vol(const vp_blur_desc &d, vp_dtype t, VolLaunch *V) {
  VolJob j;
  memset(&j, 0, sizeof j);
  j.src = d.in;
  j.dst = d.out;
  j.src_t = j.dst_t = t;
  j.outer = d.shape[0];
  j.d = d.shape[1];
  j.h = d.shape[2];
  j.w = d.shape[3];
  j.tiles_x = ceil_div(j.w, kVolTX);
  j.tiles_y = ceil_div(j.h, kVolTY);
  for (int a = 0; a < 3; a++) {
    j.r[a] = d.radius[a];
    j.woff[a] = d.woff[a];
  }
  VolLaunch *v = &V[j.r[0]];
  v->jobs[v->n++] = j;
  if (t != VP_F32) v->any = true;
}

/* The planes a tile of launch v (D radius rz) walks, and so its tiles: a
 * block's time grows with zc + 2 rz planes, and a launch takes as many
 * rounds as its blocks fill the GPU's resident slots (`slots`), so zc
 * minimises rounds x (zc + 2 rz) (ties: the larger zc). A fixed 32 gave a
 * 4 x 128^3 sample 512 blocks for 396 slots: a second round a third full.
 * Between two walk lengths at which some job's count of walks changes the
 * blocks stay the same and the cost grows with zc, so only the shortest
 * length of each count, ceil(d / k), can be best: those are the
 * candidates (about 2 sqrt(d) a depth, not every zc up to 256). */
int64_t vol_cost(const VolLaunch *v, int zc, int rz, int64_t slots) {
  int64_t blocks = 0;
  for (int64_t i = 0; i < v->n; i++) {
    const VolJob &j = v->jobs[i];
    blocks += j.outer * ceil_div(j.d, zc) * j.tiles_y * j.tiles_x;
  }
  return ceil_div(blocks, slots) * (zc + 2 * rz);
}

void finish_vol(VolLaunch *v, int rz, int64_t slots) {
  int64_t best_cost = INT64_MAX;
  int best = 1;
  for (int64_t i = 0; i < v->n; i++) {
    const int64_t d = v->jobs[i].d;
    bool seen = false;
    for (int64_t e = 0; e < i && !seen; e++) seen = v->jobs[e].d == d;
    if (seen) continue;
    /* k walks a depth; the next k is the first whose walks are shorter */
    for (int64_t k = d > 256 ? d / 256 : 1;;) {
      const int64_t zc = ceil_div(d, k);
      if (zc <= 256) {
        const int64_t cost = vol_cost(v, (int)zc, rz, slots);
        if (cost < best_cost || (cost == best_cost && zc > best)) {
          best_cost = cost;
          best = (int)zc;
        }
      }
      if (zc == 1) break;
      k = ceil_div(d, zc - 1);
    }
  }
  v->total = 0;
  for (int64_t i = 0; i < v->n; i++) {
    VolJob &j = v->jobs[i];
    j.zc = best;
    j.tiles_z = ceil_div(j.d, best);
    j.first = v->total;
    v->total += j.outer * j.tiles_z * j.tiles_y * j.tiles_x;
  }
}

/* The jobs of the batch (host) for the W, H, D, copy and single-pass
 * launches, the intermediates laid out in scratch as vp_cuda_gaussian_blur
 * sized them. */
vp_status plan(const vp_blur_desc *d, int64_t n, vp_dtype t, size_t as, char *scratch, Launch *L,
               VolLaunch *V) {
  const vp_dtype at = as == 8 ? VP_F64 : VP_F32;
  size_t limit = kSmemPlain;
  for (int64_t i = 0; i < n; i++) {
    if (d[i].numel == 0) continue;
    Job j;
    memset(&j, 0, sizeof j);
    if (!d[i].apply) {
      if (d[i].in == d[i].out) continue; /* a chain passed the sample through */
      j.src = d[i].in;
      j.dst = d[i].out;
      j.n = d[i].numel;
      j.es = (int32_t)vp_stencil_elem_size(t);
      add_job(&L[3], j, ceil_div(j.n, kCopyTile));
      continue;
    }
    if (vol_ok(d[i], as)) {
      plan_vol(d[i], t, V);
      continue;
    }
    int axes[3], k = 0;
    for (int a = 2; a >= 0; a--)
      if (d[i].radius[a] > 0) axes[k++] = a;
    if (k == 0) axes[k++] = 2; /* a conversion, through float as on the CPU */
    const void *src = d[i].in;
    vp_dtype src_t = t;
    for (int p = 0; p < k; p++) {
      const int a = axes[p];
      memset(&j, 0, sizeof j);
      j.src = src;
      j.src_t = src_t;
      j.dst = p == k - 1 ? d[i].out : scratch + (size_t)(p & 1) * (size_t)d[i].numel * as;
      j.dst_t = p == k - 1 ? t : at;
      j.r = d[i].radius[a];
      j.woff = d[i].woff[a];
      if (a == 2) {
        plan_rows(&j, &d[i], as, &L[0].smem);
        add_job(&L[0], j, j.tiles_x * j.tiles_n);
      } else {
        if ((size_t)kColW * (kColTN + 2 * j.r) * as > limit && limit == kSmemPlain)
          VP_TRY(smem_limit(&limit));
        VP_TRY(plan_cols(&j, &d[i], a, as, limit, &L[2 - a].smem));
        add_job(&L[2 - a], j, j.lines * j.tiles_n * j.tiles_x);
      }
      if (j.src_t != at || j.dst_t != at) L[2 - a].any = true;
      src = j.dst;
      src_t = (vp_dtype)j.dst_t;
    }
    scratch += (size_t)(k - 1) * (size_t)d[i].numel * as;
  }
  return VP_OK;
}

/* The launches, in pass order on one stream; dev_jobs mirrors L's tables
 * (n jobs of room each). */
template <bool kAny, int RZ>
vp_status launch_vol(const VolLaunch &v, const VolJob *dj, const double *dw, cudaStream_t s) {
  return launch(blur_vol<kAny, RZ>, dj, v.n, v.total, dw, 0, s, "gaussian_blur: single-pass launch");
}

template <int RZ>
vp_status launch_vol(const VolLaunch *V, const VolJob *dj, int64_t n, const double *dw,
                     cudaStream_t s) {
  const VolLaunch &v = V[RZ];
  const vp_status st = v.any ? launch_vol<true, RZ>(v, dj + RZ * n, dw, s)
                             : launch_vol<false, RZ>(v, dj + RZ * n, dw, s);
  if (st != VP_OK) return st;
  if constexpr (RZ > 0) return launch_vol<RZ - 1>(V, dj, n, dw, s);
  return VP_OK;
}

template <class Acc>
vp_status launch_all(const Launch *L, const Job *dev_jobs, const VolLaunch *V,
                     const VolJob *dev_vol, int64_t n, const double *dev_w, cudaStream_t s) {
  VP_TRY(launch_vol<kVolMaxR>(V, dev_vol, n, dev_w, s));
  const char *what[3] = {"gaussian_blur: W pass launch", "gaussian_blur: H pass launch",
                         "gaussian_blur: D pass launch"};
  for (int k = 0; k < 3; k++) {
    const Launch &l = L[k];
    const Job *dj = dev_jobs + k * n;
    if (k == 0)
      VP_TRY(l.any ? launch(blur_rows<Acc, true>, dj, l.n, l.total, dev_w, l.smem, s, what[k])
                   : launch(blur_rows<Acc, false>, dj, l.n, l.total, dev_w, l.smem, s, what[k]));
    else
      VP_TRY(l.any ? launch(blur_cols<Acc, true>, dj, l.n, l.total, dev_w, l.smem, s, what[k])
                   : launch(blur_cols<Acc, false>, dj, l.n, l.total, dev_w, l.smem, s, what[k]));
  }
  return launch(blur_copy, dev_jobs + 3 * n, L[3].n, L[3].total, dev_w, 0, s,
                "gaussian_blur: copy launch");
}

}  // namespace

extern "C" vp_status vp_cuda_scratch_alloc(size_t bytes, vp_stream s, void **out) {
  *out = NULL;
  return vp_cuda_malloc_async(out, bytes, s, "gaussian_blur: scratch");
}

extern "C" void vp_cuda_scratch_free(void *p, vp_stream s) {
  if (p) (void)cudaFreeAsync(p, (cudaStream_t)s);
}

extern "C" vp_status vp_cuda_gaussian_blur(const vp_blur_desc *descs, int64_t n,
                                           const double *weights, int64_t n_weights, vp_dtype dtype,
                                           vp_stream stream) {
  if (n < 1) return VP_OK;
  cudaStream_t s = (cudaStream_t)stream;
  const size_t as = dtype == VP_F64 ? sizeof(double) : sizeof(float);
  /* intermediates: one per pass after the first */
  uint64_t inter = 0;
  for (int64_t i = 0; i < n; i++) {
    if (!descs[i].apply || vol_ok(descs[i], as)) continue;
    int k = (descs[i].radius[0] > 0) + (descs[i].radius[1] > 0) + (descs[i].radius[2] > 0);
    if (k > 1) inter += (uint64_t)(k - 1) * (uint64_t)descs[i].numel;
  }
  /* one device block: [jobs of the W, H, D and copy launches, n each]
   * [single-pass jobs, n][weights][scratch] */
  if ((uint64_t)n > SIZE_MAX / (8 * (sizeof(Job) + (kVolMaxR + 1) * sizeof(VolJob))) ||
      (uint64_t)n_weights > SIZE_MAX / 16)
    return vp_fail(VP_ERR_OVERFLOW, "gaussian_blur: %lld samples", (long long)n);
  const size_t vol_at = (size_t)n * 4 * sizeof(Job);
  const size_t jobs_bytes = vol_at + (size_t)n * (kVolMaxR + 1) * sizeof(VolJob);
  const size_t table = (jobs_bytes + (size_t)n_weights * sizeof(double) + 255) & ~(size_t)255;
  if (inter > (SIZE_MAX - table) / as)
    return vp_fail(VP_ERR_OVERFLOW, "gaussian_blur: %llu voxels of intermediates",
                   (unsigned long long)inter);
  unsigned char *host = (unsigned char *)calloc(1, table);
  if (!host) return vp_fail(VP_ERR_NOMEM, "gaussian_blur: out of host memory");
  memcpy(host + jobs_bytes, weights, (size_t)n_weights * sizeof(double));
  void *dev = NULL;
  vp_status st = vp_cuda_scratch_alloc(table + (size_t)inter * as, stream, &dev);
  if (st == VP_OK) {
    Job *hj = (Job *)host;
    Launch L[4];
    for (int k = 0; k < 4; k++) L[k] = {hj + k * n, 0, 0, 0, false};
    VolLaunch V[kVolMaxR + 1];
    for (int k = 0; k <= kVolMaxR; k++) V[k] = {(VolJob *)(host + vol_at) + k * n, 0, 0, false};
    const Job *dj = (const Job *)dev;
    const VolJob *dv = (const VolJob *)((unsigned char *)dev + vol_at);
    const double *dw = (const double *)((unsigned char *)dev + jobs_bytes);
    st = plan(descs, n, dtype, as, (char *)dev + table, L, V);
    int sms = 0;
    if (st == VP_OK) {
      int d = 0;
      cudaError_t e = cudaGetDevice(&d);
      if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, d);
      if (e != cudaSuccess) st = vp_cuda_status(e, "gaussian_blur: SM count");
    }
    if (st == VP_OK) {
      for (int k = 0; k <= kVolMaxR; k++)
        finish_vol(&V[k], k, (int64_t)(sms > 0 ? sms : 1) * vol_blocks(V[k].any));
      st = vp_cuda_upload(dev, host, table, s, "gaussian_blur: job table");
    }
    if (st == VP_OK)
      st = as == 8 ? launch_all<double>(L, dj, V, dv, n, dw, s)
                   : launch_all<float>(L, dj, V, dv, n, dw, s);
  }
  free(host);
  vp_cuda_scratch_free(dev, stream);
  return st;
}

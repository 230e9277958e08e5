/* The resampling engine on the GPU. The arithmetic is
 * src/ops/resample_kernel.h's, shared with the CPU body (coordinates carry
 * the same bits), kernels are instantiated per input dtype and interpolation
 * (label mode for the integer dtypes it accepts only);
 * the border and the output dtype are uniform branches (one instance per
 * border tripled the library, which every test binary links).
 *
 * Three kernels. The common case (no displacement, extents that fit 32-bit
 * index arithmetic) runs fast_kernel (or diag_kernel, below, for float32
 * linear samples whose map is axis-aligned): descriptors by value as its
 * parameter, a 2-D tile of (h, w) per block, blockIdx.z the sample and
 * blockIdx.y the depth, so there is no table to upload, no search and no
 * index division per voxel, and neighbouring threads gather neighbouring
 * input voxels. Everything else runs the batched grid-stride kernel (one
 * thread per output voxel over all channels, the displacement computed
 * once). */
#include <cuda_runtime_api.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "core/cuda_rt.h"
#include "core/status.h"
#include "core/threadpool.h"
}
#include "cuda/batch_launch.h"
#include "cuda/kernels.h"
#include "ops/resample_kernel.h"

namespace {

template <int IN, int INTERP>
struct ResampleBody {
  vp_dtype out;
  int border;
  __device__ void operator()(const vp_resample_desc &s, int64_t e) const {
    const vp_dtype in = (vp_dtype)IN;
    const int64_t W = s.out_shape[2], H = s.out_shape[1];
    const int64_t r = vp_bl_div(e, W);
    const int64_t w = e - r * W;
    const int64_t d = vp_bl_div(r, H);
    const int64_t h = r - d * H;
    double x[3];
    vp_rs_point(&s, d, h, w, x);
    const int64_t in_plane = s.in_shape[0] * s.in_shape[1] * s.in_shape[2];
    const int64_t out_plane = s.out_shape[0] * H * W;
    const size_t es = sizeof(char) * (IN == VP_U8 || IN == VP_I8                     ? 1
                                      : IN == VP_U16 || IN == VP_I16 || IN == VP_F16 ? 2
                                      : IN == VP_I64 || IN == VP_F64                 ? 8
                                                                                     : 4);
    if (INTERP == VP_INTERP_CUBIC_COEF) {
      for (int64_t c = 0; c < s.channels; c++)
        vp_cvt_store(
            s.out, out, c * out_plane + e,
            (double)vp_rs_cubic_value((const float *)s.in + c * in_plane, s.in_shape, x, border));
    } else if (INTERP == VP_INTERP_NEAREST) {
      const int64_t off = vp_rs_nearest_offset(s.in_shape, x, border);
      for (int64_t c = 0; c < s.channels; c++) {
        const void *src = s.in ? (const char *)s.in + (size_t)(c * in_plane) * es : nullptr;
        vp_cvt_store(s.out, out, c * out_plane + e, vp_rs_nearest_value(src, in, off, s.fill));
      }
    } else if (INTERP == VP_INTERP_LINEAR && (s.aa[0] != 0 || s.aa[1] != 0 || s.aa[2] != 0)) {
      for (int64_t c = 0; c < s.channels; c++) {
        const void *src = (const char *)s.in + (size_t)(c * in_plane) * es;
        vp_cvt_store(s.out, out, c * out_plane + e,
                     vp_rs_aa_value(src, in, s.in_shape, x, s.aa, s.aa_area));
      }
    } else {
      vp_rs_lin L;
      vp_rs_linear_setup(s.in_shape, x, border, &L);
      for (int64_t c = 0; c < s.channels; c++) {
        const void *src = s.in ? (const char *)s.in + (size_t)(c * in_plane) * es : nullptr;
        vp_cvt_store(s.out, out, c * out_plane + e,
                     INTERP == VP_INTERP_LABEL ? vp_rs_label_value(src, in, &L, s.fill)
                                               : vp_rs_linear_value(src, in, &L, s.fill));
      }
    }
  }
};

/* ---------------------------------------------------------------- */
/* The common case: no displacement, 32-bit extents                  */

/* Samples per launch of the fast kernel: their descriptors travel as the
 * kernel's parameter (16 x 176 bytes, under the 4 KB every toolkit takes),
 * so a call needs no device table, no allocation and no host-to-device
 * copy. Larger batches take one launch per 16. */
constexpr int kFastSamples = 16;
/* A block is 32 output voxels along W (one warp: neighbouring threads read
 * neighbouring input voxels and store one coalesced row) by 8 along H. */
constexpr int kTileW = 32, kTileH = 8;
/* Coordinates below this magnitude take 32-bit index arithmetic (the
 * reflect period 2n, i + 1 and the offsets then fit); larger ones, which
 * only absurd matrices produce, go through the header's 64-bit functions. */
constexpr double kFastCoord = 1073741824.0; /* 2^30 */
/* Output depths a thread of the fast kernel takes (grid.y = D / this):
 * measured on the H100 (bench_spatial's warp and resize), 1: 0.262 and
 * 0.30 ms (with 80 registers), 4: 0.164 and 0.245 ms, 8: 0.155 and 0.229 ms. */
constexpr int kDepthsPerThread = 8;

struct FastSample {
  const void *in;
  void *out;
  double M[12];
  double fill;
  int64_t channels;
  int64_t in_plane, out_plane; /* elements per channel */
  int32_t in_shape[3], out_shape[3];
  int32_t tiles_w, tiles; /* (h, w) tiles of the output */
};

struct FastTable {
  FastSample s[kFastSamples];
};

/* A float value stored to an output of any dtype, out of diag_kernel's
 * loop (ncu: 63.3 -> 62.4 M instructions, 149.8 -> 147.6 us). fast_kernel
 * keeps its inlined store: through this call it took 112.7 -> 114.8 M
 * instructions and 147.8 -> 148.9 us. */
__device__ __noinline__ void store_cvt(void *o, vp_dtype t, int64_t i, float v) {
  vp_cvt_store(o, t, i, (double)v);
}

/* vp_rs_map for 32-bit indices of an axis of n < 2^30 voxels. */
__device__ __forceinline__ int map32(int i, int n, int border) {
  if ((unsigned)i < (unsigned)n) return i;
  if (n <= 0) return -1;
  if (border == VP_BORDER_EDGE) return i < 0 ? 0 : n - 1;
  if (border == VP_BORDER_REFLECT) {
    int p = 2 * n, m = i % p;
    if (m < 0) m += p;
    return m < n ? m : p - 1 - m;
  }
  return -1;
}

/* Four blocks an SM (64 registers, a few bytes spilled): measured on the
 * H100 warp of bench_spatial, 0.192 ms at 80 registers (3 blocks, 37.5 %
 * occupancy, 8.4 cycles between a warp's instructions) against 0.163 ms. */
template <int IN, int INTERP>
__global__ void __launch_bounds__(kTileW *kTileH, 4)
    fast_kernel(const __grid_constant__ FastTable tab, vp_dtype out, int border) {
  const FastSample &s = tab.s[blockIdx.z];
  const int bx = (int)blockIdx.x;
  if (bx >= s.tiles) return;
  const int th = bx / s.tiles_w, tw = bx - th * s.tiles_w;
  const int w = tw * kTileW + (int)threadIdx.x, h = th * kTileH + (int)threadIdx.y;
  const int D = s.out_shape[0], H = s.out_shape[1], W = s.out_shape[2];
  if (w >= W || h >= H) return;
  const vp_dtype in = (vp_dtype)IN;
  const size_t es = sizeof(char) * (IN == VP_U8 || IN == VP_I8                     ? 1
                                    : IN == VP_U16 || IN == VP_I16 || IN == VP_F16 ? 2
                                    : IN == VP_I64 || IN == VP_F64                 ? 8
                                                                                   : 4);
  const int n0 = s.in_shape[0], n1 = s.in_shape[1], n2 = s.in_shape[2];
  const int64_t shp[3] = {n0, n1, n2};
  const int plane = n1 * n2;
  /* the map's h and w products, the same for every depth of the thread:
   * x[a] = ((M[a][0] d + M[a][1] h) + M[a][3]) + M[a][2] w, the header's
   * vp_rs_row_base and vp_rs_coord term for term (so the CPU's bits) */
  double mh[3], mw[3];
  for (int a = 0; a < 3; a++) {
    mh[a] = VP_RS_DMUL(s.M[a * 4 + 1], (double)h);
    mw[a] = VP_RS_DMUL(s.M[a * 4 + 2], (double)w);
  }
  for (int d = (int)blockIdx.y; d < D; d += (int)gridDim.y) {
    double x[3];
    for (int a = 0; a < 3; a++)
      x[a] = VP_RS_DADD(VP_RS_DADD(VP_RS_DADD(VP_RS_DMUL(s.M[a * 4], (double)d), mh[a]),
                                   s.M[a * 4 + 3]),
                        mw[a]);
    const int64_t at = ((int64_t)d * H + h) * W + w;
    if (INTERP == VP_INTERP_CUBIC_COEF) {
      for (int64_t c = 0; c < s.channels; c++)
        vp_cvt_store(
            s.out, out, c * s.out_plane + at,
            (double)vp_rs_cubic_value((const float *)s.in + c * s.in_plane, shp, x, border));
    } else if (INTERP == VP_INTERP_NEAREST) {
      double xc[3];
      bool fast = true;
      for (int a = 0; a < 3; a++) {
        xc[a] = floor(vp_rs_clamp_coord(VP_RS_DADD(x[a], 0.5)));
        fast &= fabs(xc[a]) < kFastCoord;
      }
      int64_t off;
      if (fast) {
        const int j0 = map32((int)xc[0], n0, border), j1 = map32((int)xc[1], n1, border),
                  j2 = map32((int)xc[2], n2, border);
        off = (j0 < 0 || j1 < 0 || j2 < 0) ? -1 : (int64_t)(j0 * plane + j1 * n2 + j2);
      } else {
        off = vp_rs_nearest_offset(shp, x, border);
      }
      for (int64_t c = 0; c < s.channels; c++) {
        const void *src = s.in ? (const char *)s.in + (size_t)(c * s.in_plane) * es : nullptr;
        vp_cvt_store(s.out, out, c * s.out_plane + at, vp_rs_nearest_value(src, in, off, s.fill));
      }
    } else {
      vp_rs_lin L;
      double xc[3], fl[3];
      bool fast = true;
      for (int a = 0; a < 3; a++) {
        xc[a] = vp_rs_clamp_coord(x[a]);
        fl[a] = floor(xc[a]);
        fast &= fabs(fl[a]) < kFastCoord;
      }
      if (IN == VP_F32 && INTERP == VP_INTERP_LINEAR && fast) {
        /* interior float32 voxels (most of any warp): the CPU row path's
         * shortcut, every corner read from the first one's offset, no
         * border mapping, no per-corner check; the same float arithmetic
         * (vp_rs_trilinear_f32), so the same bits as the general path */
        const int i0 = (int)fl[0], i1 = (int)fl[1], i2 = (int)fl[2];
        const double t0 = VP_RS_DADD(xc[0], -fl[0]), t1 = VP_RS_DADD(xc[1], -fl[1]),
                     t2 = VP_RS_DADD(xc[2], -fl[2]);
        if (i0 >= 0 && i0 + (t0 != 0.0) < n0 && i1 >= 0 && i1 + (t1 != 0.0) < n1 && i2 >= 0 &&
            i2 + (t2 != 0.0) < n2) {
          const float td = (float)t0, th = (float)t1, tw = (float)t2;
          const int b = i0 * plane + i1 * n2 + i2; /* fast_fits: < 2^31 */
          const float *src = (const float *)s.in;
          for (int64_t c = 0; c < s.channels; c++, src += s.in_plane) {
            const float v = vp_rs_trilinear_f32_i32(src, b, td != 0.0f ? plane : 0,
                                                    th != 0.0f ? n2 : 0, tw != 0.0f, td, th, tw);
            if (out == VP_F32)
              ((float *)s.out)[c * s.out_plane + at] = v;
            else
              vp_cvt_store(s.out, out, c * s.out_plane + at, (double)v);
          }
          continue;
        }
      }
      if (fast) {
        /* vp_rs_linear_setup with 32-bit indices and per-axis partial
         * offsets: the same neighbours, weights and fill rule */
        const int n[3] = {n0, n1, n2}, stride[3] = {plane, n2, 1};
        int p[3][2];
        for (int a = 0; a < 3; a++) {
          L.t[a] = VP_RS_DADD(xc[a], -fl[a]);
          const int i = (int)fl[a];
          const int j0 = map32(i, n[a], border);
          const int j1 = L.t[a] == 0.0 ? j0 : map32(i + 1, n[a], border);
          p[a][0] = j0 < 0 ? -1 : j0 * stride[a];
          p[a][1] = j1 < 0 ? -1 : j1 * stride[a];
        }
        for (int c = 0; c < 8; c++) {
          const int a = p[0][c >> 2], b = p[1][(c >> 1) & 1], q = p[2][c & 1];
          L.off[c] = (a < 0 || b < 0 || q < 0) ? -1 : (int64_t)(a + b + q);
        }
      } else {
        vp_rs_linear_setup(shp, x, border, &L);
      }
      for (int64_t c = 0; c < s.channels; c++) {
        const void *src = s.in ? (const char *)s.in + (size_t)(c * s.in_plane) * es : nullptr;
        vp_cvt_store(s.out, out, c * s.out_plane + at,
                     INTERP == VP_INTERP_LABEL ? vp_rs_label_value(src, in, &L, s.fill)
                                               : vp_rs_linear_value(src, in, &L, s.fill));
      }
    }
  }
}

/* Axis-aligned float32 linear maps (resize, zoom, flips, shifts): axis 0
 * of the map depends on d alone and axes 1 and 2 on (h, w) alone. A block
 * takes kDiagDepths consecutive output depths of a 32 x 8 (h, w) tile:
 * their axis-0 corners and weights are found once, by kDiagDepths threads,
 * into shared memory, each thread finds its (h, w) corners once, and an
 * output voxel costs a table read, the eight corner loads and the seven
 * lerps. Consecutive depths of a thread share input planes, which the L1
 * then holds. The values are the general path's: the zero terms of a
 * diagonal map add exact zeros to each coordinate's sums, and the interior
 * lerps are vp_rs_trilinear_f32_i32; outputs whose corners are not all
 * inside take the header's general functions. */
constexpr int kDiagDepths = 16;

/* Output depths of diag_kernel whose loads a thread issues together, and
 * its blocks an SM. Measured (ncu, bench_spatial's resize, two repeats):
 * one depth at a time 189 us (DRAM 61 % busy); 2 depths, 4 blocks
 * 153 / 152 us; 4 depths, 3 blocks (80 registers) 150.4 / 150.7 us. */
constexpr int kDiagGroup = 4;
constexpr int kDiagBlocks = 3;

/* An output of diag_kernel whose corners are not all inside: the general
 * functions of the header (vp_rs_point's coordinates, without a field).
 * Not inlined: the four inlined copies spilled the kernel's registers. */
__device__ __noinline__ float diag_general(const FastSample &s, const int64_t (&shp)[3],
                                           int border, int64_t c, int d, int h, int w) {
  double x[3];
  vp_rs_apply_matrix(s.M, (double)d, (double)h, (double)w, x);
  vp_rs_lin L;
  vp_rs_linear_setup(shp, x, border, &L);
  return (float)vp_rs_linear_value((const float *)s.in + c * s.in_plane, VP_F32, &L, s.fill);
}

/* Axis a of an axis-aligned map at (p0, p1, p2) (the other axes' terms
 * are exact zeros): its first linear corner i and weight t, as
 * vp_rs_linear_setup finds them, and whether the corners it reads (one
 * when t is 0) lie inside [0, n). */
__device__ __forceinline__ bool diag_axis(const double *M, int a, double p0, double p1, double p2,
                                          int n, int &i, double &t) {
  const double x = vp_rs_clamp_coord(vp_rs_coord(M, a, vp_rs_row_base(M, a, p0, p1), p2));
  const double f = floor(x);
  t = VP_RS_DADD(x, -f);
  if (!(fabs(f) < kFastCoord)) return false;
  i = (int)f;
  return i >= 0 && i + (t != 0.0) < n;
}

/* An interior output of diag_kernel from its first corner q: OW, the W
 * neighbour's distance (1, or 0 where the W weight is 0), is a constant so
 * that the neighbour's load takes the first's address plus an offset. */
template <int OW>
__device__ __forceinline__ float diag_lerp(const float *q, int4 e, int oh, float th, float tw) {
  return vp_rs_trilinear_f32_i32(q, 0, e.y, oh, OW, __int_as_float(e.z), th, tw);
}

__global__ void __launch_bounds__(kTileW *kTileH, kDiagBlocks)
    diag_kernel(const __grid_constant__ FastTable tab, vp_dtype out, int border) {
  /* per depth: the first corner's plane offset (-1: not interior), the
   * second corner's distance along D (0 when its weight is 0), the weight */
  __shared__ int4 zt[kDiagDepths]; /* .w unused: one 16-byte load */
  const FastSample &s = tab.s[blockIdx.z];
  const int bx = (int)blockIdx.x;
  if (bx >= s.tiles) return; /* the whole block: no barrier is skipped */
  const int th = bx / s.tiles_w, tw = bx - th * s.tiles_w;
  const int w = tw * kTileW + (int)threadIdx.x, h = th * kTileH + (int)threadIdx.y;
  const int tid = (int)threadIdx.y * kTileW + (int)threadIdx.x;
  const int D = s.out_shape[0], H = s.out_shape[1], W = s.out_shape[2];
  const bool active = w < W && h < H;
  const int64_t HW = (int64_t)H * W;
  const int n0 = s.in_shape[0], n1 = s.in_shape[1], n2 = s.in_shape[2];
  const int64_t shp[3] = {n0, n1, n2};
  const int plane = n1 * n2;
  int i1 = 0, i2 = 0;
  double t1 = 0.0, t2 = 0.0;
  const bool hw_in = diag_axis(s.M, 1, 0.0, h, w, n1, i1, t1) &&
                     diag_axis(s.M, 2, 0.0, h, w, n2, i2, t2);
  const int hw_off = hw_in ? i1 * n2 + i2 : 0; /* < plane < 2^31 */
  const float wt_h = (float)t1, wt_w = (float)t2;
  const int oh = wt_h != 0.0f ? n2 : 0;
  const bool ow = wt_w != 0.0f;
  for (int d0 = (int)blockIdx.y * kDiagDepths; d0 < D; d0 += (int)gridDim.y * kDiagDepths) {
    if (tid < kDiagDepths && d0 + tid < D) {
      int i0 = 0;
      double t0 = 0.0;
      const bool in = diag_axis(s.M, 0, d0 + tid, 0.0, 0.0, n0, i0, t0);
      zt[tid] = make_int4(in ? i0 * plane : -1, t0 != 0.0 ? plane : 0, __float_as_int((float)t0), 0);
    }
    __syncthreads();
    const int nd = D - d0 < kDiagDepths ? D - d0 : kDiagDepths;
    /* channels outside depths: a channel's pointers serve its nd depths */
    for (int64_t c = 0; active && c < s.channels; c++) {
      const float *q = (const float *)s.in + c * s.in_plane + hw_off;
      int64_t at = c * s.out_plane + ((int64_t)d0 * H + h) * W + w;
      for (int k = 0; k < nd; k += kDiagGroup, at += kDiagGroup * HW) {
        /* the group's loads are all in flight before its lerps: a store
         * between two depths would order the next one's loads after it */
        int4 e[kDiagGroup];
        bool inner = hw_in;
#pragma unroll
        for (int g = 0; g < kDiagGroup; g++) {
          e[g] = zt[k + g < nd ? k + g : k];
          inner &= e[g].x >= 0;
        }
        float v[kDiagGroup];
        if (inner && ow) {
#pragma unroll
          for (int g = 0; g < kDiagGroup; g++) v[g] = diag_lerp<1>(q + e[g].x, e[g], oh, wt_h, wt_w);
        } else if (inner) {
#pragma unroll
          for (int g = 0; g < kDiagGroup; g++) v[g] = diag_lerp<0>(q + e[g].x, e[g], oh, wt_h, wt_w);
        } else {
#pragma unroll
          for (int g = 0; g < kDiagGroup; g++)
            v[g] = k + g < nd ? diag_general(s, shp, border, c, d0 + k + g, h, w) : 0.f;
        }
#pragma unroll
        for (int g = 0; g < kDiagGroup; g++) {
          if (k + g >= nd) break;
          if (out == VP_F32)
            ((float *)s.out)[at + g * HW] = v[g];
          else
            store_cvt(s.out, out, at + g * HW, v[g]);
        }
      }
    }
    __syncthreads(); /* the table is rewritten for the next depths */
  }
}

/* Label mode exists only for the integer dtypes vp_resample_label_dtype
 * accepts: instances for the others would be dead code in every binary. */
template <int IN>
struct LabelOk {
  static constexpr bool value =
      IN == VP_U8 || IN == VP_I8 || IN == VP_U16 || IN == VP_I16 || IN == VP_U32 || IN == VP_I32;
};

template <int IN, bool OK = LabelOk<IN>::value>
struct FastLabel {
  static void run(const FastTable &t, dim3 grid, dim3 block, vp_dtype out, vp_border b,
                  cudaStream_t st) {
    fast_kernel<IN, VP_INTERP_LABEL><<<grid, block, 0, st>>>(t, out, (int)b);
  }
};
template <int IN>
struct FastLabel<IN, false> {
  static void run(const FastTable &, dim3, dim3, vp_dtype, vp_border, cudaStream_t) {}
};

/* The coefficient stage of cubic reads float32 coefficients only. */
template <int IN>
struct FastCubic {
  static void run(const FastTable &, dim3, dim3, vp_dtype, vp_border, cudaStream_t) {}
};
template <>
struct FastCubic<VP_F32> {
  static void run(const FastTable &t, dim3 grid, dim3 block, vp_dtype out, vp_border b,
                  cudaStream_t st) {
    fast_kernel<VP_F32, VP_INTERP_CUBIC_COEF><<<grid, block, 0, st>>>(t, out, (int)b);
  }
};

template <int IN>
void fast_by_interp(const FastTable &t, int n, unsigned tiles, unsigned depth, vp_dtype out,
                    vp_interp i, vp_border b, cudaStream_t st) {
  const dim3 grid(tiles, depth, (unsigned)n), block(kTileW, kTileH);
  if (i == VP_INTERP_LABEL)
    FastLabel<IN>::run(t, grid, block, out, b, st);
  else if (i == VP_INTERP_CUBIC_COEF)
    FastCubic<IN>::run(t, grid, block, out, b, st);
  else if (i == VP_INTERP_NEAREST)
    fast_kernel<IN, VP_INTERP_NEAREST><<<grid, block, 0, st>>>(t, out, (int)b);
  else
    fast_kernel<IN, VP_INTERP_LINEAR><<<grid, block, 0, st>>>(t, out, (int)b);
}

/* Whether sample s fits the fast kernel: no displacement, extents whose
 * index arithmetic fits 32 bits. */
bool fast_fits(const vp_resample_desc &s) {
  if (s.disp.nodes || s.aa[0] != 0 || s.aa[1] != 0 || s.aa[2] != 0) return false;
  for (int a = 0; a < 3; a++)
    if (s.in_shape[a] >= (int64_t)1 << 30 || s.out_shape[a] >= (int64_t)1 << 30) return false;
  const int64_t tiles =
      ((s.out_shape[1] + kTileH - 1) / kTileH) * ((s.out_shape[2] + kTileW - 1) / kTileW);
  return s.in_shape[0] * s.in_shape[1] * s.in_shape[2] < (int64_t)1 << 31 &&
         s.in_shape[1] * s.in_shape[2] < (int64_t)1 << 31 && tiles < (int64_t)1 << 31;
}

/* Launches one kernel over the m (<= kFastSamples) samples ds[0..m): diag_kernel when
 * diag, else fast_kernel. */
vp_status fast_group(const vp_resample_desc *const *ds, int m, bool diag, vp_dtype in,
                     vp_dtype out, vp_interp interp, vp_border border, cudaStream_t st) {
  FastTable t;
  memset(&t, 0, sizeof t);
  int64_t tiles = 0, depth = 0;
  for (int i = 0; i < m; i++) {
    const vp_resample_desc &s = *ds[i];
    FastSample &f = t.s[i];
    f.in = s.in;
    f.out = s.out;
    memcpy(f.M, s.M, sizeof f.M);
    f.fill = s.fill;
    f.channels = s.channels;
    f.in_plane = s.in_shape[0] * s.in_shape[1] * s.in_shape[2];
    f.out_plane = s.out_shape[0] * s.out_shape[1] * s.out_shape[2];
    for (int a = 0; a < 3; a++) {
      f.in_shape[a] = (int32_t)s.in_shape[a];
      f.out_shape[a] = (int32_t)s.out_shape[a];
    }
    if (s.channels > 0 && f.out_plane > 0) {
      f.tiles_w = (int32_t)((s.out_shape[2] + kTileW - 1) / kTileW);
      f.tiles = f.tiles_w * (int32_t)((s.out_shape[1] + kTileH - 1) / kTileH);
    }
    if (f.tiles > tiles) tiles = f.tiles;
    if (f.tiles > 0 && s.out_shape[0] > depth) depth = s.out_shape[0];
  }
  if (tiles == 0) return VP_OK;
  /* grid.y covers D / (depths a block takes) up to the launch limit; the
   * kernels loop over the rest. A thread's setup (its sample's fields,
   * the tile, the h and w products of the map) serves every depth it
   * takes: with one depth a thread it was about a third of the kernel's
   * instructions (Nsight Compute: 297 a voxel). */
  const int per = diag ? kDiagDepths : kDepthsPerThread;
  depth = (depth + per - 1) / per;
  const unsigned gy = (unsigned)(depth < 65535 ? depth : 65535), gx = (unsigned)tiles;
  if (diag) {
    diag_kernel<<<dim3(gx, gy, (unsigned)m), dim3(kTileW, kTileH), 0, st>>>(t, out, (int)border);
  } else {
    switch (in) {
      case VP_U8: fast_by_interp<VP_U8>(t, m, gx, gy, out, interp, border, st); break;
      case VP_I8: fast_by_interp<VP_I8>(t, m, gx, gy, out, interp, border, st); break;
      case VP_U16: fast_by_interp<VP_U16>(t, m, gx, gy, out, interp, border, st); break;
      case VP_I16: fast_by_interp<VP_I16>(t, m, gx, gy, out, interp, border, st); break;
      case VP_U32: fast_by_interp<VP_U32>(t, m, gx, gy, out, interp, border, st); break;
      case VP_I32: fast_by_interp<VP_I32>(t, m, gx, gy, out, interp, border, st); break;
      case VP_I64: fast_by_interp<VP_I64>(t, m, gx, gy, out, interp, border, st); break;
      case VP_F16: fast_by_interp<VP_F16>(t, m, gx, gy, out, interp, border, st); break;
      case VP_F32: fast_by_interp<VP_F32>(t, m, gx, gy, out, interp, border, st); break;
      default: fast_by_interp<VP_F64>(t, m, gx, gy, out, interp, border, st); break;
    }
  }
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? VP_OK : vp_cuda_status(e, "resample kernel launch");
}

/* Launches the fast kernels over samples [0, n): float32 linear samples
 * with axis-aligned maps through diag_kernel, the others through
 * fast_kernel, each in groups of kFastSamples. */
vp_status fast_run(const vp_resample_desc *d, int64_t n, vp_dtype in, vp_dtype out,
                   vp_interp interp, vp_border border, cudaStream_t st) {
  const bool diag_ok = in == VP_F32 && interp == VP_INTERP_LINEAR;
  for (int pass = 0; pass < (diag_ok ? 2 : 1); pass++) {
    const bool diag = diag_ok && pass == 0;
    const vp_resample_desc *group[kFastSamples];
    int m = 0;
    for (int64_t i = 0; i < n; i++) {
      if (diag_ok && (vp_rs_axis_aligned(d[i].M) != 0) != diag) continue;
      group[m++] = &d[i];
      if (m == kFastSamples) {
        VP_TRY(fast_group(group, m, diag, in, out, interp, border, st));
        m = 0;
      }
    }
    if (m > 0) VP_TRY(fast_group(group, m, diag, in, out, interp, border, st));
  }
  return VP_OK;
}

template <int IN, int INTERP>
vp_status launch(const vp_bl_table &t, vp_dtype out, vp_border b, cudaStream_t st) {
  ResampleBody<IN, INTERP> body{out, (int)b};
  vp_bl_kernel<vp_resample_desc, ResampleBody<IN, INTERP>>
      <<<vp_bl_blocks(t.total), vp_bl_threads, 0, st>>>(
          t.offsets, (const vp_resample_desc *)t.descs, t.n, t.total, body);
  return VP_OK;
}

template <int IN, bool OK = LabelOk<IN>::value>
struct GeneralLabel {
  static vp_status run(const vp_bl_table &t, vp_dtype out, vp_border b, cudaStream_t st) {
    return launch<IN, VP_INTERP_LABEL>(t, out, b, st);
  }
};
template <int IN>
struct GeneralLabel<IN, false> {
  static vp_status run(const vp_bl_table &, vp_dtype, vp_border, cudaStream_t) {
    return vp_fail(VP_ERR_UNSUPPORTED, "resample (GPU): no label mode for dtype %s",
                   vp_dtype_name((vp_dtype)IN));
  }
};

template <int IN>
struct GeneralCubic {
  static vp_status run(const vp_bl_table &, vp_dtype, vp_border, cudaStream_t) {
    return vp_fail(VP_ERR_INVALID_ARG, "resample (GPU): cubic coefficients are float32");
  }
};
template <>
struct GeneralCubic<VP_F32> {
  static vp_status run(const vp_bl_table &t, vp_dtype out, vp_border b, cudaStream_t st) {
    return launch<VP_F32, VP_INTERP_CUBIC_COEF>(t, out, b, st);
  }
};

template <int IN>
vp_status by_interp(const vp_bl_table &t, vp_dtype out, vp_interp i, vp_border b, cudaStream_t st) {
  if (i == VP_INTERP_LABEL) return GeneralLabel<IN>::run(t, out, b, st);
  if (i == VP_INTERP_CUBIC_COEF) return GeneralCubic<IN>::run(t, out, b, st);
  if (i == VP_INTERP_NEAREST) return launch<IN, VP_INTERP_NEAREST>(t, out, b, st);
  return launch<IN, VP_INTERP_LINEAR>(t, out, b, st);
}

}  // namespace

extern "C" vp_status vp_cuda_resample(const vp_resample_desc *host_descs, int64_t n, vp_dtype in,
                                      vp_dtype out, vp_interp interp, vp_border border,
                                      vp_stream stream) {
  VP_TRY(vp_resample_check(host_descs, n, in, out, interp, border, "resample (GPU)"));
  if (n == 0) return VP_OK;
  if (interp == VP_INTERP_CUBIC)
    return vp_cuda_resample_cubic(host_descs, n, in, out, border, stream);
  bool fits = true;
  for (int64_t i = 0; i < n && fits; i++) fits = fast_fits(host_descs[i]);
  if (fits) return fast_run(host_descs, n, in, out, interp, border, (cudaStream_t)stream);
  int64_t *units = (int64_t *)malloc((size_t)n * sizeof *units);
  if (!units) return vp_fail(VP_ERR_NOMEM, "resample (GPU): out of host memory");
  for (int64_t i = 0; i < n; i++) {
    const vp_resample_desc &s = host_descs[i];
    units[i] = s.channels > 0 ? s.out_shape[0] * s.out_shape[1] * s.out_shape[2] : 0;
  }
  cudaStream_t st = (cudaStream_t)stream;
  vp_bl_table t;
  vp_status r = vp_bl_upload(host_descs, sizeof *host_descs, n, units, st, &t);
  free(units);
  if (r != VP_OK) return r;
  if (t.total > 0) {
    switch (in) {
      case VP_U8: r = by_interp<VP_U8>(t, out, interp, border, st); break;
      case VP_I8: r = by_interp<VP_I8>(t, out, interp, border, st); break;
      case VP_U16: r = by_interp<VP_U16>(t, out, interp, border, st); break;
      case VP_I16: r = by_interp<VP_I16>(t, out, interp, border, st); break;
      case VP_U32: r = by_interp<VP_U32>(t, out, interp, border, st); break;
      case VP_I32: r = by_interp<VP_I32>(t, out, interp, border, st); break;
      case VP_I64: r = by_interp<VP_I64>(t, out, interp, border, st); break;
      case VP_F16: r = by_interp<VP_F16>(t, out, interp, border, st); break;
      case VP_F32: r = by_interp<VP_F32>(t, out, interp, border, st); break;
      default: r = by_interp<VP_F64>(t, out, interp, border, st); break;
    }
  }
  cudaError_t e = cudaGetLastError();
  vp_bl_free(&t, st);
  if (r != VP_OK) return r;
  if (e != cudaSuccess) return vp_cuda_status(e, "resample kernel launch");
  return VP_OK;
}

/* Cubic interpolation on the GPU. Samples of axis-aligned maps take the
 * separable path (src/cuda/resample_separable.cu); for the others the
 * inputs become float32 B-spline coefficient volumes (src/ops/bspline.h: padding, then the
 * recursive prefilter along W, H and D, one thread per line), held in one
 * stream-ordered scratch allocation, and the engine's coefficient stage
 * interpolates them. Four batched launches plus the interpolation. */
#include <cuda_runtime_api.h>
#include <stdlib.h>

extern "C" {
#include "core/cuda_rt.h"
#include "core/status.h"
}
#include "cuda/batch_launch.h"
#include "cuda/kernels.h"
#include "cuda/resample_separable.h"
#include "ops/bspline.h"
#include "ops/resample_kernel.h"

namespace {

struct CoefDesc {
  const void *in;
  float *coef;
  int64_t in_shape[3], pad[3], cs[3];
  int64_t channels;
  double fill;
};

/* One coefficient: the input voxel it sits on, through the border. */
struct LoadBody {
  vp_dtype in;
  int border;
  __device__ void operator()(const CoefDesc &s, int64_t e) const {
    const int64_t W = s.cs[2], HW = s.cs[1] * W, DHW = s.cs[0] * HW;
    const int64_t ch = vp_bl_div(e, DHW), r = e - ch * DHW;
    const int64_t d = vp_bl_div(r, HW), hw = r - d * HW;
    const int64_t h = vp_bl_div(hw, W), w = hw - h * W;
    const int64_t id = vp_rs_map(d - s.pad[0], s.in_shape[0], border);
    const int64_t ih = vp_rs_map(h - s.pad[1], s.in_shape[1], border);
    const int64_t iw = vp_rs_map(w - s.pad[2], s.in_shape[2], border);
    const int64_t plane = s.in_shape[0] * s.in_shape[1] * s.in_shape[2];
    s.coef[e] = (id < 0 || ih < 0 || iw < 0)
                    ? (float)s.fill
                    : (float)vp_cvt_load(
                          s.in, in, ch * plane + (id * s.in_shape[1] + ih) * s.in_shape[2] + iw);
  }
};

/* Line l of the pass along `axis`: consecutive threads take neighbouring
 * lines, so the H and D passes read coalesced rows. */
struct FilterBody {
  int axis, half;
  __device__ void operator()(const CoefDesc &s, int64_t l) const {
    const int64_t D = s.cs[0], H = s.cs[1], W = s.cs[2];
    if (axis == 2) {
      vp_bspline_line(s.coef + l * W, W, 1, half);
    } else if (axis == 1) {
      const int64_t cd = vp_bl_div(l, W), w = l - cd * W;
      vp_bspline_line(s.coef + cd * H * W + w, H, W, half);
    } else {
      const int64_t ch = vp_bl_div(l, H * W), hw = l - ch * H * W;
      vp_bspline_line(s.coef + ch * D * H * W + hw, D, H * W, half);
    }
  }
};

/* Load and W pass in one kernel, through shared memory: a block takes
 * kRows consecutive coefficient rows, reads them from the input through
 * the border with coalesced loads (all kRowThreads threads), filters one
 * row per thread in shared memory (rows kept W + 1 apart, so the threads'
 * strided accesses fall in different banks) and stores them coalesced. A
 * thread per row straight in global memory would read 32 rows per warp
 * instruction, one sector each, and a separate load pass would write and
 * read the whole coefficient volume once more. */
constexpr int kRows = 32;
constexpr int kRowThreads = 128;      /* all copy; the first kRows filter */
constexpr int64_t kMaxSharedW = 1024; /* 32 x 1025 floats: 131 KB */

/* Loads also take the input through the border (LoadBody's rule), so the
 * coefficient volume is written once, already filtered along W. */
__device__ __forceinline__ float load_coef(const CoefDesc &d, vp_dtype in, int border, int64_t row,
                                           int64_t w) {
  const int64_t hw = d.cs[0] * d.cs[1];
  const int64_t ch = row / hw, dh = row - ch * hw;
  const int64_t pd = dh / d.cs[1], ph = dh - pd * d.cs[1];
  const int64_t id = vp_rs_map(pd - d.pad[0], d.in_shape[0], border);
  const int64_t ih = vp_rs_map(ph - d.pad[1], d.in_shape[1], border);
  const int64_t iw = vp_rs_map(w - d.pad[2], d.in_shape[2], border);
  if (id < 0 || ih < 0 || iw < 0) return (float)d.fill;
  const int64_t plane = d.in_shape[0] * d.in_shape[1] * d.in_shape[2];
  return (float)vp_cvt_load(d.in, in, ch * plane + (id * d.in_shape[1] + ih) * d.in_shape[2] + iw);
}

__global__ void __launch_bounds__(kRowThreads)
    rows_kernel(const int64_t *off, const CoefDesc *descs, int64_t n, int64_t total, int half,
                vp_dtype in, int border) {
  extern __shared__ float sm[];
  int64_t s = 0;
  for (int64_t u = blockIdx.x; u < total; u += gridDim.x) {
    s = vp_bl_find(off, s, n, u);
    const CoefDesc &d = descs[s];
    const int64_t W = d.cs[2], rows = d.channels * d.cs[0] * d.cs[1];
    const int64_t r0 = (u - off[s]) * kRows;
    const int nr = (int)(rows - r0 < kRows ? rows - r0 : kRows);
    float *g = d.coef + r0 * W;
    const int w = (int)W;   /* <= kMaxSharedW */
    const int cnt = nr * w; /* the rows are contiguous: one flat, coalesced copy */
#pragma unroll 4
    for (int k = (int)threadIdx.x; k < cnt; k += kRowThreads) {
      const int r = k / w;
      sm[k + r] = load_coef(d, in, border, r0 + r, k - r * w);
    }
    __syncthreads();
    if ((int)threadIdx.x < nr) vp_bspline_line(sm + threadIdx.x * (w + 1), W, 1, half);
    __syncthreads();
#pragma unroll 4
    for (int k = (int)threadIdx.x; k < cnt; k += kRowThreads) {
      const int r = k / w;
      g[k] = sm[k + r];
    }
    __syncthreads();
  }
}

vp_status run_rows(const CoefDesc *d, int64_t n, int half, vp_dtype in, int border,
                   cudaStream_t st) {
  int64_t *units = (int64_t *)calloc((size_t)n, sizeof *units);
  if (!units) return vp_fail(VP_ERR_NOMEM, "resample (GPU): out of host memory");
  int64_t maxw = 1;
  for (int64_t i = 0; i < n; i++) {
    if (!d[i].coef) continue; /* (a W of 1 is loaded, and its filter does nothing) */
    units[i] = (d[i].channels * d[i].cs[0] * d[i].cs[1] + kRows - 1) / kRows;
    if (d[i].cs[2] > maxw) maxw = d[i].cs[2];
  }
  vp_bl_table t;
  vp_status s = vp_bl_upload(d, sizeof *d, n, units, st, &t);
  free(units);
  if (s != VP_OK) return s;
  const size_t smem = (size_t)kRows * (size_t)(maxw + 1) * sizeof(float);
  cudaError_t e =
      cudaFuncSetAttribute(rows_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
  if (e == cudaSuccess && t.total > 0) {
    const unsigned blocks = (unsigned)(t.total < (1 << 20) ? t.total : (1 << 20));
    rows_kernel<<<blocks, kRowThreads, smem, st>>>(t.offsets, (const CoefDesc *)t.descs, t.n,
                                                   t.total, half, in, border);
    e = cudaGetLastError();
  }
  vp_bl_free(&t, st);
  return e == cudaSuccess ? VP_OK : vp_cuda_status(e, "cubic prefilter (rows) launch");
}

template <class Body>
vp_status run_batched(const CoefDesc *d, int64_t n, const int64_t *units, cudaStream_t st,
                      Body body) {
  vp_bl_table t;
  VP_TRY(vp_bl_upload(d, sizeof *d, n, units, st, &t));
  if (t.total > 0)
    vp_bl_kernel<CoefDesc, Body><<<vp_bl_blocks(t.total), vp_bl_threads, 0, st>>>(
        t.offsets, (const CoefDesc *)t.descs, t.n, t.total, body);
  const cudaError_t e = cudaGetLastError();
  vp_bl_free(&t, st);
  return e == cudaSuccess ? VP_OK : vp_cuda_status(e, "cubic prefilter launch");
}

}  // namespace

extern "C" vp_status vp_cuda_resample_cubic(const vp_resample_desc *d, int64_t n, vp_dtype in,
                                            vp_dtype out, vp_border border, vp_stream stream) {
  cudaStream_t st = (cudaStream_t)stream;
  CoefDesc *cd = (CoefDesc *)calloc((size_t)n, sizeof *cd);
  vp_resample_desc *rd = (vp_resample_desc *)calloc((size_t)n, sizeof *rd);
  int64_t *units = (int64_t *)calloc((size_t)n, sizeof *units);
  unsigned char *sep = (unsigned char *)calloc((size_t)n, 1);
  vp_status s = VP_OK;
  float *coef = nullptr;
  if (!cd || !rd || !units || !sep) s = vp_fail(VP_ERR_NOMEM, "resample (GPU): out of host memory");
  if (s == VP_OK) s = vp_cuda_cubic_separable(d, n, in, out, border, stream, sep);
  int64_t total = 0;
  for (int64_t i = 0; s == VP_OK && i < n; i++) {
    vp_bspline_layout(d[i].in_shape, (int)border, cd[i].pad, cd[i].cs);
    const int64_t out_n = d[i].out_shape[0] * d[i].out_shape[1] * d[i].out_shape[2];
    /* no output, or done by the separable path: no coefficients */
    int64_t cn = out_n > 0 && !sep[i] ? d[i].channels : 0;
    for (int a = 0; a < 3; a++) {
      cd[i].in_shape[a] = d[i].in_shape[a];
      if (cd[i].cs[a] != 0 && cn > (INT64_MAX / 8 - total) / cd[i].cs[a]) {
        s = vp_fail(VP_ERR_INVALID_ARG, "resample (GPU): sample %lld is too large for cubic",
                    (long long)i);
        break;
      }
      cn *= cd[i].cs[a];
    }
    cd[i].in = d[i].in;
    cd[i].channels = d[i].channels;
    cd[i].fill = d[i].fill;
    units[i] = cn;
    total += cn;
  }
  if (s == VP_OK && total > 0) {
    s = vp_cuda_malloc_async((void **)&coef, (size_t)total * sizeof(float), st,
                             "resample (GPU): cubic coefficients");
  }
  if (s == VP_OK) {
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
      cd[i].coef = units[i] > 0 ? coef + at : nullptr;
      at += units[i];
      vp_resample_cubic_desc(&d[i], border, cd[i].coef, &rd[i]);
      if (sep[i]) rd[i].channels = 0;
    }
    int64_t maxw = 0;
    for (int64_t i = 0; i < n; i++)
      if (cd[i].coef && cd[i].cs[2] > maxw) maxw = cd[i].cs[2];
    /* rows that fit shared memory load and filter along W in one kernel */
    const int rows_shared = maxw <= kMaxSharedW;
    /* no coefficients (all separable or empty): no table uploads */
    if (total > 0 && rows_shared)
      s = run_rows(cd, n, border != VP_BORDER_CONSTANT, in, (int)border, st);
    else if (total > 0)
      s = run_batched(cd, n, units, st, LoadBody{in, (int)border});
    for (int a = rows_shared ? 1 : 2; a >= 0 && s == VP_OK && total > 0; a--) {
      for (int64_t i = 0; i < n; i++)
        units[i] = cd[i].cs[a] >= 2 && cd[i].coef
                       ? cd[i].channels * cd[i].cs[0] * cd[i].cs[1] * cd[i].cs[2] / cd[i].cs[a]
                       : 0;
      s = run_batched(cd, n, units, st, FilterBody{a, border != VP_BORDER_CONSTANT});
    }
  }
  /* an empty input (constant border) has no coefficients: every output
   * voxel of it is fill, which linear computes */
  for (int64_t i = 0; s == VP_OK && i < n; i++) {
    if (d[i].in_shape[0] * d[i].in_shape[1] * d[i].in_shape[2] != 0) continue;
    s = vp_cuda_resample(&d[i], 1, in, out, VP_INTERP_LINEAR, border, stream);
    rd[i].channels = 0;
  }
  if (s == VP_OK)
    s = vp_cuda_resample(rd, n, VP_F32, out, VP_INTERP_CUBIC_COEF,
                         (vp_border)vp_bspline_coef_border((int)border), stream);
  if (coef) (void)cudaFreeAsync(coef, st);
  free(cd);
  free(rd);
  free(units);
  free(sep);
  return s;
}

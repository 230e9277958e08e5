/* Cubic's separable path on the GPU: bspline.h's plan per sample, run as
 * up to three batched launches (one per pass, samples whose pass k runs
 * along W in one kernel, along H or D in the other). A pass reads every
 * line of its axis once into shared memory through the border, filters it
 * there (vp_bspline_line) and writes its 4-tap interpolation, so each pass
 * moves its input and output volumes once; intermediates are float32 in
 * one stream-ordered scratch allocation.
 *
 * Descriptors travel as the kernel's parameter (16 samples per launch, as
 * the engine's fast kernel), blockIdx.y the sample and blockIdx.x its
 * unit: no table upload and no search. */
#include <cuda_runtime_api.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "core/cuda_rt.h"
#include "core/status.h"
}
#include "cuda/resample_separable.h"
#include "ops/bspline.h"

namespace {

constexpr int kSamples = 16;
/* 128 threads load and store; the first kRows (W pass) or kTile (H and D
 * passes) filter one line each. More loaders than filters keep enough
 * reads in flight while the line buffers' shared memory caps the blocks
 * per SM. */
constexpr int kThreads = 128;
constexpr int kRows = 32;
/* H and D passes: 32 neighbouring lines (along W, or along H·W for D), so
 * a warp reads and writes one 128-byte row segment at a time, and line t's
 * element c at c * kTile + t keeps the filtering threads in different
 * banks. */
constexpr int kTile = 32;

struct SepSample {
  const void *src;
  void *dst;
  vp_bspline_pass p;
  double fill;
  int64_t units, tiles; /* blocks; (H and D) tiles per outer index */
  vp_dtype st, dt;
};

struct SepTable {
  SepSample s[kSamples];
};

/* Rows of a W pass (inner = 1: lines contiguous): kRows rows per block,
 * each at sm + r * ld (ld odd, so the filtering threads' strided accesses
 * fall in different banks), then the taps of every output position. */
__global__ void __launch_bounds__(kThreads)
    sep_rows_kernel(const __grid_constant__ SepTable tab, int border, int coef_border, int half) {
  extern __shared__ float sm[];
  const SepSample &s = tab.s[blockIdx.y];
  const int64_t u = blockIdx.x;
  if (u >= s.units) return;
  const vp_bspline_pass &p = s.p;
  const int nc = (int)p.ncoef, no = (int)p.n_out, ld = nc | 1;
  vp_bspline_tap *taps = (vp_bspline_tap *)(sm + kRows * ld);
  const int64_t r0 = u * kRows;
  const int nr = (int)(p.outer - r0 < kRows ? p.outer - r0 : kRows);
  for (int o = (int)threadIdx.x; o < no; o += kThreads)
    vp_bspline_tap_at(&p, o, coef_border, &taps[o]);
  if (s.st == VP_F32) {
    /* the rows' input voxels are one contiguous run: a flat copy without
     * the border rule, then the padding through it */
    const float *src = (const float *)s.src + r0 * p.n_in;
    const int n = (int)p.n_in, pad = (int)p.pad, cnt = nr * n, pcnt = nr * 2 * pad;
#pragma unroll 8
    for (int k = (int)threadIdx.x; k < cnt; k += kThreads) {
      const int r = k / n;
      sm[r * ld + pad + k - r * n] = src[k];
    }
    for (int k = (int)threadIdx.x; k < pcnt; k += kThreads) {
      const int r = k / (2 * pad), e = k - r * 2 * pad, c = e < pad ? e : n + e;
      sm[r * ld + c] = vp_bspline_load(s.src, s.st, (r0 + r) * p.n_in, 1, &p, c, border, s.fill);
    }
  } else {
    const int cnt = nr * nc;
#pragma unroll 4
    for (int k = (int)threadIdx.x; k < cnt; k += kThreads) {
      const int r = k / nc, c = k - r * nc;
      sm[r * ld + c] = vp_bspline_load(s.src, s.st, (r0 + r) * p.n_in, 1, &p, c, border, s.fill);
    }
  }
  __syncthreads();
  if ((int)threadIdx.x < nr) vp_bspline_line(sm + threadIdx.x * ld, nc, 1, half);
  __syncthreads();
  const int outs = nr * no;
#pragma unroll 4
  for (int k = (int)threadIdx.x; k < outs; k += kThreads) {
    const int r = k / no, o = k - r * no;
    vp_bspline_store(s.dst, s.dt, (r0 + r) * p.n_out + o,
                     vp_bspline_tap_sum(sm + r * ld, 1, &taps[o]));
  }
}

/* Lines of an H or D pass (inner > 1): a tile of kTile neighbouring lines
 * of one outer index per block. */
__global__ void __launch_bounds__(kThreads)
    sep_cols_kernel(const __grid_constant__ SepTable tab, int border, int coef_border, int half) {
  extern __shared__ float sm[];
  const SepSample &s = tab.s[blockIdx.y];
  const int64_t u = blockIdx.x;
  if (u >= s.units) return;
  const vp_bspline_pass &p = s.p;
  const int nc = (int)p.ncoef, no = (int)p.n_out;
  vp_bspline_tap *taps = (vp_bspline_tap *)(sm + nc * kTile);
  const int64_t o = u / s.tiles, i0 = (u - o * s.tiles) * kTile;
  const int ni = (int)(p.inner - i0 < kTile ? p.inner - i0 : kTile);
  const int64_t base = o * p.n_in * p.inner + i0, obase = o * p.n_out * p.inner + i0;
  for (int q = (int)threadIdx.x; q < no; q += kThreads)
    vp_bspline_tap_at(&p, q, coef_border, &taps[q]);
  const int t = (int)threadIdx.x % kTile;                         /* a thread keeps its line */
  const int w0 = (int)threadIdx.x / kTile, ws = kThreads / kTile; /* a warp per element row */
  if (t < ni && s.st == VP_F32) {
    /* the input part with plain strided loads the compiler can batch, then
     * the padding through the border rule */
    const float *src = (const float *)s.src + base + t;
    const int n = (int)p.n_in, pad = (int)p.pad;
#pragma unroll 8
    for (int c = w0; c < n; c += ws) sm[(c + pad) * kTile + t] = src[c * p.inner];
    for (int e = w0; e < 2 * pad; e += ws) {
      const int c = e < pad ? e : n + e;
      sm[c * kTile + t] = vp_bspline_load(s.src, s.st, base + t, p.inner, &p, c, border, s.fill);
    }
  } else if (t < ni) {
#pragma unroll 4
    for (int c = w0; c < nc; c += ws)
      sm[c * kTile + t] = vp_bspline_load(s.src, s.st, base + t, p.inner, &p, c, border, s.fill);
  }
  __syncthreads();
  if ((int)threadIdx.x < ni) vp_bspline_line(sm + threadIdx.x, nc, kTile, half);
  __syncthreads();
  if (t < ni) {
#pragma unroll 4
    for (int q = w0; q < no; q += ws)
      vp_bspline_store(s.dst, s.dt, obase + q * p.inner + t,
                       vp_bspline_tap_sum(sm + t, kTile, &taps[q]));
  }
}

size_t smem_of(const vp_bspline_pass &p) {
  const size_t taps = (size_t)p.n_out * sizeof(vp_bspline_tap);
  if (p.inner == 1) return (size_t)kRows * (size_t)(p.ncoef | 1) * sizeof(float) + taps;
  return (size_t)p.ncoef * kTile * sizeof(float) + taps;
}

int64_t units_of(const vp_bspline_pass &p, int64_t *tiles) {
  *tiles = (p.inner + kTile - 1) / kTile;
  return p.inner == 1 ? (p.outer + kRows - 1) / kRows : p.outer * *tiles;
}

/* Whether every pass of the plan fits one launch's limits. */
bool fits(const vp_bspline_plan &pl, size_t max_smem) {
  for (int q = 0; q < pl.npass; q++) {
    int64_t tiles;
    if (smem_of(pl.pass[q]) > max_smem || units_of(pl.pass[q], &tiles) >= ((int64_t)1 << 31))
      return false;
  }
  return true;
}

struct Job {
  vp_bspline_plan plan;
  const void *in;
  void *out;
  float *scr[2];
  double fill;
};

/* Pass q of the jobs whose pass q runs along W (rows) or not, 16 at a
 * time. */
vp_status launch_pass(const Job *jobs, int64_t n, int q, bool rows, vp_dtype in, vp_dtype out,
                      vp_border border, cudaStream_t st) {
  const int coef_border = vp_bspline_coef_border((int)border), half = border != VP_BORDER_CONSTANT;
  int64_t i = 0;
  while (i < n) {
    SepTable t;
    memset(&t, 0, sizeof t);
    int m = 0;
    size_t smem = 0;
    int64_t units = 0;
    for (; i < n && m < kSamples; i++) {
      const Job &j = jobs[i];
      if (j.plan.npass <= q || (j.plan.pass[q].inner == 1) != rows) continue;
      SepSample &s = t.s[m++];
      const bool last = q + 1 == j.plan.npass;
      s.p = j.plan.pass[q];
      s.src = q == 0 ? j.in : (const void *)j.scr[(q - 1) % 2];
      s.dst = last ? j.out : (void *)j.scr[q % 2];
      s.st = q == 0 ? in : VP_F32;
      s.dt = last ? out : VP_F32;
      s.fill = j.fill;
      s.units = units_of(s.p, &s.tiles);
      const size_t sm = smem_of(s.p);
      if (sm > smem) smem = sm;
      if (s.units > units) units = s.units;
    }
    if (m == 0 || units == 0) continue;
    const void *fn = rows ? (const void *)sep_rows_kernel : (const void *)sep_cols_kernel;
    cudaError_t e =
        cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e == cudaSuccess) {
      const dim3 grid((unsigned)units, (unsigned)m);
      if (rows)
        sep_rows_kernel<<<grid, kThreads, smem, st>>>(t, (int)border, coef_border, half);
      else
        sep_cols_kernel<<<grid, kThreads, smem, st>>>(t, (int)border, coef_border, half);
      e = cudaGetLastError();
    }
    if (e != cudaSuccess) return vp_cuda_status(e, "cubic separable pass launch");
  }
  return VP_OK;
}

}  // namespace

extern "C" vp_status vp_cuda_cubic_separable(const vp_resample_desc *d, int64_t n, vp_dtype in,
                                             vp_dtype out, vp_border border, vp_stream stream,
                                             unsigned char *taken) {
  cudaStream_t st = (cudaStream_t)stream;
  memset(taken, 0, (size_t)n);
  int dev = 0, max_smem = 0;
  cudaError_t e = cudaGetDevice(&dev);
  if (e == cudaSuccess)
    e = cudaDeviceGetAttribute(&max_smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  if (e != cudaSuccess) return vp_cuda_status(e, "cubic separable: device attributes");
  Job *jobs = (Job *)calloc((size_t)(n > 0 ? n : 1), sizeof *jobs);
  if (!jobs) return vp_fail(VP_ERR_NOMEM, "resample (GPU): out of host memory");
  int64_t m = 0, total = 0;
  for (int64_t i = 0; i < n; i++) {
    Job &j = jobs[m];
    if (!vp_bspline_plan_make(&d[i], (int)border, &j.plan) || !fits(j.plan, (size_t)max_smem))
      continue;
    j.in = d[i].in;
    j.out = d[i].out;
    j.fill = d[i].fill;
    total += j.plan.scratch[0] + j.plan.scratch[1];
    taken[i] = 1;
    m++;
  }
  float *scr = nullptr;
  vp_status s = VP_OK;
  if (m > 0 && total > 0) {
    s = vp_cuda_malloc_async((void **)&scr, (size_t)total * sizeof(float), st,
                             "resample (GPU): cubic intermediates");
  }
  if (s == VP_OK) {
    int64_t at = 0;
    for (int64_t i = 0; i < m; i++)
      for (int k = 0; k < 2; k++) {
        jobs[i].scr[k] = jobs[i].plan.scratch[k] > 0 ? scr + at : nullptr;
        at += jobs[i].plan.scratch[k];
      }
    for (int q = 0; q < VP_BSPLINE_MAX_PASSES && s == VP_OK; q++) {
      s = launch_pass(jobs, m, q, true, in, out, border, st);
      if (s == VP_OK) s = launch_pass(jobs, m, q, false, in, out, border, st);
    }
  }
  if (scr) (void)cudaFreeAsync(scr, st);
  if (s != VP_OK) memset(taken, 0, (size_t)n);
  free(jobs);
  return s;
}

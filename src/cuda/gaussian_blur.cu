/* gaussian_blur on the GPU: three launches for the whole batch, one per
 * 1-D pass (W: input -> tmp_a, H: tmp_a -> tmp_b, D: tmp_b -> output), one
 * thread per four consecutive voxels, the taps of src/cuda/gaussian_blur.h.
 * Neighbouring threads hold neighbouring W positions, so the strided H and
 * D taps are coalesced rows that the cache shares between the 2r + 1 taps. A sample
 * that p left alone skips W and H and is copied by the D launch; an axis
 * with radius 0 (sigma 0, 2-D data's D) skips its pass where it can. */
#include <cuda_runtime_api.h>
#include <stdlib.h>
#include <string.h>

#include <type_traits>

extern "C" {
#include "core/cuda_rt.h"
#include "core/status.h"
}
#include "cuda/gaussian_blur.h"
#include "cuda/intensity_kernels.h"

namespace {

__device__ __forceinline__ float taps(float, const void *src, vp_dtype t, int64_t base,
                                      int64_t stride, int64_t n, int64_t pos, const double *w,
                                      int r) {
  return vp_blur_taps_f(src, t, base, stride, n, pos, w, r);
}
__device__ __forceinline__ double taps(double, const void *src, vp_dtype t, int64_t base,
                                       int64_t stride, int64_t n, int64_t pos, const double *w,
                                       int r) {
  return vp_blur_taps_d(src, t, base, stride, n, pos, w, r);
}
__device__ __forceinline__ void store(float v, void *out, vp_dtype t, int64_t e) {
  vp_blur_storef(out, t, e, v);
}
__device__ __forceinline__ void store(double v, void *out, vp_dtype t, int64_t e) {
  vp_cvt_store(out, t, e, v);
}

/* Each thread takes kGroup elements (the per-unit costs, finding the
 * sample and reading its descriptor, dominate a one-voxel unit), 32 apart:
 * unit u holds elements 128 (u / 32) + u % 32 + 32 j, so the 32 threads of a
 * warp read and write 32 consecutive elements per access. T is the element
 * type when the data are float32 (the taps then read floats directly), else
 * void (any dtype, by its switch). */
constexpr int kGroup = 4;

__device__ __forceinline__ int64_t elem_of(int64_t u, int j) {
  return ((u >> 5) << 7) + (u & 31) + 32 * j;
}

/* Units that cover n elements. */
static int64_t units_of(int64_t n) { return ((n + 127) >> 7) << 5; }

template <class T>
__device__ __forceinline__ vp_dtype src_type(vp_dtype t) {
  return std::is_same<T, float>::value ? VP_F32 : t;
}

template <class Acc, class T>
struct PassW {
  const double *w;
  vp_dtype t;
  __device__ void operator()(const vp_blur_desc &d, int64_t u) const {
    const vp_dtype st = src_type<T>(t);
    const int64_t W = d.shape[3];
    const double *wk = w + d.woff[2];
    const int r = d.radius[2];
    for (int j = 0; j < kGroup; j++) {
      const int64_t e = elem_of(u, j);
      if (e >= d.numel) return;
      const int64_t row = vp_stencil_div(e, W);
      ((Acc *)d.tmp_a)[e] = taps(Acc(), d.in, st, row * W, 1, W, e - row * W, wk, r);
    }
  }
};

template <class Acc>
struct PassH {
  const double *w;
  __device__ void operator()(const vp_blur_desc &d, int64_t u) const {
    const vp_dtype at = sizeof(Acc) == 8 ? VP_F64 : VP_F32;
    const int64_t W = d.shape[3], H = d.shape[2];
    const double *wk = w + d.woff[1];
    const int r = d.radius[1];
    for (int j = 0; j < kGroup; j++) {
      const int64_t e = elem_of(u, j);
      if (e >= d.numel) return;
      const int64_t q = vp_stencil_div(e, W), x = e - q * W;
      const int64_t pl = vp_stencil_div(q, H), h = q - pl * H;
      ((Acc *)d.tmp_b)[e] = taps(Acc(), d.tmp_a, at, pl * H * W + x, W, H, h, wk, r);
    }
  }
};

template <class Acc, class T>
struct PassD {
  const double *w;
  vp_dtype t;
  int es;
  __device__ void operator()(const vp_blur_desc &d, int64_t u) const {
    if (!d.apply) {
      for (int j = 0; j < kGroup; j++) {
        const int64_t e = elem_of(u, j);
        if (e >= d.numel) return;
        vp_stencil_copy_elem(d.in, d.out, (size_t)es, e);
      }
      return;
    }
    const vp_dtype at = sizeof(Acc) == 8 ? VP_F64 : VP_F32;
    const vp_dtype ot = src_type<T>(t);
    const int64_t HW = d.shape[2] * d.shape[3], D = d.shape[1];
    const void *src = d.radius[1] > 0 ? d.tmp_b : d.tmp_a;
    const double *wk = w + d.woff[0];
    const int r = d.radius[0];
    for (int j = 0; j < kGroup; j++) {
      const int64_t e = elem_of(u, j);
      if (e >= d.numel) return;
      const int64_t q = vp_stencil_div(e, HW), z = q - vp_stencil_div(q, D) * D;
      store(taps(Acc(), src, at, e - z * HW, HW, D, z, wk, r), d.out, ot, e);
    }
  }
};

template <class Acc, class T>
vp_status run(vp_blur_desc *d, int64_t n, const double *w, vp_dtype t, cudaStream_t s,
              int64_t *units) {
  for (int64_t i = 0; i < n; i++) units[i] = d[i].apply ? units_of(d[i].numel) : 0;
  VP_TRY(vp_stencil_run(d, n, units, s, PassW<Acc, T>{w, t}));
  for (int64_t i = 0; i < n; i++)
    units[i] = d[i].apply && d[i].radius[1] > 0 ? units_of(d[i].numel) : 0;
  VP_TRY(vp_stencil_run(d, n, units, s, PassH<Acc>{w}));
  for (int64_t i = 0; i < n; i++) units[i] = units_of(d[i].numel);
  return vp_stencil_run(d, n, units, s, PassD<Acc, T>{w, t, (int)vp_stencil_elem_size(t)});
}

}  // namespace

extern "C" vp_status vp_cuda_scratch_alloc(size_t bytes, vp_stream s, void **out) {
  *out = NULL;
  VP_CUDA_TRY(cudaMallocAsync(out, bytes ? bytes : 1, (cudaStream_t)s));
  return VP_OK;
}

extern "C" void vp_cuda_scratch_free(void *p, vp_stream s) {
  if (p) (void)cudaFreeAsync(p, (cudaStream_t)s);
}

extern "C" vp_status vp_cuda_gaussian_blur(const vp_blur_desc *descs, int64_t n,
                                           const double *weights, int64_t n_weights, vp_dtype dtype,
                                           vp_stream stream) {
  if (n < 1) return VP_OK;
  cudaStream_t s = (cudaStream_t)stream;
  const int dbl = dtype == VP_F64;
  const size_t as = dbl ? sizeof(double) : sizeof(float);
  vp_blur_desc *d = (vp_blur_desc *)malloc((size_t)n * sizeof *d);
  int64_t *units = (int64_t *)malloc((size_t)n * sizeof *units);
  if (!d || !units) {
    free(d);
    free(units);
    return vp_fail(VP_ERR_NOMEM, "gaussian_blur: out of host memory");
  }
  memcpy(d, descs, (size_t)n * sizeof *d);
  /* two intermediates per blurred sample, in one allocation */
  uint64_t total = 0;
  for (int64_t i = 0; i < n; i++)
    if (d[i].apply) total += (uint64_t)d[i].numel;
  vp_status st = VP_OK;
  if (total > SIZE_MAX / (2 * as))
    st = vp_fail(VP_ERR_OVERFLOW, "gaussian_blur: %llu voxels of intermediates",
                 (unsigned long long)total);
  void *scratch = NULL, *wdev = NULL;
  if (st == VP_OK) st = vp_cuda_scratch_alloc((size_t)total * 2 * as, stream, &scratch);
  if (st == VP_OK) st = vp_cuda_scratch_alloc((size_t)n_weights * sizeof(double), stream, &wdev);
  if (st == VP_OK) {
    cudaError_t e = cudaMemcpyAsync(wdev, weights, (size_t)n_weights * sizeof(double),
                                    cudaMemcpyHostToDevice, s);
    if (e != cudaSuccess) st = vp_cuda_status(e, "gaussian_blur: upload of the kernels");
  }
  if (st == VP_OK) {
    char *a = (char *)scratch, *b = a + total * as;
    for (int64_t i = 0; i < n; i++) {
      if (!d[i].apply) continue;
      d[i].tmp_a = a;
      d[i].tmp_b = b;
      a += (size_t)d[i].numel * as;
      b += (size_t)d[i].numel * as;
    }
    const double *wd = (const double *)wdev;
    if (dbl)
      st = run<double, void>(d, n, wd, dtype, s, units);
    else if (dtype == VP_F32)
      st = run<float, float>(d, n, wd, dtype, s, units);
    else
      st = run<float, void>(d, n, wd, dtype, s, units);
  }
  vp_cuda_scratch_free(wdev, stream);
  vp_cuda_scratch_free(scratch, stream);
  free(units);
  free(d);
  return st;
}

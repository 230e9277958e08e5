/* The resampling engine on the GPU: one launch for a batch, one thread per
 * output voxel (all channels: the coordinates, and the displacement when
 * there is one, are computed once). The arithmetic is
 * src/ops/resample_kernel.h's, shared with the CPU body; kernels are
 * instantiated per input dtype, interpolation and border, the output dtype
 * is a uniform branch of the store. */
#include <cuda_runtime_api.h>
#include <stdlib.h>

extern "C" {
#include "core/cuda_rt.h"
#include "core/status.h"
#include "core/threadpool.h"
}
#include "cuda/batch_launch.h"
#include "cuda/kernels.h"
#include "ops/resample_kernel.h"

namespace {

template <int IN, int INTERP, int BORDER>
struct ResampleBody {
  vp_dtype out;
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
    if (INTERP == VP_INTERP_NEAREST) {
      const int64_t off = vp_rs_nearest_offset(s.in_shape, x, BORDER);
      for (int64_t c = 0; c < s.channels; c++) {
        const void *src = s.in ? (const char *)s.in + (size_t)(c * in_plane) * es : nullptr;
        vp_cvt_store(s.out, out, c * out_plane + e, vp_rs_nearest_value(src, in, off, s.fill));
      }
    } else {
      vp_rs_lin L;
      vp_rs_linear_setup(s.in_shape, x, BORDER, &L);
      for (int64_t c = 0; c < s.channels; c++) {
        const void *src = s.in ? (const char *)s.in + (size_t)(c * in_plane) * es : nullptr;
        vp_cvt_store(s.out, out, c * out_plane + e, vp_rs_linear_value(src, in, &L, s.fill));
      }
    }
  }
};

template <int IN, int INTERP, int BORDER>
vp_status launch(const vp_bl_table &t, vp_dtype out, cudaStream_t st) {
  ResampleBody<IN, INTERP, BORDER> body{out};
  vp_bl_kernel<vp_resample_desc, ResampleBody<IN, INTERP, BORDER>>
      <<<vp_bl_blocks(t.total), vp_bl_threads, 0, st>>>(
          t.offsets, (const vp_resample_desc *)t.descs, t.n, t.total, body);
  return VP_OK;
}

template <int IN, int INTERP>
vp_status by_border(const vp_bl_table &t, vp_dtype out, vp_border b, cudaStream_t st) {
  switch (b) {
    case VP_BORDER_CONSTANT: return launch<IN, INTERP, VP_BORDER_CONSTANT>(t, out, st);
    case VP_BORDER_EDGE: return launch<IN, INTERP, VP_BORDER_EDGE>(t, out, st);
    default: return launch<IN, INTERP, VP_BORDER_REFLECT>(t, out, st);
  }
}

template <int IN>
vp_status by_interp(const vp_bl_table &t, vp_dtype out, vp_interp i, vp_border b, cudaStream_t st) {
  if (i == VP_INTERP_NEAREST) return by_border<IN, VP_INTERP_NEAREST>(t, out, b, st);
  return by_border<IN, VP_INTERP_LINEAR>(t, out, b, st);
}

}  // namespace

extern "C" vp_status vp_cuda_resample(const vp_resample_desc *host_descs, int64_t n, vp_dtype in,
                                      vp_dtype out, vp_interp interp, vp_border border,
                                      vp_stream stream) {
  VP_TRY(vp_resample_check(host_descs, n, in, out, interp, border, "resample (GPU)"));
  if (n == 0) return VP_OK;
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

/* cast on the GPU: the element conversion of core/convert.h, so the bytes
 * equal the CPU's; one launch for the batch, one thread per element. */
#include <cuda_runtime_api.h>
#include <stdlib.h>

extern "C" {
#include "core/cuda_rt.h"
#include "core/status.h"
}
#include "core/convert.h"
#include "cuda/batch_launch.h"
#include "cuda/kernels.h"

namespace {

/* The destination type is a template parameter (its store is the costly
 * half); the source a runtime switch, uniform across the launch. */
template <vp_dtype To>
struct CastBody {
  vp_dtype from;
  __device__ void operator()(const vp_bl_desc &d, int64_t e) const {
    vp_cvt_store(d.out, To, e, vp_cvt_load(d.in, from, e));
  }
};

template <class T>
struct CopyBody {
  __device__ void operator()(const vp_bl_desc &d, int64_t e) const {
    ((T *)d.out)[e] = ((const T *)d.in)[e];
  }
};

template <vp_dtype To>
vp_status run_to(const vp_bl_desc *descs, int64_t n, const int64_t *units, vp_dtype from,
                 cudaStream_t st) {
  CastBody<To> body;
  body.from = from;
  return vp_bl_run(descs, n, units, st, body);
}

}  // namespace

extern "C" vp_status vp_cuda_cast(const vp_bl_desc *descs, int64_t n, vp_dtype from, vp_dtype to,
                                  vp_stream s) {
  int64_t *units = (int64_t *)malloc((size_t)n * sizeof *units);
  if (!units) return vp_fail(VP_ERR_NOMEM, "cast: out of host memory");
  for (int64_t i = 0; i < n; i++) units[i] = descs[i].numel;
  cudaStream_t st = (cudaStream_t)s;
  vp_status r;
  if (from == to) {
    /* an identity cast copies bytes: int64 above 2^53 and NaN payloads
     * would not survive a trip through double */
    switch (vp_dtype_size(from)) {
      case 1: r = vp_bl_run(descs, n, units, st, CopyBody<uint8_t>()); break;
      case 2: r = vp_bl_run(descs, n, units, st, CopyBody<uint16_t>()); break;
      case 4: r = vp_bl_run(descs, n, units, st, CopyBody<uint32_t>()); break;
      default: r = vp_bl_run(descs, n, units, st, CopyBody<uint64_t>()); break;
    }
  } else {
    switch (to) {
      case VP_U8: r = run_to<VP_U8>(descs, n, units, from, st); break;
      case VP_I8: r = run_to<VP_I8>(descs, n, units, from, st); break;
      case VP_U16: r = run_to<VP_U16>(descs, n, units, from, st); break;
      case VP_I16: r = run_to<VP_I16>(descs, n, units, from, st); break;
      case VP_U32: r = run_to<VP_U32>(descs, n, units, from, st); break;
      case VP_I32: r = run_to<VP_I32>(descs, n, units, from, st); break;
      case VP_I64: r = run_to<VP_I64>(descs, n, units, from, st); break;
      case VP_F16: r = run_to<VP_F16>(descs, n, units, from, st); break;
      case VP_F32: r = run_to<VP_F32>(descs, n, units, from, st); break;
      case VP_F64: r = run_to<VP_F64>(descs, n, units, from, st); break;
      default: r = vp_fail(VP_ERR_INVALID_ARG, "cast: invalid dtype %d", (int)to);
    }
  }
  free(units);
  return r;
}

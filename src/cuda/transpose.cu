/* transpose on the GPU: one launch for the batch, one thread per output
 * element, gathering from the input through per-axis strides. */
#include <cuda_runtime_api.h>
#include <stdlib.h>

extern "C" {
#include "core/cuda_rt.h"
#include "core/status.h"
}
#include "cuda/batch_launch.h"
#include "cuda/kernels.h"

namespace {

struct TransposeDesc {
  const void *in;
  void *out;
  int64_t shape[5];  /* output extents */
  int64_t stride[5]; /* input elements per step of each output axis */
};

template <class T>
struct TransposeBody {
  __device__ void operator()(const TransposeDesc &d, int64_t e) const {
    int64_t q = e, src = 0;
#pragma unroll
    for (int k = 4; k >= 0; k--) {
      int64_t r = vp_bl_div(q, d.shape[k]);
      src += (q - r * d.shape[k]) * d.stride[k];
      q = r;
    }
    ((T *)d.out)[e] = ((const T *)d.in)[src];
  }
};

template <class T>
vp_status launch(const TransposeDesc *descs, int64_t n, const int64_t *units, cudaStream_t s) {
  vp_bl_table t;
  vp_status st = vp_bl_upload(descs, sizeof *descs, n, units, s, &t);
  if (st != VP_OK) return st;
  if (t.total > 0)
    vp_bl_kernel<TransposeDesc, TransposeBody<T>><<<vp_bl_blocks(t.total), vp_bl_threads, 0, s>>>(
        t.offsets, (const TransposeDesc *)t.descs, t.n, t.total, TransposeBody<T>());
  cudaError_t e = cudaGetLastError();
  vp_bl_free(&t, s);
  if (e != cudaSuccess) return vp_cuda_status(e, "transpose: kernel launch");
  return VP_OK;
}

}  // namespace

extern "C" vp_status vp_cuda_transpose(const void *const *in, void *const *out,
                                       const int64_t (*shape)[5], const int64_t (*stride)[5],
                                       int64_t n, size_t elem_size, vp_stream s) {
  if (n < 1) return VP_OK;
  TransposeDesc *d = (TransposeDesc *)malloc((size_t)n * sizeof *d);
  int64_t *units = (int64_t *)malloc((size_t)n * sizeof *units);
  vp_status r = VP_OK;
  if (!d || !units) r = vp_fail(VP_ERR_NOMEM, "transpose: out of host memory");
  for (int64_t i = 0; r == VP_OK && i < n; i++) {
    d[i].in = in[i];
    d[i].out = out[i];
    units[i] = 1;
    for (int k = 0; k < 5; k++) {
      d[i].shape[k] = shape[i][k];
      d[i].stride[k] = stride[i][k];
      units[i] *= shape[i][k];
    }
  }
  cudaStream_t st = (cudaStream_t)s;
  if (r == VP_OK) {
    switch (elem_size) {
      case 1: r = launch<uint8_t>(d, n, units, st); break;
      case 2: r = launch<uint16_t>(d, n, units, st); break;
      case 4: r = launch<uint32_t>(d, n, units, st); break;
      case 8: r = launch<uint64_t>(d, n, units, st); break;
      default: r = vp_fail(VP_ERR_INTERNAL, "transpose: element size %zu", elem_size);
    }
  }
  free(d);
  free(units);
  return r;
}

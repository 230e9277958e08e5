/* slice on the GPU: one launch for the batch, one thread per output
 * element; voxels outside the input take the fill value. */
#include <cuda_runtime_api.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "core/cuda_rt.h"
#include "core/status.h"
}
#include "cuda/batch_launch.h"
#include "cuda/kernels.h"

namespace {

template <class T>
struct SliceBody {
  __device__ void operator()(const vp_bl_desc &d, int64_t e) const {
    const int64_t W = d.out_shape[3], H = d.out_shape[2], D = d.out_shape[1];
    int64_t r = vp_bl_div(e, W);
    int64_t w = e - r * W + d.start[3];
    int64_t q = vp_bl_div(r, H);
    int64_t h = r - q * H + d.start[2];
    int64_t o = vp_bl_div(q, D);
    int64_t z = q - o * D + d.start[1];
    const int64_t iW = d.in_shape[3], iH = d.in_shape[2], iD = d.in_shape[1];
    T v;
    if (w < 0 || w >= iW || h < 0 || h >= iH || z < 0 || z >= iD) {
      memcpy(&v, &d.fill, sizeof v);
    } else {
      v = ((const T *)d.in)[((o * iD + z) * iH + h) * iW + w];
    }
    ((T *)d.out)[e] = v;
  }
};

}  // namespace

extern "C" vp_status vp_cuda_slice(const vp_bl_desc *descs, int64_t n, size_t elem_size,
                                   vp_stream s) {
  int64_t *units = (int64_t *)malloc((size_t)n * sizeof *units);
  if (!units) return vp_fail(VP_ERR_NOMEM, "slice: out of host memory");
  for (int64_t i = 0; i < n; i++) units[i] = descs[i].numel;
  cudaStream_t st = (cudaStream_t)s;
  vp_status r;
  switch (elem_size) {
    case 1: r = vp_bl_run(descs, n, units, st, SliceBody<uint8_t>()); break;
    case 2: r = vp_bl_run(descs, n, units, st, SliceBody<uint16_t>()); break;
    case 4: r = vp_bl_run(descs, n, units, st, SliceBody<uint32_t>()); break;
    case 8: r = vp_bl_run(descs, n, units, st, SliceBody<uint64_t>()); break;
    default: r = vp_fail(VP_ERR_INTERNAL, "slice: element size %zu", elem_size);
  }
  free(units);
  return r;
}

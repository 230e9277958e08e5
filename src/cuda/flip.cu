/* flip on the GPU: one launch for the batch, one thread per output element. */
#include <cuda_runtime_api.h>
#include <stdlib.h>

extern "C" {
#include "core/cuda_rt.h"
#include "core/status.h"
}
#include "cuda/batch_launch.h"
#include "cuda/kernels.h"

namespace {

template <class T>
struct FlipBody {
  __device__ void operator()(const vp_bl_desc &d, int64_t e) const {
    const int64_t W = d.out_shape[3], H = d.out_shape[2], D = d.out_shape[1];
    int64_t r = vp_bl_div(e, W);
    int64_t w = e - r * W;
    int64_t q = vp_bl_div(r, H);
    int64_t h = r - q * H;
    int64_t o = vp_bl_div(q, D);
    int64_t z = q - o * D;
    if (d.flags & VP_BL_FLIP_W) w = W - 1 - w;
    if (d.flags & VP_BL_FLIP_H) h = H - 1 - h;
    if (d.flags & VP_BL_FLIP_D) z = D - 1 - z;
    ((T *)d.out)[e] = ((const T *)d.in)[((o * D + z) * H + h) * W + w];
  }
};

}  // namespace

extern "C" vp_status vp_cuda_flip(const vp_bl_desc *descs, int64_t n, size_t elem_size,
                                  vp_stream s) {
  int64_t *units = (int64_t *)malloc((size_t)n * sizeof *units);
  if (!units) return vp_fail(VP_ERR_NOMEM, "flip: out of host memory");
  for (int64_t i = 0; i < n; i++) units[i] = descs[i].numel;
  cudaStream_t st = (cudaStream_t)s;
  vp_status r;
  switch (elem_size) {
    case 1: r = vp_bl_run(descs, n, units, st, FlipBody<uint8_t>()); break;
    case 2: r = vp_bl_run(descs, n, units, st, FlipBody<uint16_t>()); break;
    case 4: r = vp_bl_run(descs, n, units, st, FlipBody<uint32_t>()); break;
    case 8: r = vp_bl_run(descs, n, units, st, FlipBody<uint64_t>()); break;
    default: r = vp_fail(VP_ERR_INTERNAL, "flip: element size %zu", elem_size);
  }
  free(units);
  return r;
}

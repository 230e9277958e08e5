/* gaussian_noise on the GPU: one launch for the batch, one thread per
 * group of four elements (one Philox draw, two Box-Muller pairs), the
 * words the CPU body uses for the same elements. */
#include <cuda_runtime_api.h>
#include <stdlib.h>

extern "C" {
#include "core/cuda_rt.h"
#include "core/status.h"
}
#include "core/philox.h"
#include "cuda/batch_launch.h"
#include "cuda/kernels.h"

namespace {

template <class T>
__device__ __forceinline__ void copy_group(const vp_bl_desc &d, int64_t e0, int left) {
#pragma unroll
  for (int k = 0; k < 4; k++)
    if (k < left) ((T *)d.out)[e0 + k] = ((const T *)d.in)[e0 + k];
}

struct NoiseBody {
  vp_rng_key key;
  uint32_t iteration;
  vp_dtype dtype;
  int elem_size;
  __device__ void operator()(const vp_bl_desc &d, int64_t g) const {
    const int64_t e0 = g << 2;
    const int left = d.numel - e0 < 4 ? (int)(d.numel - e0) : 4;
    if (!(d.flags & VP_BL_APPLY)) {
      /* a sample that p left alone is copied, never computed */
      switch (elem_size) {
        case 1: copy_group<uint8_t>(d, e0, left); break;
        case 2: copy_group<uint16_t>(d, e0, left); break;
        case 4: copy_group<uint32_t>(d, e0, left); break;
        default: copy_group<uint64_t>(d, e0, left); break;
      }
      return;
    }
    vp_u32x4 r = vp_rng_draw(key, iteration, d.sample, (uint64_t)g);
    vp_f32x2 a = vp_normal2f(r.v[0], r.v[1]), b = vp_normal2f(r.v[2], r.v[3]);
    const float z[4] = {a.x, a.y, b.x, b.y};
#pragma unroll
    for (int k = 0; k < 4; k++)
      if (k < left) vp_noise_elem(d.in, d.out, dtype, e0 + k, d.param[0], d.param[1], z[k]);
  }
};

}  // namespace

extern "C" vp_status vp_cuda_gaussian_noise(const vp_bl_desc *descs, int64_t n, vp_dtype dtype,
                                            vp_rng_key key, uint32_t iteration, vp_stream s) {
  int64_t *units = (int64_t *)malloc((size_t)n * sizeof *units);
  if (!units) return vp_fail(VP_ERR_NOMEM, "gaussian_noise: out of host memory");
  for (int64_t i = 0; i < n; i++) units[i] = (descs[i].numel + 3) >> 2;
  NoiseBody body;
  body.key = key;
  body.iteration = iteration;
  body.dtype = dtype;
  body.elem_size = (int)vp_dtype_size(dtype);
  vp_status r = vp_bl_run(descs, n, units, (cudaStream_t)s, body);
  free(units);
  return r;
}

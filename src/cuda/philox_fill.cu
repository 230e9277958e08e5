/* Uniform random fill, the GPU twin of a CPU loop over vp_rng_draw. */
#include <cuda_runtime_api.h>

extern "C" {
#include "core/cuda_rt.h"
#include "core/status.h"
}
#include "cuda/kernels.h"

namespace {

constexpr int kThreads = 256;
/* Enough blocks to fill any GPU; the grid-stride loop covers the rest. */
constexpr int64_t kMaxBlocks = 65536;

/* One thread per group of four elements, so each Philox call feeds all four
 * of its words. 64-bit indices throughout: n may pass 2^31. */
__global__ void fill_uniform_kernel(float *out, int64_t n, vp_rng_key key, uint32_t iteration,
                                    uint32_t sample) {
  const int64_t groups = (n + 3) >> 2;
  const int64_t stride = (int64_t)blockDim.x * gridDim.x;
  for (int64_t g = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; g < groups; g += stride) {
    vp_u32x4 r = vp_rng_draw(key, iteration, sample, (uint64_t)g);
    const int64_t i0 = g << 2;
    const int left = n - i0 < 4 ? (int)(n - i0) : 4;
#pragma unroll
    for (int k = 0; k < 4; k++)
      if (k < left) out[i0 + k] = vp_u01f(r.v[k]);
  }
}

}  // namespace

extern "C" vp_status vp_cuda_fill_uniform(float *out, int64_t n, vp_rng_key key, uint32_t iteration,
                                          uint32_t sample, vp_stream s) {
  if (n < 0) return vp_fail(VP_ERR_INVALID_ARG, "fill_uniform: n = %lld is negative", (long long)n);
  if (n == 0) return VP_OK;
  if (!out) return vp_fail(VP_ERR_INVALID_ARG, "fill_uniform: out is NULL");
  const int64_t groups = (n + 3) >> 2;
  int64_t blocks = (groups + kThreads - 1) / kThreads;
  if (blocks > kMaxBlocks) blocks = kMaxBlocks;
  fill_uniform_kernel<<<(unsigned)blocks, kThreads, 0, (cudaStream_t)s>>>(out, n, key, iteration,
                                                                          sample);
  VP_CUDA_TRY(cudaGetLastError());
  return VP_OK;
}

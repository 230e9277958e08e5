/* erase on the GPU: one launch for the batch, one thread per element: the
 * fill inside a hole, the input's bytes elsewhere
 * (src/cuda/intensity_kernels.h). */
#include <cuda_runtime_api.h>
#include <stdlib.h>

extern "C" {
#include "core/cuda_rt.h"
#include "core/status.h"
}
#include "cuda/intensity_kernels.h"

namespace {

struct EraseBody {
  vp_dtype t;
  vp_rng_key key;
  uint32_t iteration;
  __device__ void operator()(const vp_erase_desc &d, int64_t e) const {
    vp_erase_elem(&d, t, key, iteration, e);
  }
};

}  // namespace

extern "C" vp_status vp_cuda_erase(const vp_erase_desc *descs, int64_t n, vp_dtype t,
                                   vp_rng_key key, uint32_t iteration, vp_stream s) {
  if (n < 1) return VP_OK;
  int64_t *units = (int64_t *)malloc((size_t)n * sizeof *units);
  if (!units) return vp_fail(VP_ERR_NOMEM, "erase: out of host memory");
  for (int64_t i = 0; i < n; i++) units[i] = descs[i].numel;
  vp_status r = vp_bl_run(descs, n, units, (cudaStream_t)s, EraseBody{t, key, iteration});
  free(units);
  return r;
}

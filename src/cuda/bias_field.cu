/* bias_field on the GPU: one launch for the batch, one thread per element,
 * the field evaluated per voxel (src/cuda/intensity_kernels.h): no field
 * volume is ever stored. */
#include <cuda_runtime_api.h>
#include <stdlib.h>

extern "C" {
#include "core/cuda_rt.h"
#include "core/status.h"
}
#include "cuda/intensity_kernels.h"

namespace {

struct BiasBody {
  vp_dtype t;
  __device__ void operator()(const vp_bias_desc &d, int64_t e) const { vp_bias_elem(&d, t, e); }
};

}  // namespace

extern "C" vp_status vp_cuda_bias_field(const vp_bias_desc *descs, int64_t n, vp_dtype t,
                                        vp_stream s) {
  if (n < 1) return VP_OK;
  int64_t *units = (int64_t *)malloc((size_t)n * sizeof *units);
  if (!units) return vp_fail(VP_ERR_NOMEM, "bias_field: out of host memory");
  for (int64_t i = 0; i < n; i++) units[i] = descs[i].numel;
  vp_status r = vp_bl_run(descs, n, units, (cudaStream_t)s, BiasBody{t});
  free(units);
  return r;
}

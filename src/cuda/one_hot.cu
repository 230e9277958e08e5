/* one_hot on the GPU: one launch for the batch, one thread per label voxel
 * writing its num_classes outputs (neighbouring threads write neighbouring
 * voxels of each channel plane, so every store is coalesced). */
#include <cuda_runtime_api.h>
#include <stdlib.h>

extern "C" {
#include "core/cuda_rt.h"
#include "core/status.h"
}
#include "cuda/intensity_kernels.h"

namespace {

struct OneHotBody {
  vp_onehot_spec sp;
  vp_dtype tin, tout;
  __device__ void operator()(const vp_bl_desc &d, int64_t v) const {
    vp_onehot_voxel(&sp, d.in, tin, d.out, tout, d.numel, v);
  }
};

}  // namespace

extern "C" vp_status vp_cuda_one_hot(const vp_bl_desc *descs, int64_t n, vp_dtype tin,
                                     vp_dtype tout, const vp_onehot_spec *spec, vp_stream s) {
  if (n < 1) return VP_OK;
  int64_t *units = (int64_t *)malloc((size_t)n * sizeof *units);
  if (!units) return vp_fail(VP_ERR_NOMEM, "one_hot: out of host memory");
  for (int64_t i = 0; i < n; i++) units[i] = descs[i].numel;
  vp_status r = vp_bl_run(descs, n, units, (cudaStream_t)s, OneHotBody{*spec, tin, tout});
  free(units);
  return r;
}

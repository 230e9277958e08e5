/* C-callable host wrappers of voxpipe's CUDA kernels (src/cuda/*.cu).
 * Defined only when the library is built with its CUDA backend
 * (VP_HAVE_CUDA). Each launches on stream s, on the calling thread's
 * current device, returns without synchronising, and reports launch
 * errors as VP_ERR_CUDA (errors of the kernel itself show at the next
 * synchronisation). */
#ifndef VP_CUDA_KERNELS_H
#define VP_CUDA_KERNELS_H

#include <stdint.h>

#include "core/philox.h"
#include "voxpipe.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An opaque cudaStream_t, as in core/cuda_rt.h. */
typedef void *vp_stream;

/* out[i] = vp_u01f(vp_rng_draw(key, iteration, sample, i >> 2).v[i & 3])
 * for i in [0, n): the numbers a CPU loop computes, bit for bit. out is a
 * device (or pinned) address of n floats; n = 0 launches nothing. */
vp_status vp_cuda_fill_uniform(float *out, int64_t n, vp_rng_key key, uint32_t iteration,
                               uint32_t sample, vp_stream s);

#ifdef __cplusplus
}
#endif
#endif

/* Cubic's separable path on the GPU (src/cuda/resample_separable.cu):
 * the samples of an axis-aligned map (src/ops/bspline.h's plan) whose lines
 * fit shared memory run as up to three line passes; the cubic driver
 * (src/cuda/resample_cubic.cu) runs the others through the coefficient
 * volume. */
#ifndef VP_CUDA_RESAMPLE_SEPARABLE_H
#define VP_CUDA_RESAMPLE_SEPARABLE_H

#include <stdint.h>

#include "cuda/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Runs the samples the separable path takes and sets taken[i] to 1 for
 * each (0 for the others). Descriptors already checked; in/out are device
 * pointers. */
vp_status vp_cuda_cubic_separable(const vp_resample_desc *d, int64_t n, vp_dtype in, vp_dtype out,
                                  vp_border border, vp_stream stream, unsigned char *taken);

#ifdef __cplusplus
}
#endif
#endif

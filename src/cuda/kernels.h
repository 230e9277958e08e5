/* C-callable host wrappers of voxpipe's CUDA kernels (the .cu files in src/cuda).
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

/* (inside the C linkage block: core/threadpool.h, which it includes, has
 * none of its own) */
#include "ops/resample.h"

/* An opaque cudaStream_t, as in core/cuda_rt.h. */
typedef void *vp_stream;

/* out[i] = vp_u01f(vp_rng_draw(key, iteration, sample, i >> 2).v[i & 3])
 * for i in [0, n): the numbers a CPU loop computes, bit for bit. out is a
 * device (or pinned) address of n floats; n = 0 launches nothing. */
vp_status vp_cuda_fill_uniform(float *out, int64_t n, vp_rng_key key, uint32_t iteration,
                               uint32_t sample, vp_stream s);

/* Batched operator bodies (src/cuda/<op>.cu): one launch serves the n
 * samples of a host table of descriptors (src/cuda/batch_launch.h), which
 * is uploaded on s and freed in stream order. elem_size: bytes per element
 * (1, 2, 4 or 8) for the operators that only move elements. */
struct vp_bl_desc;
vp_status vp_cuda_flip(const struct vp_bl_desc *descs, int64_t n, size_t elem_size, vp_stream s);
vp_status vp_cuda_slice(const struct vp_bl_desc *descs, int64_t n, size_t elem_size, vp_stream s);
/* (cast and gaussian_noise run on the pointwise engine: src/cuda/pointwise.h) */
/* transpose over n samples: output element e of sample i (row-major over
 * shape[i], 5 axes, leading ones of extent 1) is input element
 * sum_k idx_k(e) * stride[i][k]; in/out are device pointers. */
vp_status vp_cuda_transpose(const void *const *in, void *const *out, const int64_t (*shape)[5],
                            const int64_t (*stride)[5], int64_t n, size_t elem_size, vp_stream s);

/* The resampling engine (src/ops/resample.h) over n samples: host_descs is
 * a host table whose in/out (and disp.nodes) are device pointers; it is
 * checked as vp_resample_cpu checks it and uploaded on `stream`. */
vp_status vp_cuda_resample(const vp_resample_desc *host_descs, int64_t n, vp_dtype in,
                           vp_dtype out, vp_interp interp, vp_border border, vp_stream stream);
/* Its cubic path (src/cuda/resample_cubic.cu): prefilter into scratch
 * coefficients, then the coefficient stage; descriptors already checked. */
vp_status vp_cuda_resample_cubic(const vp_resample_desc *host_descs, int64_t n, vp_dtype in,
                                 vp_dtype out, vp_border border, vp_stream stream);

#ifdef __cplusplus
}
#endif
#endif

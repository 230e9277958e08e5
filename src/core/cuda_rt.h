/* The CUDA runtime behind statuses: every CUDA error becomes VP_ERR_CUDA
 * (or VP_ERR_NO_DEVICE / VP_ERR_NOMEM) with a message naming the call.
 * Built against cudart when CUDA is found (VP_HAVE_CUDA); otherwise every
 * call reports VP_ERR_NO_DEVICE. */
#ifndef VP_CORE_CUDA_RT_H
#define VP_CORE_CUDA_RT_H

#include <stddef.h>

#include "voxpipe.h"

/* An opaque cudaStream_t. */
typedef void *vp_stream;

vp_status vp_cuda_device_alloc(int device, size_t bytes, void **out);
/* While set (non-NULL) on a thread, that thread's device allocations are
 * ordered on `s` and return at once; otherwise they are ordered on the
 * legacy stream and wait for it. The caller must synchronise s before
 * the memory is used on another stream or freed (an eager call does, at
 * its end, success or not). Returns the previous setting. */
vp_stream vp_cuda_set_alloc_stream(vp_stream s);
void vp_cuda_device_free(int device, void *ptr);
vp_status vp_cuda_pinned_alloc(size_t bytes, void **out);
void vp_cuda_pinned_free(void *ptr, size_t bytes);
void vp_cuda_pinned_trim(void);
vp_status vp_cuda_memcpy(void *dst, const void *src, size_t bytes);
vp_status vp_cuda_memcpy_async(void *dst, const void *src, size_t bytes, vp_stream s);
vp_status vp_cuda_stream_create(int device, vp_stream *out);
void vp_cuda_stream_destroy(vp_stream s);
vp_status vp_cuda_stream_sync(vp_stream s);
/* Work queued on `waiter` from now on waits for the work queued so far on
 * `on` (NULL: the legacy default stream): an event, no host wait. */
vp_status vp_cuda_stream_wait(vp_stream waiter, vp_stream on);
vp_status vp_cuda_set_device(int device);

/* src/core/cuda_upload.c. Every stream-ordered device allocation of the
 * library goes through vp_cuda_malloc_async (so the fault injector of
 * core/memory.h reaches it); release with cudaFreeAsync on a stream
 * ordered after the last use. `what` names the caller in messages. */
vp_status vp_cuda_malloc_async(void **out, size_t bytes, vp_stream s, const char *what);
/* Host-to-device copy of `bytes` on stream s that never blocks the host on
 * the stream's queued work: tables up to 64 KiB are staged in a pinned
 * ring; `src` may be reused as soon as the call returns. */
vp_status vp_cuda_upload(void *dst, const void *src, size_t bytes, vp_stream s, const char *what);

#ifdef VP_HAVE_CUDA
#include <cuda_runtime_api.h>
/* Turns a cudaError_t into a status with "what: cudaErrorX (text)". */
vp_status vp_cuda_status(cudaError_t e, const char *what);
#define VP_CUDA_TRY(call)                                                      \
  do {                                                                         \
    cudaError_t vp_cuda_e_ = (call);                                           \
    if (vp_cuda_e_ != cudaSuccess) return vp_cuda_status(vp_cuda_e_, #call);   \
  } while (0)
#endif

#endif

/* Stream-ordered device allocations (with the fault injector) and small
 * host-to-device uploads staged through pinned memory.
 *
 * Why staging: a cudaMemcpyAsync from pageable memory may block the host
 * until the stream has drained the work queued before it (measured: about
 * 100 us per eager call on the H100, more than most of our kernels). From
 * page-locked memory the copy is truly asynchronous, so the descriptor
 * tables of a batched launch are copied into a slot of a pinned ring and
 * uploaded from there. A slot is reused only after the event recorded
 * behind its copy has completed, so a queued copy never reads bytes that a
 * later call has overwritten. */
#include <pthread.h>
#include <string.h>

#include "core/cuda_rt.h"
#include "core/memory.h"
#include "core/status.h"

#ifndef VP_HAVE_CUDA

vp_status vp_cuda_malloc_async(void **out, size_t bytes, vp_stream s, const char *what) {
  (void)bytes, (void)s;
  *out = NULL;
  return vp_fail(VP_ERR_NO_DEVICE, "%s: no CUDA device (voxpipe was built without CUDA)", what);
}
vp_status vp_cuda_upload(void *dst, const void *src, size_t bytes, vp_stream s, const char *what) {
  (void)dst, (void)src, (void)bytes, (void)s;
  return vp_fail(VP_ERR_NO_DEVICE, "%s: no CUDA device (voxpipe was built without CUDA)", what);
}

#else

vp_status vp_cuda_malloc_async(void **out, size_t bytes, vp_stream s, const char *what) {
  *out = NULL;
  if (vp_mem_injected_device_failure(bytes))
    return vp_fail(VP_ERR_NOMEM, "%s: device allocation of %zu bytes failed (injected fault)", what,
                   bytes);
  void *p = NULL;
  cudaError_t e = cudaMallocAsync(&p, bytes ? bytes : 1, (cudaStream_t)s);
  if (e != cudaSuccess) {
    vp_status st = vp_cuda_status(e, "cudaMallocAsync");
    return vp_fail_prefix(st, "%s: device allocation of %zu bytes", what, bytes);
  }
  *out = p;
  return VP_OK;
}

#define STAGE_SLOTS 64
#define STAGE_SLOT_BYTES ((size_t)64 << 10)
#define STAGE_DEVICES 16

typedef struct stage_ring {
  unsigned char *mem; /* STAGE_SLOTS * STAGE_SLOT_BYTES, page-locked */
  cudaEvent_t ev[STAGE_SLOTS];
  unsigned char used[STAGE_SLOTS];
  unsigned next;
  int failed; /* setup failed once: stay on the pageable path */
} stage_ring;

static stage_ring g_ring[STAGE_DEVICES];
static pthread_mutex_t g_ring_lock = PTHREAD_MUTEX_INITIALIZER;

/* Lazily sets up the ring of the current device; 0 when unavailable. */
static int ring_ready(stage_ring *r) {
  if (r->mem) return 1;
  if (r->failed) return 0;
  if (cudaHostAlloc((void **)&r->mem, STAGE_SLOTS * STAGE_SLOT_BYTES, cudaHostAllocPortable) !=
      cudaSuccess) {
    r->mem = NULL;
    r->failed = 1;
    (void)cudaGetLastError();
    return 0;
  }
  for (int i = 0; i < STAGE_SLOTS; i++) {
    if (cudaEventCreateWithFlags(&r->ev[i], cudaEventDisableTiming) != cudaSuccess) {
      for (int j = 0; j < i; j++) (void)cudaEventDestroy(r->ev[j]);
      (void)cudaFreeHost(r->mem);
      r->mem = NULL;
      r->failed = 1;
      (void)cudaGetLastError();
      return 0;
    }
  }
  return 1;
}

vp_status vp_cuda_upload(void *dst, const void *src, size_t bytes, vp_stream s, const char *what) {
  if (bytes == 0) return VP_OK;
  int dev = -1;
  cudaError_t e = cudaGetDevice(&dev);
  if (e != cudaSuccess) return vp_fail_prefix(vp_cuda_status(e, "cudaGetDevice"), "%s", what);
  if (bytes <= STAGE_SLOT_BYTES && dev >= 0 && dev < STAGE_DEVICES) {
    pthread_mutex_lock(&g_ring_lock);
    stage_ring *r = &g_ring[dev];
    if (ring_ready(r)) {
      unsigned i = r->next++ % STAGE_SLOTS;
      /* nearly always complete already: 63 uploads have been queued since */
      if (r->used[i]) e = cudaEventSynchronize(r->ev[i]);
      if (e == cudaSuccess) {
        unsigned char *slot = r->mem + (size_t)i * STAGE_SLOT_BYTES;
        memcpy(slot, src, bytes);
        e = cudaMemcpyAsync(dst, slot, bytes, cudaMemcpyHostToDevice, (cudaStream_t)s);
        if (e == cudaSuccess) e = cudaEventRecord(r->ev[i], (cudaStream_t)s);
        /* a failed record leaves the slot unused: the next user must not
         * wait on a stale event, and the copy (if queued) finished or the
         * stream is broken anyway */
        r->used[i] = e == cudaSuccess;
        if (e != cudaSuccess) (void)cudaStreamSynchronize((cudaStream_t)s);
      }
      pthread_mutex_unlock(&g_ring_lock);
      if (e != cudaSuccess)
        return vp_fail_prefix(vp_cuda_status(e, "cudaMemcpyAsync"), "%s: upload of %zu bytes", what,
                              bytes);
      return VP_OK;
    }
    pthread_mutex_unlock(&g_ring_lock);
  }
  /* large tables: pageable copy (the runtime stages it before returning) */
  e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, (cudaStream_t)s);
  if (e != cudaSuccess)
    return vp_fail_prefix(vp_cuda_status(e, "cudaMemcpyAsync"), "%s: upload of %zu bytes", what,
                          bytes);
  return VP_OK;
}

#endif

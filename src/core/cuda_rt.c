#include "core/cuda_rt.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/status.h"

#ifndef VP_HAVE_CUDA

static vp_status no_cuda(const char *what) {
  return vp_fail(VP_ERR_NO_DEVICE,
                 "%s: no CUDA device (voxpipe was built without its CUDA backend)", what);
}
int vp_cuda_device_count(void) { return 0; }
vp_status vp_cuda_device_alloc(int device, size_t bytes, void **out) {
  (void)device, (void)bytes;
  *out = NULL;
  return no_cuda("device allocation");
}
void vp_cuda_device_free(int device, void *ptr) { (void)device, (void)ptr; }
vp_stream vp_cuda_set_alloc_stream(vp_stream s) {
  (void)s;
  return NULL;
}
vp_status vp_cuda_pinned_alloc(size_t bytes, void **out) {
  (void)bytes;
  *out = NULL;
  return no_cuda("pinned allocation");
}
void vp_cuda_pinned_free(void *ptr, size_t bytes) { (void)ptr, (void)bytes; }
void vp_cuda_pinned_trim(void) {}
vp_status vp_cuda_memcpy(void *d, const void *s, size_t n) {
  (void)d, (void)s, (void)n;
  return no_cuda("device copy");
}
vp_status vp_cuda_memcpy_async(void *d, const void *s, size_t n, vp_stream st) {
  (void)d, (void)s, (void)n, (void)st;
  return no_cuda("device copy");
}
vp_status vp_cuda_stream_create(int device, vp_stream *out) {
  (void)device;
  *out = NULL;
  return no_cuda("stream creation");
}
void vp_cuda_stream_destroy(vp_stream s) { (void)s; }
vp_status vp_cuda_stream_sync(vp_stream s) {
  (void)s;
  return no_cuda("stream synchronisation");
}
vp_status vp_cuda_stream_wait(vp_stream waiter, vp_stream on) {
  (void)waiter;
  (void)on;
  return no_cuda("stream ordering");
}
vp_status vp_cuda_set_device(int device) {
  (void)device;
  return no_cuda("device selection");
}

#else

vp_status vp_cuda_status(cudaError_t e, const char *what) {
  vp_status s = VP_ERR_CUDA;
  if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver || e == cudaErrorInvalidDevice)
    s = VP_ERR_NO_DEVICE;
  else if (e == cudaErrorMemoryAllocation)
    s = VP_ERR_NOMEM;
  (void)cudaGetLastError(); /* clear the sticky-free error state */
  /* without a GPU the runtime reports several codes (stub driver, init
   * failure); they all mean the same to the caller */
  if (s == VP_ERR_CUDA && vp_cuda_device_count() == 0) s = VP_ERR_NO_DEVICE;
  if (s == VP_ERR_NO_DEVICE)
    return vp_fail(s, "%s: no usable CUDA device: %s (%s)", what, cudaGetErrorName(e),
                   cudaGetErrorString(e));
  return vp_fail(s, "%s: %s (%s)", what, cudaGetErrorName(e), cudaGetErrorString(e));
}

int vp_cuda_device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

vp_status vp_cuda_set_device(int device) {
  int n = vp_cuda_device_count();
  if (device < 0 || device >= n)
    return vp_fail(n ? VP_ERR_INVALID_ARG : VP_ERR_NO_DEVICE,
                   "device %d: %d CUDA device(s) present", device, n);
  VP_CUDA_TRY(cudaSetDevice(device));
  return VP_OK;
}

/* Keep freed device memory in each device's default pool instead of
 * returning it to the driver at every synchronisation. */
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static void pool_setup(void) {
  int n = vp_cuda_device_count();
  for (int d = 0; d < n; d++) {
    cudaMemPool_t pool;
    if (cudaDeviceGetDefaultMemPool(&pool, d) == cudaSuccess) {
      uint64_t threshold = UINT64_MAX;
      (void)cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold);
    }
  }
  (void)cudaGetLastError();
}

static _Thread_local vp_stream tls_alloc_stream;

vp_stream vp_cuda_set_alloc_stream(vp_stream s) {
  vp_stream old = tls_alloc_stream;
  tls_alloc_stream = s;
  return old;
}

vp_status vp_cuda_device_alloc(int device, size_t bytes, void **out) {
  *out = NULL;
  VP_TRY(vp_cuda_set_device(device));
  pthread_once(&pool_once, pool_setup);
  void *p = NULL;
  if (tls_alloc_stream) {
    /* an eager call's outputs: ordered on the stream its kernels use, which
     * it synchronises before anyone else sees them (a wait on the legacy
     * stream per output cost ~5 us each) */
    cudaError_t e = cudaMallocAsync(&p, bytes ? bytes : 1, (cudaStream_t)tls_alloc_stream);
    if (e != cudaSuccess) return vp_cuda_status(e, "cudaMallocAsync");
    *out = p;
    return VP_OK;
  }
  cudaError_t e = cudaMallocAsync(&p, bytes ? bytes : 1, 0);
  if (e != cudaSuccess) return vp_cuda_status(e, "cudaMallocAsync");
  e = cudaStreamSynchronize(0);
  if (e != cudaSuccess) {
    (void)cudaFreeAsync(p, 0);
    return vp_cuda_status(e, "cudaStreamSynchronize");
  }
  *out = p;
  return VP_OK;
}

void vp_cuda_device_free(int device, void *ptr) {
  if (!ptr) return;
  if (cudaSetDevice(device) == cudaSuccess) (void)cudaFreeAsync(ptr, 0);
  (void)cudaGetLastError();
}

/* Pinned blocks are costly to allocate (the driver maps them), so freed
 * ones are kept in a small LIFO cache and reused for requests they fit
 * without wasting more than half of the block. */
#define PINNED_CACHE_SLOTS 32
#define PINNED_CACHE_MAX_BYTES ((size_t)2 << 30)
static struct {
  pthread_mutex_t lock;
  void *ptr[PINNED_CACHE_SLOTS];
  size_t size[PINNED_CACHE_SLOTS];
  int n;
  size_t bytes;
} pinned = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Blocks come in power-of-two sizes, and the cache hands out a block only
 * for the same size class, so a block is never smaller than the request. */
#define PINNED_MAX_BYTES ((size_t)1 << 62)
static size_t pinned_round(size_t b) {
  size_t r = 4096;
  while (r < b) r <<= 1; /* b <= PINNED_MAX_BYTES: ends before r wraps */
  return r;
}

vp_status vp_cuda_pinned_alloc(size_t bytes, void **out) {
  *out = NULL;
  if (bytes > PINNED_MAX_BYTES)
    return vp_fail(VP_ERR_NOMEM, "pinned allocation of %zu bytes: more than %zu bytes", bytes,
                   PINNED_MAX_BYTES);
  if (vp_cuda_device_count() == 0)
    return vp_fail(VP_ERR_NO_DEVICE, "pinned allocation of %zu bytes: no CUDA device present",
                   bytes);
  size_t want = pinned_round(bytes);
  pthread_mutex_lock(&pinned.lock);
  for (int i = pinned.n - 1; i >= 0; i--) {
    if (pinned.size[i] == want) {
      *out = pinned.ptr[i];
      pinned.bytes -= pinned.size[i];
      pinned.ptr[i] = pinned.ptr[pinned.n - 1];
      pinned.size[i] = pinned.size[pinned.n - 1];
      pinned.n--;
      break;
    }
  }
  pthread_mutex_unlock(&pinned.lock);
  if (*out) return VP_OK;
  void *p = NULL;
  cudaError_t e = cudaHostAlloc(&p, want, cudaHostAllocPortable);
  if (e == cudaErrorMemoryAllocation) {
    /* cached blocks of other sizes may be what stands in the way */
    (void)cudaGetLastError();
    vp_cuda_pinned_trim();
    e = cudaHostAlloc(&p, want, cudaHostAllocPortable);
  }
  if (e != cudaSuccess) return vp_cuda_status(e, "cudaHostAlloc");
  *out = p;
  return VP_OK;
}

void vp_cuda_pinned_free(void *ptr, size_t bytes) {
  if (!ptr) return;
  if (bytes > PINNED_MAX_BYTES) bytes = PINNED_MAX_BYTES; /* never allocated; keeps round finite */
  size_t size = pinned_round(bytes);
  pthread_mutex_lock(&pinned.lock);
  if (pinned.n < PINNED_CACHE_SLOTS && pinned.bytes + size <= PINNED_CACHE_MAX_BYTES) {
    pinned.ptr[pinned.n] = ptr;
    pinned.size[pinned.n] = size;
    pinned.n++;
    pinned.bytes += size;
    ptr = NULL;
  }
  pthread_mutex_unlock(&pinned.lock);
  if (ptr) (void)cudaFreeHost(ptr);
}

void vp_cuda_pinned_trim(void) {
  pthread_mutex_lock(&pinned.lock);
  for (int i = 0; i < pinned.n; i++) (void)cudaFreeHost(pinned.ptr[i]);
  pinned.n = 0;
  pinned.bytes = 0;
  pthread_mutex_unlock(&pinned.lock);
}

vp_status vp_cuda_memcpy(void *dst, const void *src, size_t bytes) {
  VP_CUDA_TRY(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault));
  return VP_OK;
}

vp_status vp_cuda_memcpy_async(void *dst, const void *src, size_t bytes, vp_stream s) {
  VP_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, (cudaStream_t)s));
  return VP_OK;
}

vp_status vp_cuda_stream_create(int device, vp_stream *out) {
  *out = NULL;
  VP_TRY(vp_cuda_set_device(device));
  cudaStream_t s;
  VP_CUDA_TRY(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  *out = s;
  return VP_OK;
}

void vp_cuda_stream_destroy(vp_stream s) {
  if (s) (void)cudaStreamDestroy((cudaStream_t)s);
}

vp_status vp_cuda_stream_sync(vp_stream s) {
  VP_CUDA_TRY(cudaStreamSynchronize((cudaStream_t)s));
  return VP_OK;
}

/* One event per thread and device serves every wait: cudaStreamWaitEvent
 * takes the event's state when it is called, so re-recording it later is
 * safe. Freed with the thread. */
static pthread_key_t wait_key;
static pthread_once_t wait_once = PTHREAD_ONCE_INIT;
static int wait_key_ok;
#define WAIT_EVENT_DEVICES 16
static void wait_events_free(void *p) {
  cudaEvent_t *ev = p;
  for (int d = 0; d < WAIT_EVENT_DEVICES; d++)
    if (ev[d]) (void)cudaEventDestroy(ev[d]);
  free(ev);
}
static void wait_init(void) { wait_key_ok = pthread_key_create(&wait_key, wait_events_free) == 0; }

vp_status vp_cuda_stream_wait(vp_stream waiter, vp_stream on) {
  int device;
  VP_CUDA_TRY(cudaGetDevice(&device));
  pthread_once(&wait_once, wait_init);
  cudaEvent_t *ev = wait_key_ok ? pthread_getspecific(wait_key) : NULL;
  if (!ev && wait_key_ok) {
    ev = calloc(WAIT_EVENT_DEVICES, sizeof *ev);
    if (ev && pthread_setspecific(wait_key, ev) != 0) {
      free(ev);
      ev = NULL;
    }
  }
  cudaStream_t src = on ? (cudaStream_t)on : cudaStreamLegacy;
  if (!ev || device < 0 || device >= WAIT_EVENT_DEVICES) {
    /* no per-thread event: the host waits instead */
    VP_CUDA_TRY(cudaStreamSynchronize(src));
    return VP_OK;
  }
  if (!ev[device]) VP_CUDA_TRY(cudaEventCreateWithFlags(&ev[device], cudaEventDisableTiming));
  VP_CUDA_TRY(cudaEventRecord(ev[device], src));
  VP_CUDA_TRY(cudaStreamWaitEvent((cudaStream_t)waiter, ev[device], 0));
  return VP_OK;
}

#endif

int vp_has_cuda(void) {
#ifdef VP_HAVE_CUDA
  return 1;
#else
  return 0;
#endif
}

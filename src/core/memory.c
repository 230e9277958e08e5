#include "core/memory.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

#include "core/cuda_rt.h"
#include "core/status.h"

/* The allocation fault injector: armed flag first so that the common path
 * costs one relaxed load. */
static atomic_int g_fail_armed;
static _Atomic int64_t g_fail_budget, g_alloc_count;

void vp_debug_fail_alloc_after(int64_t n) {
  atomic_store(&g_fail_armed, 0);
  atomic_store(&g_alloc_count, 0);
  atomic_store(&g_fail_budget, n);
  if (n >= 0) atomic_store(&g_fail_armed, 1);
}

int64_t vp_debug_alloc_count(void) { return atomic_load(&g_alloc_count); }

static _Atomic size_t g_fail_larger;
void vp_debug_fail_alloc_larger_than(size_t bytes) { atomic_store(&g_fail_larger, bytes); }

static int injected_alloc_failure(size_t bytes) {
  size_t larger = atomic_load_explicit(&g_fail_larger, memory_order_relaxed);
  if (larger && bytes > larger) return 1;
  if (!atomic_load_explicit(&g_fail_armed, memory_order_relaxed)) return 0;
  atomic_fetch_add(&g_alloc_count, 1);
  return atomic_fetch_sub(&g_fail_budget, 1) <= 0;
}

static atomic_int g_dev_armed;
static _Atomic int64_t g_dev_budget, g_dev_count;

void vp_debug_fail_device_alloc_after(int64_t n) {
  atomic_store(&g_dev_armed, 0);
  atomic_store(&g_dev_count, 0);
  atomic_store(&g_dev_budget, n);
  if (n >= 0) atomic_store(&g_dev_armed, 1);
}

int64_t vp_debug_device_alloc_count(void) { return atomic_load(&g_dev_count); }

int vp_mem_injected_device_failure(size_t bytes) {
  (void)bytes;
  if (!atomic_load_explicit(&g_dev_armed, memory_order_relaxed)) return 0;
  atomic_fetch_add(&g_dev_count, 1);
  return atomic_fetch_sub(&g_dev_budget, 1) <= 0;
}

/* Bytes of physical memory, 0 when unknown. A host request larger than
 * the machine fails here, before the allocator: with overcommit it could
 * otherwise succeed and kill the process (OOM) once the pages are touched,
 * and sanitizer allocators abort on such sizes instead of returning NULL. */
static uint64_t physical_bytes(void) {
  static _Atomic uint64_t cached;
  uint64_t v = atomic_load_explicit(&cached, memory_order_relaxed);
  if (v) return v;
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return 0;
  v = (uint64_t)pages * (uint64_t)page;
  atomic_store_explicit(&cached, v, memory_order_relaxed);
  return v;
}

vp_status vp_mem_alloc(vp_memkind kind, int device, size_t bytes, void **out) {
  *out = NULL;
  switch (kind) {
    case VP_MEM_HOST: {
      if (injected_alloc_failure(bytes))
        return vp_fail(VP_ERR_NOMEM, "host allocation of %zu bytes failed (injected fault)",
                       bytes);
      size_t n = bytes ? (bytes + 63) & ~(size_t)63 : 64;
      if (n < bytes) return vp_fail(VP_ERR_OVERFLOW, "host allocation of %zu bytes overflows", bytes);
      uint64_t ram = physical_bytes();
      if (ram && (uint64_t)bytes > ram)
        return vp_fail(VP_ERR_NOMEM,
                       "host allocation of %zu bytes (%.1f GiB) exceeds this machine's memory "
                       "(%.1f GiB)",
                       bytes, (double)bytes / 1073741824.0, (double)ram / 1073741824.0);
      void *p = aligned_alloc(64, n);
      if (!p) return vp_fail(VP_ERR_NOMEM, "host allocation of %zu bytes failed", bytes);
#ifdef MADV_HUGEPAGE
      /* Large buffers on transparent huge pages where the system leaves it
       * to madvise (as NumPy does from 4 MiB): first touches of a fresh
       * 36 MB label volume cost 11 ms in 4 KiB faults, 3 ms in 2 MiB ones.
       * Advice only: a refusal changes nothing. */
      if (n >= ((size_t)4 << 20)) {
        const long ps = sysconf(_SC_PAGESIZE);
        const uintptr_t pg = ps > 0 ? (uintptr_t)ps : 4096, b = ((uintptr_t)p + pg - 1) & ~(pg - 1);
        const uintptr_t e = ((uintptr_t)p + n) & ~(pg - 1);
        if (e > b) (void)madvise((void *)b, e - b, MADV_HUGEPAGE);
      }
#endif
      *out = p;
      return VP_OK;
    }
    case VP_MEM_PINNED:
      if (injected_alloc_failure(bytes))
        return vp_fail(VP_ERR_NOMEM, "pinned allocation of %zu bytes failed (injected fault)",
                       bytes);
      return vp_cuda_pinned_alloc(bytes, out);
    case VP_MEM_DEVICE:
      if (vp_mem_injected_device_failure(bytes))
        return vp_fail(VP_ERR_NOMEM, "device allocation of %zu bytes failed (injected fault)",
                       bytes);
      return vp_cuda_device_alloc(device, bytes, out);
  }
  return vp_fail(VP_ERR_INVALID_ARG, "unknown memory kind %d", (int)kind);
}

void vp_mem_free(vp_memkind kind, int device, void *ptr, size_t bytes) {
  if (!ptr) return;
  switch (kind) {
    case VP_MEM_HOST: free(ptr); return;
    case VP_MEM_PINNED: vp_cuda_pinned_free(ptr, bytes); return;
    case VP_MEM_DEVICE: vp_cuda_device_free(device, ptr); return;
  }
}

vp_status vp_mem_copy(void *dst, vp_memkind dkind, const void *src, vp_memkind skind,
                      size_t bytes) {
  if (bytes == 0) return VP_OK;
  if (dkind != VP_MEM_DEVICE && skind != VP_MEM_DEVICE) {
    memcpy(dst, src, bytes);
    return VP_OK;
  }
  return vp_cuda_memcpy(dst, src, bytes);
}

void vp_mem_trim(void) { vp_cuda_pinned_trim(); }

#include "core/memory.h"

#include <stdlib.h>
#include <string.h>

#include "core/cuda_rt.h"
#include "core/status.h"

vp_status vp_mem_alloc(vp_memkind kind, int device, size_t bytes, void **out) {
  *out = NULL;
  switch (kind) {
    case VP_MEM_HOST: {
      size_t n = bytes ? (bytes + 63) & ~(size_t)63 : 64;
      if (n < bytes) return vp_fail(VP_ERR_OVERFLOW, "host allocation of %zu bytes overflows", bytes);
      void *p = aligned_alloc(64, n);
      if (!p) return vp_fail(VP_ERR_NOMEM, "host allocation of %zu bytes failed", bytes);
      *out = p;
      return VP_OK;
    }
    case VP_MEM_PINNED:
      return vp_cuda_pinned_alloc(bytes, out);
    case VP_MEM_DEVICE:
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

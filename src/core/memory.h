/* Host, pinned and device memory behind one interface. Ownership: whoever
 * allocates with vp_mem_alloc frees with vp_mem_free and the same kind. */
#ifndef VP_CORE_MEMORY_H
#define VP_CORE_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#include "voxpipe.h"

/* Host allocations are 64-byte aligned. Device allocations come from CUDA's
 * stream-ordered pool (cudaMallocAsync on the device's default pool);
 * pinned ones from a recycling pool of page-locked blocks. Zero bytes gives
 * a valid, unique pointer. */
vp_status vp_mem_alloc(vp_memkind kind, int device, size_t bytes, void **out);
void vp_mem_free(vp_memkind kind, int device, void *ptr, size_t bytes);

/* Copies between any two kinds (synchronous). */
vp_status vp_mem_copy(void *dst, vp_memkind dkind, const void *src, vp_memkind skind,
                      size_t bytes);

/* Gives cached pinned blocks back to the system. */
void vp_mem_trim(void);

/* Test hook (fault injection, tests/c/test_faults.c): after n more host
 * allocations through vp_mem_alloc succeed, every later one fails with
 * VP_ERR_NOMEM until disarmed with n < 0. Inert (one relaxed atomic load)
 * unless armed; thread-safe. */
void vp_debug_fail_alloc_after(int64_t n);
/* Host allocations through vp_mem_alloc since the hook was last armed. */
int64_t vp_debug_alloc_count(void);
/* Test hook: host allocations of more than `bytes` fail with VP_ERR_NOMEM
 * ("(injected fault)"); 0 disarms. */
void vp_debug_fail_alloc_larger_than(size_t bytes);

/* Test hook: the same for device allocations (vp_mem_alloc of
 * VP_MEM_DEVICE and the stream-ordered vp_cuda_malloc_async behind every
 * kernel's workspace): after n more succeed, every later one fails with
 * VP_ERR_NOMEM until disarmed with n < 0. */
void vp_debug_fail_device_alloc_after(int64_t n);
int64_t vp_debug_device_alloc_count(void);
/* Internal: 1 when the device injector fails this allocation. */
int vp_mem_injected_device_failure(size_t bytes);

#endif

/* Host, pinned and device memory behind one interface. Ownership: whoever
 * allocates with vp_mem_alloc frees with vp_mem_free and the same kind. */
#ifndef VP_CORE_MEMORY_H
#define VP_CORE_MEMORY_H

#include <stddef.h>

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

#endif

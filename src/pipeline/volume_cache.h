/* A bounded cache of decoded volumes (image and label of a case) in host
 * memory, least recently used out first, so later epochs skip reading and
 * decoding. Thread-safe: the reader's pool workers share it. Cached tensors
 * are shared read-only (outputs that need a window copy out of them). */
#ifndef VP_PIPELINE_VOLUME_CACHE_H
#define VP_PIPELINE_VOLUME_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "voxpipe.h"

typedef struct vp_volume_cache vp_volume_cache;

vp_status vp_volume_cache_create(size_t max_bytes, vp_volume_cache **out);
void vp_volume_cache_destroy(vp_volume_cache *c);
/* 1 and new references in *image / *label (label may be NULL) on a hit. */
int vp_volume_cache_get(vp_volume_cache *c, int64_t key, vp_tensor **image, vp_tensor **label);
/* Keeps references when the pair fits in the budget, evicting the least
 * recently used entries; a pair larger than the whole budget is not kept. */
void vp_volume_cache_put(vp_volume_cache *c, int64_t key, vp_tensor *image, vp_tensor *label);
void vp_volume_cache_stats(vp_volume_cache *c, size_t *bytes, int64_t *entries, uint64_t *hits,
                           uint64_t *misses);

#endif

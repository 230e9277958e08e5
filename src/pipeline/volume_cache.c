#include "pipeline/volume_cache.h"

#include <pthread.h>
#include <stdlib.h>

#include "core/status.h"

typedef struct entry {
  int64_t key;
  vp_tensor *image, *label;
  size_t bytes;
  uint64_t last_use;
} entry;

struct vp_volume_cache {
  pthread_mutex_t lock;
  size_t max_bytes, bytes;
  entry *e;
  int64_t n, cap;
  uint64_t clock, hits, misses;
};

vp_status vp_volume_cache_create(size_t max_bytes, vp_volume_cache **out) {
  *out = NULL;
  vp_volume_cache *c = calloc(1, sizeof *c);
  if (!c) return vp_fail(VP_ERR_NOMEM, "volume cache: out of memory");
  pthread_mutex_init(&c->lock, NULL);
  c->max_bytes = max_bytes;
  *out = c;
  return VP_OK;
}

static void drop(entry *x) {
  vp_tensor_release(x->image);
  vp_tensor_release(x->label);
}

void vp_volume_cache_destroy(vp_volume_cache *c) {
  if (!c) return;
  for (int64_t i = 0; i < c->n; i++) drop(&c->e[i]);
  free(c->e);
  pthread_mutex_destroy(&c->lock);
  free(c);
}

/* Entries are few (one per case): a linear scan is cheaper than its upkeep. */
static int64_t find(const vp_volume_cache *c, int64_t key) {
  for (int64_t i = 0; i < c->n; i++)
    if (c->e[i].key == key) return i;
  return -1;
}

int vp_volume_cache_get(vp_volume_cache *c, int64_t key, vp_tensor **image, vp_tensor **label) {
  pthread_mutex_lock(&c->lock);
  int64_t i = find(c, key);
  if (i >= 0) {
    c->e[i].last_use = ++c->clock;
    vp_tensor_retain(c->e[i].image);
    vp_tensor_retain(c->e[i].label);
    *image = c->e[i].image;
    *label = c->e[i].label;
    c->hits++;
  } else {
    c->misses++;
  }
  pthread_mutex_unlock(&c->lock);
  return i >= 0;
}

void vp_volume_cache_put(vp_volume_cache *c, int64_t key, vp_tensor *image, vp_tensor *label) {
  size_t bytes = vp_tensor_nbytes(image) + (label ? vp_tensor_nbytes(label) : 0);
  pthread_mutex_lock(&c->lock);
  if (bytes > c->max_bytes || find(c, key) >= 0) { /* too large, or a racing load won */
    pthread_mutex_unlock(&c->lock);
    return;
  }
  while (c->bytes + bytes > c->max_bytes && c->n > 0) {
    int64_t lru = 0;
    for (int64_t i = 1; i < c->n; i++)
      if (c->e[i].last_use < c->e[lru].last_use) lru = i;
    c->bytes -= c->e[lru].bytes;
    drop(&c->e[lru]);
    c->e[lru] = c->e[--c->n];
  }
  if (c->n == c->cap) {
    int64_t cap = c->cap ? 2 * c->cap : 16;
    entry *grown = realloc(c->e, (size_t)cap * sizeof *grown);
    if (!grown) { /* not caching is always correct */
      pthread_mutex_unlock(&c->lock);
      return;
    }
    c->e = grown;
    c->cap = cap;
  }
  vp_tensor_retain(image);
  vp_tensor_retain(label);
  c->e[c->n++] = (entry){key, image, label, bytes, ++c->clock};
  c->bytes += bytes;
  pthread_mutex_unlock(&c->lock);
}

void vp_volume_cache_stats(vp_volume_cache *c, size_t *bytes, int64_t *entries, uint64_t *hits,
                           uint64_t *misses) {
  pthread_mutex_lock(&c->lock);
  *bytes = c->bytes;
  *entries = c->n;
  *hits = c->hits;
  *misses = c->misses;
  pthread_mutex_unlock(&c->lock);
}

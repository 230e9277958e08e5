/* The component cache of random_object_bbox: per label volume, the list of
 * its objects (connected components of equal-valued voxels: value and box),
 * keyed by a content hash of the label bytes and the labelling parameters,
 * so that later epochs skip the labelling.
 *
 * One cache per place (host, or one per GPU: the object lists then live in
 * device memory and the GPU body reads them there), bounded in bytes: the
 * least recently used entries go when an insert would pass the bound. The
 * bound is the cache_bytes argument of the latest call that inserted (one
 * process-wide cache per place, as operators carry no instance state).
 *
 * The hash is a sum of mixed, position-tagged 64-bit words, so that blocks
 * of a GPU kernel (or CPU threads) may add their parts in any order and get
 * the same value as a sequential pass: vp_objc_hash_word per word, summed
 * mod 2^64, then vp_objc_hash_final with the byte count. Not a
 * cryptographic hash: a cache key for data the user owns. */
#ifndef VP_OPS_OBJECT_CACHE_H
#define VP_OPS_OBJECT_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "core/philox.h" /* VP_HD */
#include "core/threadpool.h"
#include "voxpipe.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One object: its label value and box in (d, h, w), hi exclusive (2-D
 * volumes: d is [0, 1)). Volumes have at most INT32_MAX voxels, so int32
 * holds every coordinate. */
typedef struct vp_obj {
  int32_t value;
  int32_t lo[3], hi[3];
} vp_obj;

/* splitmix64's finaliser: a bijection that spreads every input bit. */
VP_HD uint64_t vp_objc_mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

/* Word k (8 bytes, little-endian; the last one zero-padded). */
VP_HD uint64_t vp_objc_hash_word(uint64_t w, uint64_t k) {
  return vp_objc_mix(w ^ vp_objc_mix(k + 0x9e3779b97f4a7c15ull));
}

VP_HD uint64_t vp_objc_hash_final(uint64_t sum, uint64_t nbytes) {
  return vp_objc_mix(sum ^ vp_objc_mix(nbytes ^ 0x6f626a6563747321ull));
}

/* The host hash of n bytes (pieces spread over pool, which may be NULL). */
uint64_t vp_objc_hash_host(const void *data, size_t n, vp_threadpool *pool);

/* What an object list depends on besides the bytes. */
typedef struct vp_objc_key {
  uint64_t hash;
  int64_t shape[3];
  int32_t dtype;
  int32_t connectivity;
  double background;
} vp_objc_key;

/* A reference to a cached list: objs (host or device memory, by place) and
 * its count; held until vp_objc_release, which keeps the entry from being
 * evicted while a kernel may still be queued to read it. */
typedef struct vp_objc_ref {
  const vp_obj *objs;
  int64_t count;
  void *entry;
  int place;
} vp_objc_ref;

/* place: -1 = host, else a GPU index (< 64). 1 and *ref filled when
 * found, else 0. */
int vp_objc_acquire(int place, const vp_objc_key *key, vp_objc_ref *ref);
void vp_objc_release(vp_objc_ref *ref);

/* Copies count objects (host memory for place -1, device memory on GPU
 * `place` otherwise; the GPU copy is finished before this returns) into a
 * new entry, after evicting least recently used entries so that the cache
 * stays within `budget` bytes. An entry larger than the budget, or one
 * already present, is not inserted (VP_OK). */
vp_status vp_objc_insert(int place, const vp_objc_key *key, const vp_obj *objs, int64_t count,
                         size_t budget);

/* Introspection for tests and benchmarks. */
typedef struct vp_objc_stats {
  size_t bytes;
  int64_t entries, hits, misses, evictions;
} vp_objc_stats;
void vp_objc_get_stats(int place, vp_objc_stats *out);
/* Drops every unreferenced entry and zeroes the counters. */
void vp_objc_clear(int place);

#ifdef __cplusplus
}
#endif
#endif

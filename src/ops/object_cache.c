/* The component cache (see object_cache.h): one LRU list per place under
 * one lock. Entries are found by a linear walk: a cache holds one entry
 * per training volume (hundreds), and a lookup costs far less than the
 * labelling it saves. */
#include "ops/object_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/cuda_rt.h"
#include "core/memory.h"
#include "core/status.h"
#include "core/threadpool.h"

#define PLACES 65 /* host + 64 GPUs */

typedef struct entry {
  vp_objc_key key;
  vp_obj *objs;
  int64_t count;
  size_t bytes;
  int refs;
  struct entry *prev, *next; /* most recently used first */
} entry;

typedef struct place_cache {
  entry *head, *tail;
  size_t bytes;
  vp_objc_stats st;
} place_cache;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static place_cache g_places[PLACES];

static place_cache *place_of(int place) {
  return place >= -1 && place < PLACES - 1 ? &g_places[place + 1] : NULL;
}

static size_t entry_bytes(int64_t count) { return sizeof(entry) + (size_t)count * sizeof(vp_obj); }

static int key_equal(const vp_objc_key *a, const vp_objc_key *b) {
  return a->hash == b->hash && a->dtype == b->dtype && a->connectivity == b->connectivity &&
         a->background == b->background && a->shape[0] == b->shape[0] &&
         a->shape[1] == b->shape[1] && a->shape[2] == b->shape[2];
}

static void unlink_entry(place_cache *pc, entry *e) {
  if (e->prev)
    e->prev->next = e->next;
  else
    pc->head = e->next;
  if (e->next)
    e->next->prev = e->prev;
  else
    pc->tail = e->prev;
  e->prev = e->next = NULL;
}

static void push_front(place_cache *pc, entry *e) {
  e->prev = NULL;
  e->next = pc->head;
  if (pc->head) pc->head->prev = e;
  pc->head = e;
  if (!pc->tail) pc->tail = e;
}

/* Device lists are only freed once no reference is held: a holder keeps
 * its reference until its kernels finished reading (random_object_bbox
 * synchronises its stream before releasing). */
static void free_objs(int place, vp_obj *objs) {
  if (place < 0)
    free(objs);
  else
    vp_cuda_device_free(place, objs);
}

static void drop(int place, place_cache *pc, entry *e) {
  unlink_entry(pc, e);
  pc->bytes -= e->bytes;
  pc->st.entries--;
  free_objs(place, e->objs);
  free(e);
}

int vp_objc_acquire(int place, const vp_objc_key *key, vp_objc_ref *ref) {
  memset(ref, 0, sizeof *ref);
  place_cache *pc = place_of(place);
  if (!pc) return 0;
  pthread_mutex_lock(&g_lock);
  entry *e = pc->head;
  while (e && !key_equal(&e->key, key)) e = e->next;
  if (e) {
    unlink_entry(pc, e);
    push_front(pc, e);
    e->refs++;
    ref->objs = e->objs;
    ref->count = e->count;
    ref->entry = e;
    ref->place = place;
    pc->st.hits++;
  } else {
    pc->st.misses++;
  }
  pthread_mutex_unlock(&g_lock);
  return e != NULL;
}

void vp_objc_release(vp_objc_ref *ref) {
  if (!ref || !ref->entry) return;
  pthread_mutex_lock(&g_lock);
  ((entry *)ref->entry)->refs--;
  pthread_mutex_unlock(&g_lock);
  memset(ref, 0, sizeof *ref);
}

vp_status vp_objc_insert(int place, const vp_objc_key *key, const vp_obj *objs, int64_t count,
                         size_t budget) {
  place_cache *pc = place_of(place);
  if (!pc) return vp_fail(VP_ERR_INVALID_ARG, "object cache: place %d is not a GPU index", place);
  if (count < 0 || (uint64_t)count > (SIZE_MAX - sizeof(entry)) / sizeof(vp_obj))
    return vp_fail(VP_ERR_OVERFLOW, "object cache: %lld objects", (long long)count);
  size_t need = entry_bytes(count);
  if (need > budget) return VP_OK;
  size_t data = (size_t)count * sizeof(vp_obj);
  /* the copy happens outside the lock (a device copy waits for the GPU) */
  vp_obj *copy = NULL;
  if (place < 0) {
    copy = malloc(data ? data : 1);
    if (!copy)
      return vp_fail(VP_ERR_NOMEM, "object cache: out of memory for %lld objects",
                     (long long)count);
    if (data) memcpy(copy, objs, data);
  } else {
    VP_TRY(vp_mem_alloc(VP_MEM_DEVICE, place, data ? data : 1, (void **)&copy));
    vp_status s = data ? vp_cuda_memcpy(copy, objs, data) : VP_OK;
    if (s != VP_OK) {
      vp_cuda_device_free(place, copy);
      return vp_fail_prefix(s, "object cache");
    }
  }
  entry *e = calloc(1, sizeof *e);
  if (!e) {
    free_objs(place, copy);
    return vp_fail(VP_ERR_NOMEM, "object cache: out of memory");
  }
  e->key = *key;
  e->objs = copy;
  e->count = count;
  e->bytes = need;
  pthread_mutex_lock(&g_lock);
  entry *old = pc->head;
  while (old && !key_equal(&old->key, key)) old = old->next;
  int inserted = 0;
  if (!old) {
    /* evict from the cold end, skipping entries that are in use */
    for (entry *v = pc->tail; v && pc->bytes + need > budget;) {
      entry *prev = v->prev;
      if (v->refs == 0) {
        drop(place, pc, v);
        pc->st.evictions++;
      }
      v = prev;
    }
    if (pc->bytes + need <= budget) {
      push_front(pc, e);
      pc->bytes += need;
      pc->st.entries++;
      inserted = 1;
    }
  }
  pc->st.bytes = pc->bytes;
  pthread_mutex_unlock(&g_lock);
  if (!inserted) {
    free_objs(place, copy);
    free(e);
  }
  return VP_OK;
}

void vp_objc_get_stats(int place, vp_objc_stats *out) {
  memset(out, 0, sizeof *out);
  place_cache *pc = place_of(place);
  if (!pc) return;
  pthread_mutex_lock(&g_lock);
  *out = pc->st;
  out->bytes = pc->bytes;
  pthread_mutex_unlock(&g_lock);
}

void vp_objc_clear(int place) {
  place_cache *pc = place_of(place);
  if (!pc) return;
  pthread_mutex_lock(&g_lock);
  for (entry *e = pc->head; e;) {
    entry *next = e->next;
    if (e->refs == 0) drop(place, pc, e);
    e = next;
  }
  int64_t entries = pc->st.entries;
  memset(&pc->st, 0, sizeof pc->st);
  pc->st.entries = entries;
  pc->st.bytes = pc->bytes;
  pthread_mutex_unlock(&g_lock);
}

/* ---- the host hash -------------------------------------------------- */

typedef struct hash_ctx {
  const unsigned char *p;
  size_t n;
  uint64_t *sums;
} hash_ctx;

#define HASH_PIECE_WORDS ((size_t)1 << 18)

static uint64_t load_word(const unsigned char *p, size_t n, size_t k) {
  uint64_t w = 0;
  size_t at = k * 8, len = n - at < 8 ? n - at : 8;
  for (size_t b = 0; b < len; b++) w |= (uint64_t)p[at + b] << (8 * b);
  return w;
}

static uint64_t piece_sum(const hash_ctx *h, int64_t piece) {
  size_t words = (h->n + 7) / 8;
  size_t k0 = (size_t)piece * HASH_PIECE_WORDS;
  size_t k1 = k0 + HASH_PIECE_WORDS < words ? k0 + HASH_PIECE_WORDS : words;
  size_t full = h->n / 8;
  uint64_t sum = 0;
  for (size_t k = k0; k < k1; k++) {
    uint64_t w;
    if (k < full)
      memcpy(&w, h->p + k * 8, 8); /* little-endian hosts only, as the GPU */
    else
      w = load_word(h->p, h->n, k);
    sum += vp_objc_hash_word(w, k);
  }
  return sum;
}

static vp_status hash_piece(void *ctx, int64_t piece) {
  hash_ctx *h = ctx;
  h->sums[piece] = piece_sum(h, piece);
  return VP_OK;
}

uint64_t vp_objc_hash_host(const void *data, size_t n, vp_threadpool *pool) {
  size_t words = (n + 7) / 8;
  int64_t pieces = (int64_t)((words + HASH_PIECE_WORDS - 1) / HASH_PIECE_WORDS);
  uint64_t one = 0, sum = 0;
  uint64_t *sums = pieces > 1 ? calloc((size_t)pieces, sizeof *sums) : &one;
  hash_ctx h = {data, n, sums};
  if (sums && pool && pieces > 1 && vp_parallel_for(pool, pieces, hash_piece, &h) == VP_OK) {
    for (int64_t k = 0; k < pieces; k++) sum += sums[k];
  } else { /* inline: the same words in order, summed as they come */
    sum = 0;
    for (int64_t k = 0; k < pieces; k++) sum += piece_sum(&h, k);
  }
  if (sums && sums != &one) free(sums);
  return vp_objc_hash_final(sum, n);
}

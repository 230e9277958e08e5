/* The dataset reader: epoch order, shards, position, and loading a case.
 *
 * Order: epoch e visits all S cases in the identity order, or (shuffle) in
 * a permutation that is a pure function of (seed, e), the same on every
 * process. Shard k of N holds positions [floor(k*S/N), floor((k+1)*S/N)) of
 * that order (DALI's rule), so the N shards are disjoint and cover the
 * dataset every epoch; without stick_to_shard a process reads shard
 * (shard_id + e) % N in epoch e, so it sees other cases each epoch even
 * without shuffling. pad_last_batch repeats a shard's last case up to
 * ceil(ceil(S/N) / batch_size) * batch_size so that every rank runs the
 * same number of batches, as DDP needs.
 *
 * Threading: see src/io/dataset.h (one thread at a time; loads only read
 * the case list). */
#include "io/dataset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/philox.h"
#include "core/status.h"
#include "core/tensor.h"

struct vp_dataset {
  vp_case_list list;
  uint64_t seed;
  int shuffle;
  int shard_id, num_shards, stick_to_shard, pad_last_batch, batch_size;
  int64_t epoch, index; /* the position of the next case */
  int64_t *order;       /* the epoch order of order_epoch (NULL before the first use) */
  int64_t order_epoch;
};

/* DALI's defaults: one shard, no shuffle, shards move each epoch, no
 * padding. */
void vp_dataset_opts_init(vp_dataset_opts *o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->num_shards = 1;
  o->batch_size = 1;
}

/* ---- order ------------------------------------------------------------------ */

/* Uniform in [0, n) from Philox words, by Lemire's multiply-and-reject: the
 * rare rejected draws take the next counter, so the result stays a pure
 * function of (key, epoch, i). The counter holds the epoch's low 32 bits:
 * orders repeat after 2^32 epochs. */
static uint64_t uniform_below(vp_rng_key key, int64_t epoch, uint64_t i, uint64_t n) {
  uint64_t threshold = (0 - n) % n;
  for (uint32_t attempt = 0;; attempt++) {
    vp_u32x4 r = vp_rng_draw(key, (uint32_t)epoch, attempt, i);
    for (int h = 0; h < 2; h++) {
      uint64_t x = ((uint64_t)r.v[2 * h] << 32) | r.v[2 * h + 1];
      unsigned __int128 m = (unsigned __int128)x * n;
      if ((uint64_t)m >= threshold) return (uint64_t)(m >> 64);
    }
  }
}

void vp_dataset_permutation(uint64_t seed, int64_t epoch, int64_t n, int64_t *order) {
  for (int64_t i = 0; i < n; i++) order[i] = i;
  vp_rng_key key = vp_rng_key_make(seed, VP_DATASET_RNG_OP);
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)uniform_below(key, epoch, (uint64_t)i, (uint64_t)i + 1);
    int64_t t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
}

/* ---- shards ------------------------------------------------------------------- */

static int64_t shard_bound(int64_t k, int64_t s, int64_t n) {
  return (int64_t)(((__int128)k * s) / n);
}

static int shard_of(const vp_dataset *d, int64_t epoch) {
  if (d->stick_to_shard) return d->shard_id;
  return (int)((d->shard_id + epoch % d->num_shards) % d->num_shards);
}

static void shard_range(const vp_dataset *d, int64_t epoch, int64_t *begin, int64_t *end) {
  int k = shard_of(d, epoch);
  *begin = shard_bound(k, d->list.num_cases, d->num_shards);
  *end = shard_bound(k + 1, d->list.num_cases, d->num_shards);
}

static int64_t epoch_size_of(const vp_dataset *d, int64_t epoch) {
  if (d->pad_last_batch) {
    int64_t s = d->list.num_cases, n = d->num_shards, b = d->batch_size;
    int64_t largest = s / n + (s % n != 0);
    return (largest / b + (largest % b != 0)) * b;
  }
  int64_t begin, end;
  shard_range(d, epoch, &begin, &end);
  return end - begin;
}

/* ---- open / close ----------------------------------------------------------------- */

static vp_status check_opts(const vp_dataset_opts *o) {
  if (o->num_shards < 1)
    return vp_fail(VP_ERR_INVALID_ARG, "dataset: num_shards = %d must be at least 1",
                   o->num_shards);
  if (o->shard_id < 0 || o->shard_id >= o->num_shards)
    return vp_fail(VP_ERR_INVALID_ARG, "dataset: shard_id = %d is outside [0, num_shards = %d)",
                   o->shard_id, o->num_shards);
  if (o->pad_last_batch && o->batch_size < 1)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "dataset: batch_size = %d must be at least 1 with "
                   "pad_last_batch",
                   o->batch_size);
  return VP_OK;
}

vp_status vp_dataset_open(const vp_dataset_opts *o, vp_dataset **out) {
  if (!out) return vp_fail(VP_ERR_INVALID_ARG, "dataset open: out is NULL");
  *out = NULL;
  if (!o) return vp_fail(VP_ERR_INVALID_ARG, "dataset open: opts is NULL");
  VP_TRY(check_opts(o));
  vp_dataset *d = calloc(1, sizeof *d);
  if (!d) return vp_fail(VP_ERR_NOMEM, "dataset open: out of memory");
  vp_status st = vp_case_list_build(o, &d->list);
  /* DALI's rule too: an empty shard would leave a rank with nothing to
   * read (or, padded, nothing to repeat). */
  if (st == VP_OK && o->num_shards > d->list.num_cases)
    st = vp_fail(VP_ERR_INVALID_ARG,
                 "%s: num_shards = %d exceeds the number of cases (%lld): a shard would be "
                 "empty",
                 d->list.source, o->num_shards, (long long)d->list.num_cases);
  if (st != VP_OK) {
    vp_dataset_destroy(d);
    return st;
  }
  d->seed = o->seed;
  d->shuffle = o->shuffle != 0;
  d->shard_id = o->shard_id;
  d->num_shards = o->num_shards;
  d->stick_to_shard = o->stick_to_shard != 0;
  d->pad_last_batch = o->pad_last_batch != 0;
  d->batch_size = o->pad_last_batch ? o->batch_size : 1;
  d->order_epoch = -1;
  *out = d;
  return VP_OK;
}

void vp_dataset_destroy(vp_dataset *d) {
  if (!d) return;
  vp_case_list_free(&d->list);
  free(d->order);
  free(d);
}

/* ---- queries ---------------------------------------------------------------------- */

int64_t vp_dataset_size(const vp_dataset *d) { return d ? d->list.num_cases : 0; }

/* Without padding and with moving shards, shard sizes differ by one when N
 * does not divide S: this is the size of the epoch at the position. */
int64_t vp_dataset_epoch_size(const vp_dataset *d) { return d ? epoch_size_of(d, d->epoch) : 0; }

int64_t vp_dataset_epoch_size_at(const vp_dataset *d, int64_t epoch) {
  return d ? epoch_size_of(d, epoch) : 0;
}

int vp_dataset_num_modalities(const vp_dataset *d) { return d ? d->list.num_modalities : 0; }

const char *vp_dataset_image_path(const vp_dataset *d, int64_t case_index, int modality) {
  if (!d || case_index < 0 || case_index >= d->list.num_cases || modality < 0 ||
      modality >= d->list.num_modalities)
    return NULL;
  return d->list.images[case_index * d->list.num_modalities + modality];
}

const char *vp_dataset_label_path(const vp_dataset *d, int64_t case_index) {
  if (!d || !d->list.labels || case_index < 0 || case_index >= d->list.num_cases) return NULL;
  return d->list.labels[case_index];
}

/* ---- iteration ---------------------------------------------------------------------- */

static vp_status ensure_order(vp_dataset *d, int64_t epoch) {
  int64_t s = d->list.num_cases;
  if (!d->shuffle) return VP_OK;
  if (d->order && d->order_epoch == epoch) return VP_OK;
  if (!d->order) {
    if ((uint64_t)s > SIZE_MAX / sizeof(int64_t))
      return vp_fail(VP_ERR_OVERFLOW, "%s: %lld cases", d->list.source, (long long)s);
    d->order = malloc((size_t)s * sizeof(int64_t));
    if (!d->order)
      return vp_fail(VP_ERR_NOMEM, "%s: out of memory for the epoch order", d->list.source);
  }
  vp_dataset_permutation(d->seed, epoch, s, d->order);
  d->order_epoch = epoch;
  return VP_OK;
}

vp_status vp_dataset_next(vp_dataset *d, int64_t *case_index, int *epoch_end) {
  if (case_index) *case_index = -1;
  if (epoch_end) *epoch_end = 0;
  if (!d || !case_index) return vp_fail(VP_ERR_INVALID_ARG, "dataset next: NULL argument");
  VP_TRY(ensure_order(d, d->epoch));
  int64_t begin, end;
  shard_range(d, d->epoch, &begin, &end);
  /* Past the shard's own cases only when padding: repeat its last one. */
  int64_t pos = begin + d->index < end ? begin + d->index : end - 1;
  *case_index = d->shuffle ? d->order[pos] : pos;
  if (++d->index >= epoch_size_of(d, d->epoch)) {
    if (epoch_end) *epoch_end = 1;
    d->epoch++;
    d->index = 0;
  }
  return VP_OK;
}

void vp_dataset_position(const vp_dataset *d, int64_t *epoch, int64_t *index) {
  if (epoch) *epoch = d ? d->epoch : 0;
  if (index) *index = d ? d->index : 0;
}

vp_status vp_dataset_seek(vp_dataset *d, int64_t epoch, int64_t index) {
  if (!d) return vp_fail(VP_ERR_INVALID_ARG, "dataset seek: dataset is NULL");
  if (epoch < 0)
    return vp_fail(VP_ERR_INVALID_ARG, "dataset seek: epoch = %lld is negative", (long long)epoch);
  int64_t n = epoch_size_of(d, epoch);
  if (index < 0 || index >= n)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "dataset seek: index = %lld is outside epoch %lld's [0, %lld) of this shard",
                   (long long)index, (long long)epoch, (long long)n);
  d->epoch = epoch;
  d->index = index;
  return VP_OK;
}

/* ---- loading ------------------------------------------------------------------------ */

static const char *shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
  size_t n = 0;
  n += (size_t)snprintf(buf, cap, "[");
  for (int i = 0; i < ndim && n < cap; i++)
    n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
  if (n < cap) snprintf(buf + n, cap - n, "]");
  return buf;
}

/* Rewrites the shape of a tensor we hold the only reference to: [D,H,W]
 * gains a leading 1, or a [1,D,H,W] loses it. The data does not move. */
static void unsqueeze0(vp_tensor *t) {
  memmove(t->shape + 1, t->shape, (size_t)t->ndim * sizeof t->shape[0]);
  t->shape[0] = 1;
  t->ndim++;
}

static void squeeze0(vp_tensor *t) {
  memmove(t->shape, t->shape + 1, (size_t)(t->ndim - 1) * sizeof t->shape[0]);
  t->ndim--;
}

static vp_status load_one(const char *path, const vp_load_opts *lo, int64_t ci, vp_tensor **out) {
  vp_status st = vp_load(path, lo, out);
  if (st != VP_OK) return vp_fail_prefix(st, "dataset case %lld", (long long)ci);
  return VP_OK;
}

/* Loads modality m of case ci as a 3-D [D, H, W] tensor (a 4-D file with a
 * leading extent of 1 is squeezed). */
static vp_status load_modality(const vp_dataset *d, int64_t ci, int m, const vp_load_opts *lo,
                               vp_tensor **out) {
  const char *path = vp_dataset_image_path(d, ci, m);
  VP_TRY(load_one(path, lo, ci, out));
  vp_tensor *t = *out;
  if (t->ndim == 4 && t->shape[0] == 1) squeeze0(t);
  if (t->ndim != 3) {
    char s[128];
    vp_status st = vp_fail(VP_ERR_FORMAT,
                           "dataset case %lld: %s: shape %s; a modality of a %d-modality case "
                           "must be 3-D",
                           (long long)ci, path, shape_str(s, sizeof s, t->ndim, t->shape),
                           d->list.num_modalities);
    vp_tensor_release(t);
    *out = NULL;
    return st;
  }
  return VP_OK;
}

static vp_status load_stacked(const vp_dataset *d, int64_t ci, const vp_load_opts *lo,
                              vp_tensor **out) {
  int nm = d->list.num_modalities;
  vp_tensor **parts = calloc((size_t)nm, sizeof *parts);
  if (!parts) return vp_fail(VP_ERR_NOMEM, "dataset case %lld: out of memory", (long long)ci);
  vp_status st = VP_OK;
  const char *first = vp_dataset_image_path(d, ci, 0);
  for (int m = 0; st == VP_OK && m < nm; m++) {
    st = load_modality(d, ci, m, lo, &parts[m]);
    if (st != VP_OK || m == 0) continue;
    const char *path = vp_dataset_image_path(d, ci, m);
    char a[128], b[128];
    if (parts[m]->dtype != parts[0]->dtype)
      st = vp_fail(VP_ERR_FORMAT, "dataset case %lld: %s is %s but %s is %s", (long long)ci, path,
                   vp_dtype_name(parts[m]->dtype), first, vp_dtype_name(parts[0]->dtype));
    else if (memcmp(parts[m]->shape, parts[0]->shape, 3 * sizeof(int64_t)) != 0)
      st = vp_fail(VP_ERR_FORMAT, "dataset case %lld: %s has shape %s but %s has %s", (long long)ci,
                   path, shape_str(a, sizeof a, 3, parts[m]->shape), first,
                   shape_str(b, sizeof b, 3, parts[0]->shape));
  }
  if (st == VP_OK) {
    int64_t shape[4] = {nm, parts[0]->shape[0], parts[0]->shape[1], parts[0]->shape[2]};
    st = vp_tensor_create(parts[0]->dtype, 4, shape, VP_MEM_HOST, 0, out);
    if (st != VP_OK) vp_fail_prefix(st, "dataset case %lld", (long long)ci);
  }
  if (st == VP_OK) {
    size_t nbytes = vp_tensor_nbytes(parts[0]);
    for (int m = 0; m < nm; m++)
      memcpy((char *)(*out)->data + (size_t)m * nbytes, parts[m]->data, nbytes);
    vp_tensor_copy_meta(*out, parts[0]);
  }
  for (int m = 0; m < nm; m++) vp_tensor_release(parts[m]);
  free(parts);
  return st;
}

static vp_status load_image(const vp_dataset *d, int64_t ci, const vp_load_opts *lo,
                            vp_tensor **out) {
  if (d->list.num_modalities > 1) return load_stacked(d, ci, lo, out);
  const char *path = vp_dataset_image_path(d, ci, 0);
  VP_TRY(load_one(path, lo, ci, out));
  vp_tensor *t = *out;
  if (t->ndim == 3) unsqueeze0(t);
  if (t->ndim != 4) {
    char s[128];
    vp_status st = vp_fail(VP_ERR_FORMAT,
                           "dataset case %lld: %s: shape %s; an image must be 3-D "
                           "or 4-D [C, D, H, W]",
                           (long long)ci, path, shape_str(s, sizeof s, t->ndim, t->shape));
    vp_tensor_release(t);
    *out = NULL;
    return st;
  }
  return VP_OK;
}

static vp_status load_label(const vp_dataset *d, int64_t ci, const vp_load_opts *lo,
                            const vp_tensor *image, vp_tensor **out) {
  const char *path = vp_dataset_label_path(d, ci);
  VP_TRY(load_one(path, lo, ci, out));
  vp_tensor *t = *out;
  if (t->ndim == 4 && t->shape[0] == 1) squeeze0(t);
  char a[128], b[128];
  vp_status st = VP_OK;
  if (t->ndim != 3)
    st = vp_fail(VP_ERR_FORMAT, "dataset case %lld: label %s: shape %s; a label must be 3-D",
                 (long long)ci, path, shape_str(a, sizeof a, t->ndim, t->shape));
  else if (memcmp(t->shape, image->shape + 1, 3 * sizeof(int64_t)) != 0)
    st = vp_fail(VP_ERR_FORMAT, "dataset case %lld: label %s has shape %s but image %s has %s",
                 (long long)ci, path, shape_str(a, sizeof a, 3, t->shape),
                 vp_dataset_image_path(d, ci, 0), shape_str(b, sizeof b, 3, image->shape + 1));
  if (st != VP_OK) {
    vp_tensor_release(t);
    *out = NULL;
  }
  return st;
}

vp_status vp_dataset_load(vp_dataset *d, int64_t case_index, const vp_load_opts *opts,
                          vp_tensor **image, vp_tensor **label) {
  if (image) *image = NULL;
  if (label) *label = NULL;
  if (!d || !image) return vp_fail(VP_ERR_INVALID_ARG, "dataset load: NULL argument");
  if (case_index < 0 || case_index >= d->list.num_cases)
    return vp_fail(VP_ERR_INVALID_ARG, "dataset load: case %lld is outside [0, %lld)",
                   (long long)case_index, (long long)d->list.num_cases);
  vp_load_opts lo;
  if (opts)
    lo = *opts;
  else
    vp_load_opts_init(&lo);
  if (lo.roi_ndim != 0 && lo.roi_ndim != 3)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "dataset load: roi_ndim = %d; a case's region names its 3 spatial axes "
                   "(roi_ndim 3) or is the whole volume (0)",
                   lo.roi_ndim);
  VP_TRY(load_image(d, case_index, &lo, image));
  if (!label || !d->list.labels) return VP_OK;
  /* A label's padding is background, whatever fill the image uses. */
  lo.fill = 0;
  vp_status st = load_label(d, case_index, &lo, *image, label);
  if (st != VP_OK) {
    vp_tensor_release(*image);
    *image = NULL;
  }
  return st;
}

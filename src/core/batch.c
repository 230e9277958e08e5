#include "core/batch.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/cuda_rt.h"
#include "core/memory.h"
#include "core/status.h"
#include "core/tensor.h"

struct vp_batch {
  atomic_int refs;
  vp_dtype dtype;
  int ndim;
  int64_t n;
  vp_memkind mem;
  int device;
  void *base; /* the allocation, as vp_mem_alloc returned it */
  size_t base_bytes;
  char *data; /* sample 0: base rounded up to VP_BATCH_ALIGN, past the table */
  size_t span;
  vp_sample_desc *desc;     /* host table (malloc'd) */
  vp_sample_desc *desc_dev; /* device mirror at the head of base, or NULL */
};

/* Kernels index the mirrored table with this layout. */
_Static_assert(sizeof(vp_sample_desc) == 96, "vp_sample_desc is 96 bytes, no padding");

static size_t align_up(size_t x) {
  return (x + (VP_BATCH_ALIGN - 1)) & ~(size_t)(VP_BATCH_ALIGN - 1);
}

/* Fills the host table's shapes, sizes and offsets from data start 0, and
 * returns the span; checks every size against overflow before anything is
 * allocated. */
static vp_status plan_layout(vp_dtype dtype, int ndim, int64_t n, const int64_t *shapes,
                             vp_sample_desc *desc, size_t *span) {
  const size_t limit = SIZE_MAX / 2;
  size_t cursor = 0, end = 0;
  for (int64_t i = 0; i < n; i++) {
    const int64_t *shape = shapes + i * ndim;
    size_t bytes;
    vp_status s = vp_tensor_check_shape(dtype, ndim, shape, &bytes);
    if (s != VP_OK) return vp_fail_prefix(s, "batch: sample %lld", (long long)i);
    if (bytes > limit - cursor)
      return vp_fail(VP_ERR_OVERFLOW, "batch: sample %lld: the batch passes %zu bytes",
                     (long long)i, limit);
    vp_sample_desc *d = &desc[i];
    int64_t numel = 1;
    for (int k = 0; k < VP_MAX_NDIM; k++) {
      d->shape[k] = k < ndim ? shape[k] : 1;
      numel *= d->shape[k]; /* bounded by bytes, checked above */
    }
    d->numel = numel;
    d->offset = (int64_t)cursor;
    end = cursor + bytes;
    cursor = align_up(end); /* end <= SIZE_MAX / 2: no wrap */
  }
  *span = end;
  return VP_OK;
}

vp_status vp_batch_create(vp_dtype dtype, int ndim, int64_t n, const int64_t *shapes,
                          vp_memkind mem, int device, vp_batch **out) {
  if (!out) return vp_fail(VP_ERR_INVALID_ARG, "batch: out is NULL");
  *out = NULL;
  if (n < 1 || n > VP_BATCH_MAX_SAMPLES)
    return vp_fail(VP_ERR_INVALID_ARG, "batch: %lld samples is outside 1..%d", (long long)n,
                   VP_BATCH_MAX_SAMPLES);
  if (vp_dtype_size(dtype) == 0)
    return vp_fail(VP_ERR_INVALID_ARG, "batch: invalid dtype %d", (int)dtype);
  if (ndim < 0 || ndim > VP_MAX_NDIM)
    return vp_fail(VP_ERR_INVALID_ARG, "batch: ndim %d is outside 0..%d", ndim, VP_MAX_NDIM);
  if (ndim > 0 && !shapes) return vp_fail(VP_ERR_INVALID_ARG, "batch: shapes is NULL");
  if (mem != VP_MEM_HOST && mem != VP_MEM_PINNED && mem != VP_MEM_DEVICE)
    return vp_fail(VP_ERR_INVALID_ARG, "batch: unknown memory kind %d", (int)mem);

  vp_batch *b = calloc(1, sizeof *b);
  vp_sample_desc *desc = calloc((size_t)n, sizeof *desc);
  if (!b || !desc) {
    free(b);
    free(desc);
    return vp_fail(VP_ERR_NOMEM, "batch: no host memory for %lld sample descriptors", (long long)n);
  }
  atomic_init(&b->refs, 1);
  b->dtype = dtype;
  b->ndim = ndim;
  b->n = n;
  b->mem = mem;
  b->device = device;
  b->desc = desc;

  size_t span = 0;
  vp_status s = plan_layout(dtype, ndim, n, shapes, desc, &span);
  /* The device mirror rides at the head of the data allocation. */
  size_t table = mem == VP_MEM_DEVICE ? align_up((size_t)n * sizeof *desc) : 0;
  /* Host blocks are 64-byte aligned; pinned (page) and device (256) blocks
   * already are aligned enough, and padding them would double a pinned
   * block that the cache rounds to a power of two. */
  size_t slack = mem == VP_MEM_HOST ? VP_BATCH_ALIGN - 64 : 0;
  if (s == VP_OK && span > SIZE_MAX / 2 - table - slack)
    s = vp_fail(VP_ERR_OVERFLOW, "batch: %zu bytes of samples overflow", span);
  if (s == VP_OK) {
    b->base_bytes = table + span + slack;
    s = vp_mem_alloc(mem, device, b->base_bytes, &b->base);
    if (s != VP_OK) vp_fail_prefix(s, "batch of %zu bytes", b->base_bytes);
  }
  if (s == VP_OK) {
    uintptr_t start =
        ((uintptr_t)b->base + (VP_BATCH_ALIGN - 1)) & ~(uintptr_t)(VP_BATCH_ALIGN - 1);
    if (start - (uintptr_t)b->base > slack)
      s = vp_fail(VP_ERR_INTERNAL, "batch: memory kind %d gave a block at %p, not %d-byte aligned",
                  (int)mem, b->base, VP_BATCH_ALIGN);
    else {
      if (table) b->desc_dev = (vp_sample_desc *)start;
      b->data = (char *)start + table;
      b->span = span;
    }
  }
  if (s != VP_OK) {
    vp_batch_destroy(b);
    return s;
  }
  for (int64_t i = 0; i < n; i++) desc[i].data = b->data + desc[i].offset;
  *out = b;
  return VP_OK;
}

void vp_batch_retain(vp_batch *b) {
  if (b) atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
}

void vp_batch_destroy(vp_batch *b) {
  if (!b) return;
  if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1) return;
  vp_mem_free(b->mem, b->device, b->base, b->base_bytes);
  free(b->desc);
  free(b);
}

int64_t vp_batch_size(const vp_batch *b) { return b->n; }
vp_dtype vp_batch_dtype(const vp_batch *b) { return b->dtype; }
int vp_batch_ndim(const vp_batch *b) { return b->ndim; }
vp_memkind vp_batch_memkind(const vp_batch *b) { return b->mem; }
int vp_batch_device(const vp_batch *b) { return b->device; }
void *vp_batch_data(const vp_batch *b) { return b->data; }
size_t vp_batch_nbytes(const vp_batch *b) { return b->span; }
vp_sample_desc *vp_batch_desc_host(vp_batch *b) { return b->desc; }
const vp_sample_desc *vp_batch_desc_device(const vp_batch *b) { return b->desc_dev; }

static void view_released(void *ctx) { vp_batch_destroy(ctx); }

vp_status vp_batch_sample(vp_batch *b, int64_t i, vp_tensor **view) {
  if (!view) return vp_fail(VP_ERR_INVALID_ARG, "batch: view is NULL");
  *view = NULL;
  if (!b) return vp_fail(VP_ERR_INVALID_ARG, "batch: batch is NULL");
  if (i < 0 || i >= b->n)
    return vp_fail(VP_ERR_INVALID_ARG, "batch: sample %lld is outside 0..%lld", (long long)i,
                   (long long)(b->n - 1));
  vp_batch_retain(b);
  const vp_sample_desc *d = &b->desc[i];
  vp_status s = vp_tensor_wrap(b->dtype, b->ndim, d->shape, b->data + d->offset, b->mem, b->device,
                               view_released, b, view);
  if (s != VP_OK) {
    vp_batch_destroy(b); /* wrap does not call the deleter when it fails */
    return vp_fail_prefix(s, "batch: sample %lld", (long long)i);
  }
  return VP_OK;
}

vp_status vp_batch_upload_desc(vp_batch *b, vp_stream s) {
  if (!b) return vp_fail(VP_ERR_INVALID_ARG, "batch: batch is NULL");
  if (!b->desc_dev)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "batch: descriptor upload needs a device batch (this one is in %s memory)",
                   b->mem == VP_MEM_PINNED ? "pinned" : "host");
  vp_status st = vp_cuda_memcpy_async(b->desc_dev, b->desc, (size_t)b->n * sizeof *b->desc, s);
  if (st != VP_OK) return vp_fail_prefix(st, "batch: descriptor upload");
  return VP_OK;
}

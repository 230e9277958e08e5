#include "core/tensor.h"

#include <stdlib.h>
#include <string.h>

#include "core/memory.h"
#include "core/status.h"

vp_status vp_tensor_check_shape(vp_dtype dtype, int ndim, const int64_t *shape,
                                size_t *nbytes) {
  if (vp_dtype_size(dtype) == 0) return vp_fail(VP_ERR_INVALID_ARG, "tensor: invalid dtype %d", (int)dtype);
  if (ndim < 0 || ndim > VP_MAX_NDIM)
    return vp_fail(VP_ERR_INVALID_ARG, "tensor: ndim %d is outside 0..%d", ndim, VP_MAX_NDIM);
  if (ndim > 0 && !shape) return vp_fail(VP_ERR_INVALID_ARG, "tensor: shape is NULL");
  int64_t n;
  VP_TRY(vp_shape_numel(shape, ndim, &n, "tensor shape"));
  int64_t b;
  if (vp_mul_overflows_i64(n, (int64_t)vp_dtype_size(dtype), &b) || (uint64_t)b > SIZE_MAX / 2)
    return vp_fail(VP_ERR_OVERFLOW, "tensor: %lld elements of %zu bytes overflow", (long long)n,
                   vp_dtype_size(dtype));
  *nbytes = (size_t)b;
  return VP_OK;
}

static vp_tensor *tensor_new(vp_dtype dtype, int ndim, const int64_t *shape, vp_memkind mem,
                             int device) {
  vp_tensor *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  atomic_init(&t->refs, 1);
  t->dtype = dtype;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
  t->mem = mem;
  t->device = device;
  t->spatial_ndim = ndim < 3 ? (ndim < 1 ? 1 : ndim) : 3;
  for (int i = 0; i < 3; i++) t->spacing[i] = 1.0;
  for (int i = 0; i < 4; i++) t->affine[i * 5] = 1.0;
  return t;
}

vp_status vp_tensor_create_prefixed(vp_dtype dtype, int ndim, const int64_t *shape,
                                    vp_memkind mem, int device, size_t prefix,
                                    vp_tensor **out) {
  if (!out) return vp_fail(VP_ERR_INVALID_ARG, "tensor: out is NULL");
  *out = NULL;
  size_t nbytes;
  VP_TRY(vp_tensor_check_shape(dtype, ndim, shape, &nbytes));
  size_t lead = (prefix + 63) & ~(size_t)63;
  if (lead < prefix || nbytes > SIZE_MAX - lead)
    return vp_fail(VP_ERR_OVERFLOW, "tensor: %zu bytes plus a %zu-byte prefix overflow", nbytes,
                   prefix);
  vp_tensor *t = tensor_new(dtype, ndim, shape, mem, device);
  if (!t) return vp_fail(VP_ERR_NOMEM, "tensor: out of host memory");
  vp_status s = vp_mem_alloc(mem, device, lead + nbytes, &t->base);
  if (s != VP_OK) {
    free(t);
    return s;
  }
  t->base_bytes = lead + nbytes;
  t->data = (char *)t->base + lead;
  *out = t;
  return VP_OK;
}

vp_status vp_tensor_create(vp_dtype dtype, int ndim, const int64_t *shape, vp_memkind mem,
                           int device, vp_tensor **out) {
  return vp_tensor_create_prefixed(dtype, ndim, shape, mem, device, 0, out);
}

vp_status vp_tensor_wrap(vp_dtype dtype, int ndim, const int64_t *shape, void *data,
                         vp_memkind mem, int device, void (*deleter)(void *ctx), void *ctx,
                         vp_tensor **out) {
  if (!out) return vp_fail(VP_ERR_INVALID_ARG, "tensor: out is NULL");
  *out = NULL;
  size_t nbytes;
  VP_TRY(vp_tensor_check_shape(dtype, ndim, shape, &nbytes));
  if (!data && nbytes) return vp_fail(VP_ERR_INVALID_ARG, "tensor: data is NULL");
  vp_tensor *t = tensor_new(dtype, ndim, shape, mem, device);
  if (!t) return vp_fail(VP_ERR_NOMEM, "tensor: out of host memory");
  t->data = data;
  t->deleter = deleter;
  t->ctx = ctx;
  *out = t;
  return VP_OK;
}

void vp_tensor_retain(vp_tensor *t) {
  if (t) atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

void vp_tensor_release(vp_tensor *t) {
  if (!t) return;
  if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1) return;
  if (t->base) vp_mem_free(t->mem, t->device, t->base, t->base_bytes);
  if (t->deleter) t->deleter(t->ctx);
  free(t);
}

vp_dtype vp_tensor_dtype(const vp_tensor *t) { return t->dtype; }
int vp_tensor_ndim(const vp_tensor *t) { return t->ndim; }
const int64_t *vp_tensor_shape(const vp_tensor *t) { return t->shape; }
int64_t vp_tensor_numel(const vp_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
  return n;
}
size_t vp_tensor_nbytes(const vp_tensor *t) {
  return (size_t)vp_tensor_numel(t) * vp_dtype_size(t->dtype);
}
void *vp_tensor_data(const vp_tensor *t) { return t->data; }
vp_memkind vp_tensor_memkind(const vp_tensor *t) { return t->mem; }
int vp_tensor_device(const vp_tensor *t) { return t->device; }
int vp_tensor_spatial_ndim(const vp_tensor *t) { return t->spatial_ndim; }

void vp_tensor_spacing(const vp_tensor *t, double *spacing) {
  for (int i = 0; i < 3; i++) spacing[i] = i < t->spatial_ndim ? t->spacing[i] : 1.0;
}

vp_status vp_tensor_set_spacing(vp_tensor *t, int n, const double *spacing) {
  if (!t || !spacing) return vp_fail(VP_ERR_INVALID_ARG, "set_spacing: NULL argument");
  if (n < 1 || n > 3 || n > (t->ndim ? t->ndim : 1))
    return vp_fail(VP_ERR_INVALID_ARG, "set_spacing: %d spatial axes for a %d-D tensor", n,
                   t->ndim);
  for (int i = 0; i < n; i++)
    if (!(spacing[i] > 0) || spacing[i] > 1e30)
      return vp_fail(VP_ERR_INVALID_ARG, "set_spacing: spacing[%d] = %g is not a positive finite number", i, spacing[i]);
  t->spatial_ndim = n;
  for (int i = 0; i < 3; i++) t->spacing[i] = i < n ? spacing[i] : 1.0;
  return VP_OK;
}

void vp_tensor_affine(const vp_tensor *t, double *affine) {
  memcpy(affine, t->affine, sizeof t->affine);
}

vp_status vp_tensor_set_affine(vp_tensor *t, const double *affine) {
  if (!t || !affine) return vp_fail(VP_ERR_INVALID_ARG, "set_affine: NULL argument");
  for (int i = 0; i < 16; i++)
    if (!(affine[i] - affine[i] == 0))
      return vp_fail(VP_ERR_INVALID_ARG, "set_affine: element %d is not finite", i);
  memcpy(t->affine, affine, sizeof t->affine);
  return VP_OK;
}

void vp_tensor_copy_meta(vp_tensor *dst, const vp_tensor *src) {
  dst->spatial_ndim = src->spatial_ndim;
  memcpy(dst->spacing, src->spacing, sizeof dst->spacing);
  memcpy(dst->affine, src->affine, sizeof dst->affine);
}

vp_status vp_tensor_copy_to(const vp_tensor *t, vp_memkind mem, int device, vp_tensor **out) {
  if (!t || !out) return vp_fail(VP_ERR_INVALID_ARG, "copy_to: NULL argument");
  *out = NULL;
  vp_tensor *o;
  VP_TRY(vp_tensor_create(t->dtype, t->ndim, t->shape, mem, device, &o));
  vp_status s = vp_mem_copy(o->data, mem, t->data, t->mem, vp_tensor_nbytes(t));
  if (s != VP_OK) {
    vp_tensor_release(o);
    return s;
  }
  vp_tensor_copy_meta(o, t);
  *out = o;
  return VP_OK;
}

typedef struct {
  int64_t n;
  vp_tensor *samples[];
} stack_ctx;

static void stack_release(void *ctx) {
  stack_ctx *c = ctx;
  for (int64_t i = 0; i < c->n; i++) vp_tensor_release(c->samples[i]);
  free(c);
}

vp_status vp_tensor_stack_view(vp_tensor *const *samples, int64_t n, vp_tensor **out) {
  if (!out) return vp_fail(VP_ERR_INVALID_ARG, "stack_view: out is NULL");
  *out = NULL;
  if (!samples || n < 1 || n > ((int64_t)1 << 30))
    return vp_fail(VP_ERR_INVALID_ARG, "stack_view: %lld samples (need 1..2^30)", (long long)n);
  const vp_tensor *a = samples[0];
  if (!a) return vp_fail(VP_ERR_INVALID_ARG, "stack_view: sample 0 is NULL");
  if (a->ndim >= VP_MAX_NDIM)
    return vp_fail(VP_ERR_INVALID_ARG, "stack_view: samples of %d dimensions leave no room for a batch axis", a->ndim);
  size_t bytes = vp_tensor_nbytes(a);
  for (int64_t i = 1; i < n; i++) {
    const vp_tensor *b = samples[i];
    if (!b || b->dtype != a->dtype || b->ndim != a->ndim || b->mem != a->mem ||
        b->device != a->device || memcmp(b->shape, a->shape, sizeof(int64_t) * (size_t)a->ndim))
      return vp_fail(VP_ERR_INVALID_ARG, "stack_view: sample %lld differs from sample 0 in dtype, shape or memory", (long long)i);
    if ((const char *)b->data != (const char *)a->data + (size_t)i * bytes)
      return vp_fail(VP_ERR_INVALID_ARG, "stack_view: sample %lld does not follow sample %lld in memory", (long long)i, (long long)i - 1);
  }
  stack_ctx *c = malloc(sizeof *c + sizeof(vp_tensor *) * (size_t)n);
  if (!c) return vp_fail(VP_ERR_NOMEM, "stack_view: out of host memory");
  c->n = n;
  int64_t shape[VP_MAX_NDIM];
  shape[0] = n;
  for (int i = 0; i < a->ndim; i++) shape[i + 1] = a->shape[i];
  vp_status s = vp_tensor_wrap(a->dtype, a->ndim + 1, shape, a->data, a->mem, a->device,
                               stack_release, c, out);
  if (s != VP_OK) {
    free(c);
    return s;
  }
  for (int64_t i = 0; i < n; i++) {
    vp_tensor_retain(samples[i]);
    c->samples[i] = samples[i];
  }
  vp_tensor_copy_meta(*out, a);
  return VP_OK;
}

/* DLPack export and import without copies. */
#include <dlpack/dlpack.h>
#include <stdlib.h>

#include "core/status.h"
#include "core/tensor.h"

typedef struct {
  DLManagedTensor managed;
  int64_t shape[VP_MAX_NDIM];
} export_ctx;

static void export_deleter(DLManagedTensor *m) {
  if (!m) return;
  vp_tensor_release((vp_tensor *)m->manager_ctx);
  free(m);
}

static DLDataType dl_dtype(vp_dtype t) {
  DLDataType d = {kDLUInt, 8, 1};
  switch (t) {
    case VP_U8: d.code = kDLUInt; d.bits = 8; break;
    case VP_I8: d.code = kDLInt; d.bits = 8; break;
    case VP_U16: d.code = kDLUInt; d.bits = 16; break;
    case VP_I16: d.code = kDLInt; d.bits = 16; break;
    case VP_U32: d.code = kDLUInt; d.bits = 32; break;
    case VP_I32: d.code = kDLInt; d.bits = 32; break;
    case VP_I64: d.code = kDLInt; d.bits = 64; break;
    case VP_F16: d.code = kDLFloat; d.bits = 16; break;
    case VP_F32: d.code = kDLFloat; d.bits = 32; break;
    case VP_F64: d.code = kDLFloat; d.bits = 64; break;
    default: break;
  }
  return d;
}

vp_status vp_tensor_to_dlpack(vp_tensor *t, void **out) {
  if (!t || !out) return vp_fail(VP_ERR_INVALID_ARG, "to_dlpack: NULL argument");
  *out = NULL;
  export_ctx *c = calloc(1, sizeof *c);
  if (!c) return vp_fail(VP_ERR_NOMEM, "to_dlpack: out of host memory");
  for (int i = 0; i < t->ndim; i++) c->shape[i] = t->shape[i];
  DLTensor *d = &c->managed.dl_tensor;
  d->data = t->data;
  d->device.device_type =
      t->mem == VP_MEM_DEVICE ? kDLCUDA : (t->mem == VP_MEM_PINNED ? kDLCUDAHost : kDLCPU);
  d->device.device_id = t->mem == VP_MEM_HOST ? 0 : t->device;
  d->ndim = t->ndim;
  d->dtype = dl_dtype(t->dtype);
  d->shape = c->shape;
  d->strides = NULL; /* compact row-major */
  d->byte_offset = 0;
  vp_tensor_retain(t);
  c->managed.manager_ctx = t;
  c->managed.deleter = export_deleter;
  *out = &c->managed;
  return VP_OK;
}

static void import_deleter(void *ctx) {
  DLManagedTensor *m = ctx;
  if (m->deleter) m->deleter(m);
}

static vp_status import_dtype(DLDataType d, vp_dtype *out) {
  if (d.lanes != 1) return vp_fail(VP_ERR_UNSUPPORTED, "from_dlpack: vector dtypes (lanes %u) are not supported", d.lanes);
  switch (d.code) {
    case kDLUInt:
      if (d.bits == 8) return *out = VP_U8, VP_OK;
      if (d.bits == 16) return *out = VP_U16, VP_OK;
      if (d.bits == 32) return *out = VP_U32, VP_OK;
      break;
    case kDLInt:
      if (d.bits == 8) return *out = VP_I8, VP_OK;
      if (d.bits == 16) return *out = VP_I16, VP_OK;
      if (d.bits == 32) return *out = VP_I32, VP_OK;
      if (d.bits == 64) return *out = VP_I64, VP_OK;
      break;
    case kDLFloat:
      if (d.bits == 16) return *out = VP_F16, VP_OK;
      if (d.bits == 32) return *out = VP_F32, VP_OK;
      if (d.bits == 64) return *out = VP_F64, VP_OK;
      break;
    case 6: /* kDLBool in later DLPack versions: one byte per element */
      if (d.bits == 8) return *out = VP_U8, VP_OK;
      break;
    default:
      break;
  }
  return vp_fail(VP_ERR_UNSUPPORTED, "from_dlpack: dtype code %u with %u bits is not supported",
                 d.code, d.bits);
}

vp_status vp_tensor_from_dlpack(void *managed, vp_tensor **out) {
  DLManagedTensor *m = managed;
  if (!out) {
    if (m && m->deleter) m->deleter(m);
    return vp_fail(VP_ERR_INVALID_ARG, "from_dlpack: out is NULL");
  }
  *out = NULL;
  if (!m) return vp_fail(VP_ERR_INVALID_ARG, "from_dlpack: NULL tensor");
  DLTensor *d = &m->dl_tensor;
  vp_status s = VP_OK;
  vp_dtype dt = VP_U8;
  vp_memkind mem = VP_MEM_HOST;
  if (d->ndim < 0 || d->ndim > VP_MAX_NDIM)
    s = vp_fail(VP_ERR_UNSUPPORTED, "from_dlpack: %d dimensions (at most %d)", d->ndim, VP_MAX_NDIM);
  if (s == VP_OK) s = import_dtype(d->dtype, &dt);
  if (s == VP_OK) {
    switch (d->device.device_type) {
      case kDLCPU: mem = VP_MEM_HOST; break;
      case kDLCUDAHost: mem = VP_MEM_PINNED; break;
      case kDLCUDA: mem = VP_MEM_DEVICE; break;
      default:
        s = vp_fail(VP_ERR_UNSUPPORTED, "from_dlpack: device type %d is not supported",
                    (int)d->device.device_type);
    }
  }
  int empty = 0;
  for (int i = 0; s == VP_OK && i < d->ndim; i++) empty |= d->shape[i] == 0;
  if (s == VP_OK && d->strides && !empty) { /* accept strides only when they are compact */
    int64_t expect = 1;
    for (int i = d->ndim - 1; i >= 0; i--) {
      if (d->shape[i] != 1 && d->strides[i] != expect) {
        s = vp_fail(VP_ERR_UNSUPPORTED,
                    "from_dlpack: the tensor is not C-contiguous (make it contiguous first)");
        break;
      }
      expect *= d->shape[i];
    }
  }
  if (s == VP_OK)
    s = vp_tensor_wrap(dt, d->ndim, d->shape, (char *)d->data + d->byte_offset, mem,
                       d->device.device_id, import_deleter, m, out);
  if (s != VP_OK && m->deleter) m->deleter(m);
  return s;
}

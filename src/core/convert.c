/* Element-type conversion and whole-tensor statistics on the host. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/convert.h"
#include "core/dtype.h"
#include "core/status.h"
#include "core/tensor.h"

vp_status vp_tensor_astype(const vp_tensor *t, vp_dtype dtype, vp_tensor **out) {
  if (!t || !out) return vp_fail(VP_ERR_INVALID_ARG, "astype: NULL argument");
  *out = NULL;
  if (!vp_dtype_valid(dtype)) return vp_fail(VP_ERR_INVALID_ARG, "astype: invalid dtype %d", (int)dtype);
  if (t->mem == VP_MEM_DEVICE)
    return vp_fail(VP_ERR_INVALID_ARG, "astype: the tensor is in GPU memory");
  vp_tensor *o;
  VP_TRY(vp_tensor_create(dtype, t->ndim, t->shape, VP_MEM_HOST, 0, &o));
  vp_tensor_copy_meta(o, t);
  size_t n = (size_t)vp_tensor_numel(t);
  if (dtype == t->dtype) {
    memcpy(o->data, t->data, vp_tensor_nbytes(t));
  } else {
    for (size_t i = 0; i < n; i++)
      vp_cvt_store(o->data, dtype, (int64_t)i, vp_cvt_load(t->data, t->dtype, (int64_t)i));
  }
  *out = o;
  return VP_OK;
}

vp_status vp_tensor_stats(const vp_tensor *t, double *min, double *max, double *mean) {
  if (!t || !min || !max || !mean) return vp_fail(VP_ERR_INVALID_ARG, "stats: NULL argument");
  if (t->mem == VP_MEM_DEVICE)
    return vp_fail(VP_ERR_INVALID_ARG, "stats: the tensor is in GPU memory");
  size_t n = (size_t)vp_tensor_numel(t);
  double lo = INFINITY, hi = -INFINITY, sum = 0.0;
  size_t count = 0;
#define VP_STATS_LOOP(T, CONV)                   \
  {                                              \
    const T *p = t->data;                        \
    for (size_t i = 0; i < n; i++) {             \
      double v = CONV(p[i]);                     \
      if (v != v) continue;                      \
      lo = v < lo ? v : lo;                      \
      hi = v > hi ? v : hi;                      \
      sum += v;                                  \
      count++;                                   \
    }                                            \
  }                                              \
  break;
#define VP_ID(x) ((double)(x))
  switch (t->dtype) {
    case VP_U8: VP_STATS_LOOP(uint8_t, VP_ID)
    case VP_I8: VP_STATS_LOOP(int8_t, VP_ID)
    case VP_U16: VP_STATS_LOOP(uint16_t, VP_ID)
    case VP_I16: VP_STATS_LOOP(int16_t, VP_ID)
    case VP_U32: VP_STATS_LOOP(uint32_t, VP_ID)
    case VP_I32: VP_STATS_LOOP(int32_t, VP_ID)
    case VP_I64: VP_STATS_LOOP(int64_t, VP_ID)
    case VP_F16: VP_STATS_LOOP(uint16_t, vp_half_to_float)
    case VP_F32: VP_STATS_LOOP(float, VP_ID)
    case VP_F64: VP_STATS_LOOP(double, VP_ID)
    default: return vp_fail(VP_ERR_INVALID_ARG, "stats: invalid dtype");
  }
#undef VP_STATS_LOOP
#undef VP_ID
  if (count == 0) {
    *min = *max = *mean = NAN;
  } else {
    *min = lo;
    *max = hi;
    *mean = sum / (double)count;
  }
  return VP_OK;
}

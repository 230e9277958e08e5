/* Element-type conversion and whole-tensor statistics on the host. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/dtype.h"
#include "core/status.h"
#include "core/tensor.h"

/* Rounds to nearest even and saturates into [lo, hi]; NaN -> 0. */
static double sat(double v, double lo, double hi) {
  if (v != v) return 0.0;
  v = nearbyint(v);
  return v < lo ? lo : (v > hi ? hi : v);
}

static void store(void *dst, vp_dtype t, size_t i, double v) {
  switch (t) {
    case VP_U8: ((uint8_t *)dst)[i] = (uint8_t)sat(v, 0, UINT8_MAX); break;
    case VP_I8: ((int8_t *)dst)[i] = (int8_t)sat(v, INT8_MIN, INT8_MAX); break;
    case VP_U16: ((uint16_t *)dst)[i] = (uint16_t)sat(v, 0, UINT16_MAX); break;
    case VP_I16: ((int16_t *)dst)[i] = (int16_t)sat(v, INT16_MIN, INT16_MAX); break;
    case VP_U32: ((uint32_t *)dst)[i] = (uint32_t)sat(v, 0, UINT32_MAX); break;
    case VP_I32: ((int32_t *)dst)[i] = (int32_t)sat(v, INT32_MIN, INT32_MAX); break;
    case VP_I64: {
      /* 2^63 is not representable: clamp below it */
      double r = sat(v, -9223372036854775808.0, 9223372036854774784.0);
      ((int64_t *)dst)[i] = (int64_t)r;
      break;
    }
    case VP_F16: ((uint16_t *)dst)[i] = vp_float_to_half((float)v); break;
    case VP_F32: ((float *)dst)[i] = (float)v; break;
    case VP_F64: ((double *)dst)[i] = v; break;
    default: break;
  }
}

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
    for (size_t i = 0; i < n; i++) store(o->data, dtype, i, vp_load_as_double(t->data, t->dtype, i));
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

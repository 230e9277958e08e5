/* Regions of interest: resolving a request against an array's shape and
 * copying a region out of a file or a buffer.
 *
 * Copies walk the region's in-bounds part as runs of bytes that are
 * contiguous in the source. Trailing axes that the region covers whole (in
 * the source and in the output alike) fold into the run, so a region that
 * is the whole array is one run and a region of whole planes is one run per
 * outer index. */
#include "io/region.h"

#include <math.h>
#include <string.h>

#include "core/dtype.h"
#include "core/status.h"

/* Keeps start + extent far from int64 overflow in every later sum. */
#define REGION_LIMIT ((int64_t)1 << 62)

static const char *policy_name(vp_oob_policy p) {
  switch (p) {
    case VP_OOB_ERROR: return "error";
    case VP_OOB_PAD: return "pad";
    case VP_OOB_TRIM: return "trim";
  }
  return "?";
}

vp_status vp_region_resolve(const vp_load_opts *opts, int ndim, const int64_t *shape,
                            const char *name, vp_region *out) {
  if (!name) name = "(region)";
  if (!out) return vp_fail(VP_ERR_INVALID_ARG, "%s: region output is NULL", name);
  memset(out, 0, sizeof *out);
  if (ndim < 0 || ndim > VP_MAX_NDIM)
    return vp_fail(VP_ERR_INVALID_ARG, "%s: array ndim %d is outside 0..%d", name, ndim,
                   VP_MAX_NDIM);
  out->ndim = ndim;
  for (int a = 0; a < ndim; a++) out->shape[a] = shape[a];
  if (!opts || opts->roi_ndim == 0) return VP_OK;

  vp_oob_policy pol = opts->oob;
  if (pol != VP_OOB_ERROR && pol != VP_OOB_PAD && pol != VP_OOB_TRIM)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "%s: out-of-bounds policy %d is not error (0), pad (1) or trim (2)", name,
                   (int)pol);
  int rn = opts->roi_ndim;
  if (rn < 0 || rn > ndim)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "%s: the region has %d axes but the array has %d (shape must name at most "
                   "the array's axes)",
                   name, rn, ndim);
  int lead = ndim - rn;
  for (int k = 0; k < rn; k++) {
    int a = lead + k;
    int64_t st = opts->roi_start[k], len = opts->roi_shape[k];
    if (len < 0)
      return vp_fail(VP_ERR_INVALID_ARG, "%s: region axis %d has negative extent %lld", name, a,
                     (long long)len);
    if (st <= -REGION_LIMIT || st >= REGION_LIMIT || len >= REGION_LIMIT)
      return vp_fail(VP_ERR_OVERFLOW, "%s: region axis %d (start %lld, extent %lld) is too large",
                     name, a, (long long)st, (long long)len);
    int64_t end = st + len;
    switch (pol) {
      case VP_OOB_ERROR:
        if (st < 0 || end > shape[a])
          return vp_fail(VP_ERR_OUT_OF_BOUNDS,
                         "%s: region axis %d [%lld, %lld) is outside the array's [0, %lld) "
                         "(oob policy '%s'; use pad or trim)",
                         name, a, (long long)st, (long long)end, (long long)shape[a],
                         policy_name(pol));
        break;
      case VP_OOB_PAD: break;
      case VP_OOB_TRIM: {
        int64_t lo = st < 0 ? 0 : st, hi = end > shape[a] ? shape[a] : end;
        if (lo > shape[a]) lo = shape[a];
        if (hi < lo) hi = lo;
        st = lo;
        end = hi;
        break;
      }
    }
    out->start[a] = st;
    out->shape[a] = end - st;
  }
  return VP_OK;
}

/* The fill value as the dtype stores it: saturated to the type's range,
 * integers rounded to nearest (ties to even, as np.rint) and NaN as 0. */
void vp_fill_element(vp_dtype dtype, double fill, void *elem) {
  double v = fill;
  if (!vp_dtype_is_float(dtype)) {
    if (isnan(v)) v = 0;
    v = nearbyint(v);
  }
#define SAT_INT(T, LO, HI)                                                  \
  do {                                                                      \
    T x = v <= (double)(LO) ? (T)(LO) : v >= (double)(HI) ? (T)(HI) : (T)v; \
    memcpy(elem, &x, sizeof x);                                             \
  } while (0)
  switch (dtype) {
    case VP_U8: SAT_INT(uint8_t, 0, UINT8_MAX); break;
    case VP_I8: SAT_INT(int8_t, INT8_MIN, INT8_MAX); break;
    case VP_U16: SAT_INT(uint16_t, 0, UINT16_MAX); break;
    case VP_I16: SAT_INT(int16_t, INT16_MIN, INT16_MAX); break;
    case VP_U32: SAT_INT(uint32_t, 0, UINT32_MAX); break;
    case VP_I32: SAT_INT(int32_t, INT32_MIN, INT32_MAX); break;
    case VP_I64: {
      /* 2^63 is exact as a double; INT64_MAX is not, so compare against 2^63 */
      int64_t x = v < -9223372036854775808.0   ? INT64_MIN
                  : v >= 9223372036854775808.0 ? INT64_MAX
                                               : (int64_t)v;
      memcpy(elem, &x, sizeof x);
      break;
    }
    case VP_F16: {
      float f = (float)(v > 65504.0 ? 65504.0 : v < -65504.0 ? -65504.0 : v);
      uint16_t h = vp_float_to_half(f);
      memcpy(elem, &h, sizeof h);
      break;
    }
    case VP_F32: {
      float f = (float)(v > 3.4028234663852886e38    ? 3.4028234663852886e38
                        : v < -3.4028234663852886e38 ? -3.4028234663852886e38
                                                     : v);
      memcpy(elem, &f, sizeof f);
      break;
    }
    case VP_F64: memcpy(elem, &v, sizeof v); break;
    default: break;
  }
#undef SAT_INT
}

/* Where the runs go: a file read or a memcpy out of a buffer. */
typedef struct run_sink {
  vp_source *src; /* NULL: copy from mem */
  const unsigned char *mem;
  uint64_t offset; /* byte offset of the array in src */
} run_sink;

static vp_status copy_run(const run_sink *k, uint64_t off, void *dst, size_t n) {
  if (k->src) return vp_source_read(k->src, k->offset + off, dst, n);
  memcpy(dst, k->mem + off, n);
  return VP_OK;
}

static void fill_buffer(unsigned char *dst, size_t count, size_t esz, vp_dtype dtype, double fill,
                        int swapped) {
  unsigned char e[8];
  vp_fill_element(dtype, fill, e);
  if (swapped) vp_byteswap(e, 1, esz);
  int zero = 1;
  for (size_t i = 0; i < esz; i++) zero &= e[i] == 0;
  if (zero) {
    memset(dst, 0, count * esz);
    return;
  }
  for (size_t i = 0; i < count; i++) memcpy(dst + i * esz, e, esz);
}

static vp_status region_walk(const run_sink *k, vp_dtype dtype, int ndim, const int64_t *shape,
                             const vp_region *r, double fill, int swapped, void *dstv) {
  unsigned char *dst = dstv;
  size_t esz = vp_dtype_size(dtype);
  int64_t out_n = 1, lo[VP_MAX_NDIM], hi[VP_MAX_NDIM];
  int inside = 1, empty = 0;
  for (int a = 0; a < ndim; a++) {
    out_n *= r->shape[a];
    int64_t end = r->start[a] + r->shape[a];
    lo[a] = r->start[a] < 0 ? 0 : r->start[a];
    hi[a] = end > shape[a] ? shape[a] : end;
    if (lo[a] != r->start[a] || hi[a] != end) inside = 0;
    if (hi[a] <= lo[a]) empty = 1;
  }
  if (out_n == 0) return VP_OK;
  if (!inside) fill_buffer(dst, (size_t)out_n, esz, dtype, fill, swapped);
  if (empty) return VP_OK;

  /* Element strides of the source and of the output. */
  int64_t sstr[VP_MAX_NDIM], dstr[VP_MAX_NDIM];
  int64_t ss = 1, ds = 1;
  for (int a = ndim - 1; a >= 0; a--) {
    sstr[a] = ss;
    dstr[a] = ds;
    ss *= shape[a];
    ds *= r->shape[a];
  }
  /* The run axis: the outermost axis such that every axis inside it is
   * taken whole by both source and output. */
  int ax = ndim - 1;
  while (ax > 0 && r->start[ax] == 0 && r->shape[ax] == shape[ax]) ax--;
  size_t run_bytes = ndim == 0 ? esz : (size_t)((hi[ax] - lo[ax]) * sstr[ax]) * esz;

  int64_t idx[VP_MAX_NDIM];
  for (int a = 0; a < ax; a++) idx[a] = lo[a];
  for (;;) {
    int64_t so = 0, dof = 0;
    for (int a = 0; a < ax; a++) {
      so += idx[a] * sstr[a];
      dof += (idx[a] - r->start[a]) * dstr[a];
    }
    if (ndim > 0) {
      so += lo[ax] * sstr[ax];
      dof += (lo[ax] - r->start[ax]) * dstr[ax];
    }
    VP_TRY(copy_run(k, (uint64_t)so * esz, dst + (size_t)dof * esz, run_bytes));
    int a = ax - 1;
    while (a >= 0 && ++idx[a] == hi[a]) {
      idx[a] = lo[a];
      a--;
    }
    if (a < 0) break;
  }
  return VP_OK;
}

vp_status vp_region_read(vp_source *s, uint64_t offset, vp_dtype dtype, int ndim,
                         const int64_t *shape, const vp_region *r, double fill, int swapped,
                         void *dst) {
  if (!vp_dtype_valid(dtype) || ndim < 0 || ndim > VP_MAX_NDIM || r->ndim != ndim)
    return vp_fail(VP_ERR_INVALID_ARG, "%s: region read with dtype %d, ndim %d, region ndim %d",
                   s->name, (int)dtype, ndim, r->ndim);
  run_sink k = {s, NULL, offset};
  return region_walk(&k, dtype, ndim, shape, r, fill, swapped, dst);
}

void vp_region_copy(const void *src, vp_dtype dtype, int ndim, const int64_t *shape,
                    const vp_region *r, double fill, void *dst) {
  if (!vp_dtype_valid(dtype) || ndim < 0 || ndim > VP_MAX_NDIM || r->ndim != ndim) return;
  run_sink k = {NULL, src, 0};
  (void)region_walk(&k, dtype, ndim, shape, r, fill, 0, dst);
}

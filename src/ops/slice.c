/* slice (crop): a box of the spatial axes, given by anchor and shape per
 * sample; the affine is translated so world coordinates stay. */
#include <stdlib.h>
#include <string.h>

#include "core/convert.h"
#include "core/status.h"
#include "core/tensor.h"
#include "cuda/batch_launch.h"
#include "ops/op.h"
#ifdef VP_HAVE_CUDA
#include "cuda/kernels.h"
#endif

enum { ARG_ANCHOR, ARG_SHAPE, ARG_OOB, ARG_FILL, ARG_REL_ANCHOR };
enum { OOB_ERROR, OOB_PAD, OOB_TRIM };

/* 2^40 voxels per axis: far past any volume, and sums stay exact. */
#define SLICE_MAX 1099511627776.0

static const vp_arg_spec k_args[] = {
    {"anchor", VP_ARG_INTS, "[]", -SLICE_MAX, SLICE_MAX, 3, NULL,
     VP_ARG_PER_SAMPLE | VP_ARG_EMPTY_OK,
     "first voxel of the box, one index per spatial axis in array order (D, H, W); may be "
     "negative (give this or rel_anchor)"},
    {"shape", VP_ARG_INTS, NULL, 0, SLICE_MAX, 3, NULL, VP_ARG_PER_SAMPLE,
     "extent of the box per spatial axis"},
    {"out_of_bounds_policy", VP_ARG_ENUM, "\"error\"", 0, 0, 0, "error|pad|trim_to_shape", 0,
     "a box reaching outside the input: error, pad with fill_value, or trim the box to the "
     "input"},
    {"fill_value", VP_ARG_FLOAT, "0", -1e300, 1e300, 0, NULL, 0,
     "value of padded voxels (rounded and saturated to the dtype)"},
    {"rel_anchor", VP_ARG_FLOATS, "[]", 0, 1, 3, NULL, VP_ARG_PER_SAMPLE | VP_ARG_EMPTY_OK,
     "the box's position as a fraction in [0, 1] per spatial axis of the positions it can "
     "take: r maps to floor(r * (n - shape + 1)) when the box fits the extent n, else to "
     "-floor(r * (shape - n + 1)) (the box then overhangs; use a pad policy). With a uniform "
     "node this is a random crop"},
};

static int spatial(const vp_tensor *t) {
  return t->spatial_ndim < t->ndim ? t->spatial_ndim : t->ndim;
}

/* The box of sample i: start (input index of output voxel 0) and extent
 * per spatial axis, after the policy. */
static vp_status region(const vp_op_call *c, int64_t i, int *sn_out, int64_t start[3],
                        int64_t extent[3]) {
  const vp_tensor *t = c->in[0][i];
  int sn = spatial(t);
  const vp_arg_value *anchor = vp_arg(c->args, ARG_ANCHOR, i);
  const vp_arg_value *rel = vp_arg(c->args, ARG_REL_ANCHOR, i);
  const vp_arg_value *shape = vp_arg(c->args, ARG_SHAPE, i);
  int policy = (int)vp_arg_num(c->args, ARG_OOB, i);
  if (t->ndim == 0)
    return vp_fail(VP_ERR_INVALID_ARG, "slice: sample %lld is a scalar: nothing to slice",
                   (long long)i);
  if ((anchor->len > 0) == (rel->len > 0))
    return vp_fail(VP_ERR_INVALID_ARG, "slice: give exactly one of 'anchor' and 'rel_anchor'");
  if (rel->len > 0) anchor = rel;
  if (anchor->len != sn || shape->len != sn)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "slice: argument '%s' has %d values for sample %lld, which has %d spatial "
                   "axes",
                   anchor->len != sn ? (rel->len ? "rel_anchor" : "anchor") : "shape",
                   anchor->len != sn ? anchor->len : shape->len, (long long)i, sn);
  for (int a = 0; a < sn; a++) {
    int64_t n = t->shape[t->ndim - sn + a];
    int64_t len = (int64_t)shape->v[a], lo = (int64_t)anchor->v[a];
    if (rel->len) { /* r < 1 keeps floor() inside the valid positions; r = 1 is the last */
      double r = rel->v[a] < 1.0 ? rel->v[a] : 1.0 - 1e-12;
      lo = n >= len ? (int64_t)(r * (double)(n - len + 1)) : -(int64_t)(r * (double)(len - n + 1));
    }
    int64_t hi = lo + len;
    if (policy == OOB_TRIM) {
      int64_t b = lo < 0 ? 0 : (lo > n ? n : lo);
      int64_t e = hi > n ? n : (hi < b ? b : hi);
      start[a] = b;
      extent[a] = e - b;
    } else {
      if (policy == OOB_ERROR && (lo < 0 || hi > n))
        return vp_fail(VP_ERR_OUT_OF_BOUNDS,
                       "slice: sample %lld: the box [%lld, %lld) of spatial axis %d lies outside "
                       "[0, %lld) (out_of_bounds_policy \"pad\" or \"trim_to_shape\" allow it)",
                       (long long)i, (long long)lo, (long long)hi, a, (long long)n);
      start[a] = lo;
      extent[a] = len;
    }
  }
  *sn_out = sn;
  return VP_OK;
}

static vp_status infer(const vp_op_call *c, int64_t i, vp_out_spec *out) {
  const vp_tensor *t = c->in[0][i];
  int sn;
  int64_t start[3], extent[3];
  VP_TRY(region(c, i, &sn, start, extent));
  out->dtype = t->dtype;
  out->ndim = t->ndim;
  memcpy(out->shape, t->shape, sizeof out->shape);
  for (int a = 0; a < sn; a++) out->shape[t->ndim - sn + a] = extent[a];
  return VP_OK;
}

/* Output voxel k is input voxel k + start: the translation moves by the
 * affine's columns times start (NIfTI column sn - 1 - a for array axis a). */
static vp_status meta(const vp_op_call *c, int64_t i) {
  int sn;
  int64_t start[3], extent[3];
  VP_TRY(region(c, i, &sn, start, extent));
  vp_tensor *out = c->out[0][i];
  for (int a = 0; a < sn; a++)
    for (int row = 0; row < 3; row++)
      out->affine[row * 4 + 3] += out->affine[row * 4 + (sn - 1 - a)] * (double)start[a];
  return VP_OK;
}

/* desc[i] for every sample: shapes, start, fill bytes (no pointers on the
 * CPU path, which reads the tensors). */
static vp_status describe(const vp_op_call *c, vp_bl_desc **out) {
  vp_bl_desc *d = calloc((size_t)c->batch, sizeof *d);
  if (!d) return vp_fail(VP_ERR_NOMEM, "slice: out of memory");
  for (int64_t i = 0; i < c->batch; i++) {
    const vp_tensor *in = c->in[0][i];
    const vp_tensor *o = c->out[0][i];
    int sn;
    int64_t start[3], extent[3];
    vp_status s = region(c, i, &sn, start, extent);
    if (s != VP_OK) {
      free(d);
      return s;
    }
    vp_bl_shape4(in->ndim, in->shape, sn, d[i].in_shape);
    vp_bl_shape4(o->ndim, o->shape, sn, d[i].out_shape);
    for (int a = 0; a < sn; a++) d[i].start[4 - sn + a] = start[a];
    d[i].in = in->data;
    d[i].out = o->data;
    d[i].numel = vp_tensor_numel(o);
    vp_cvt_store(&d[i].fill, in->dtype, 0, vp_arg_num(c->args, ARG_FILL, i));
  }
  *out = d;
  return VP_OK;
}

typedef struct slice_ctx {
  const vp_op_call *c;
  const vp_bl_desc *d;
} slice_ctx;

static void fill(unsigned char *dst, int64_t n, const void *value, size_t es) {
  for (int64_t k = 0; k < n; k++) memcpy(dst + (size_t)k * es, value, es);
}

/* Output rows [begin, end) of sample i: the part inside the input is
 * copied, the rest filled. */
static vp_status slice_rows(void *ctx, int64_t i, int64_t begin, int64_t end) {
  const slice_ctx *sc = ctx;
  const vp_bl_desc *d = &sc->d[i];
  const size_t es = vp_dtype_size(sc->c->in[0][i]->dtype);
  const int64_t oD = d->out_shape[1], oH = d->out_shape[2], oW = d->out_shape[3];
  const int64_t iD = d->in_shape[1], iH = d->in_shape[2], iW = d->in_shape[3];
  /* the W range that lies inside the input, the same for every row */
  int64_t w0 = -d->start[3], w1 = iW - d->start[3];
  w0 = w0 < 0 ? 0 : (w0 > oW ? oW : w0);
  w1 = w1 < w0 ? w0 : (w1 > oW ? oW : w1);
  const unsigned char *src = d->in;
  unsigned char *dst = d->out;
  for (int64_t r = begin; r < end; r++) {
    int64_t h = r % oH, q = r / oH, z = q % oD, o = q / oD;
    int64_t ih = h + d->start[2], iz = z + d->start[1];
    unsigned char *dr = dst + (size_t)(r * oW) * es;
    if (ih < 0 || ih >= iH || iz < 0 || iz >= iD) {
      fill(dr, oW, &d->fill, es);
      continue;
    }
    const unsigned char *sr = src + (size_t)(((o * iD + iz) * iH + ih) * iW) * es;
    fill(dr, w0, &d->fill, es);
    memcpy(dr + (size_t)w0 * es, sr + (size_t)(w0 + d->start[3]) * es, (size_t)(w1 - w0) * es);
    fill(dr + (size_t)w1 * es, oW - w1, &d->fill, es);
  }
  return VP_OK;
}

static vp_status run_cpu(const vp_op_call *c) {
  vp_bl_desc *d;
  VP_TRY(describe(c, &d));
  int64_t *rows = malloc((size_t)c->batch * sizeof *rows);
  vp_status s;
  if (!rows) {
    s = vp_fail(VP_ERR_NOMEM, "slice: out of memory");
  } else {
    int64_t widest = 1;
    for (int64_t i = 0; i < c->batch; i++) {
      rows[i] = d[i].out_shape[3] ? d[i].numel / d[i].out_shape[3] : 0;
      if (d[i].out_shape[3] > widest) widest = d[i].out_shape[3];
    }
    slice_ctx sc = {c, d};
    s = vp_op_parallel(c, rows, 1 + (1 << 16) / widest, slice_rows, &sc);
  }
  free(rows);
  free(d);
  return s;
}

static vp_status run_gpu(const vp_op_call *c) {
#ifdef VP_HAVE_CUDA
  vp_bl_desc *d;
  VP_TRY(describe(c, &d));
  vp_status s = vp_cuda_slice(d, c->batch, vp_dtype_size(c->in[0][0]->dtype), c->stream);
  free(d);
  return s;
#else
  return vp_fail(VP_ERR_NO_DEVICE, "slice: voxpipe was built without its CUDA backend");
#endif
}

const vp_op_desc vp_op_slice = {
    .name = "slice",
    .doc = "Crops a box (anchor, shape) of the spatial axes of each sample; pads or trims at "
           "the borders; the affine follows.",
    .num_inputs = 1,
    .num_outputs = 1,
    .inputs = {"input"},
    .outputs = {"output"},
    .args = k_args,
    .num_args = 5,
    .infer = infer,
    .run_cpu = run_cpu,
    .run_gpu = run_gpu,
    .meta = meta,
};

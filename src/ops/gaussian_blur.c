/* gaussian_blur: a separable Gaussian blur of the spatial axes of each
 * sample, with probability p per sample.
 *
 * Kernel: sigma per spatial axis (one value for all, or one per axis in
 * array order; 0 leaves an axis alone), radius r = ceil(truncate * sigma)
 * taps each side (truncate 3 by default: a window of 2 ceil(3 sigma) + 1),
 * weights exp(-k^2 / (2 sigma^2)) computed per sample in float64 and
 * normalised to sum 1. Border: scipy's 'reflect' (d c b a | a b c d).
 * Channels (the leading non-spatial axes) are blurred independently.
 * scipy.ndimage.gaussian_filter(x, sigma, mode='reflect', truncate=t')
 * computes the same with t' = ceil(truncate * sigma) / sigma per axis:
 * scipy's radius is int(t' sigma + 0.5).
 *
 * Passes W, H, D through a float32 intermediate (float64 for float64 data):
 * see src/cuda/gaussian_blur.h. Integer outputs round to nearest even and
 * saturate.
 *
 * Randomness: sample s is blurred when vp_u01f(word 0 of vp_rng_draw(key,
 * iteration, s, 2^64 - 1)) < p (sigma itself comes from the argument, a
 * random node in a pipeline). */
#include "cuda/gaussian_blur.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "core/tensor.h"
#include "cuda/batch_launch.h"
#include "ops/op.h"

enum { ARG_SIGMA, ARG_TRUNCATE, ARG_P };

static const vp_arg_spec k_args[] = {
    {"sigma", VP_ARG_FLOATS, "[1.0]", 0, 32, 3, NULL, VP_ARG_PER_SAMPLE,
     "standard deviation in voxels: one for every spatial axis or one per axis (array order); "
     "0 leaves an axis unblurred"},
    {"truncate", VP_ARG_FLOAT, "3.0", 0.5, 4, 0, NULL, 0,
     "the kernel reaches ceil(truncate * sigma) voxels each side"},
    {"p", VP_ARG_FLOAT, "1", 0, 1, 0, NULL, VP_ARG_PER_SAMPLE,
     "probability that a sample is blurred (else it is copied unchanged)"},
};

static int spatial(const vp_tensor *t) {
  return t->spatial_ndim < t->ndim ? t->spatial_ndim : t->ndim;
}

static int applies(const vp_op_call *c, int64_t i) {
  vp_u32x4 r = vp_rng_draw(c->key, c->iteration, c->sample_base + (uint32_t)i, UINT64_MAX);
  return vp_u01f(r.v[0]) < (float)vp_arg_num(c->args, ARG_P, i);
}

/* Sample i's sigma per axis D, H, W (missing spatial axes 0). */
static vp_status sigmas(const vp_op_call *c, int64_t i, double s[3]) {
  const vp_tensor *t = c->in[0][i];
  int sn = spatial(t);
  const vp_arg_value *v = vp_arg(c->args, ARG_SIGMA, i);
  if (sn < 1)
    return vp_fail(VP_ERR_INVALID_ARG, "gaussian_blur: sample %lld is a scalar: nothing to blur",
                   (long long)i);
  if (v->len != 1 && v->len != sn)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "gaussian_blur: argument 'sigma' has %d values for sample %lld, which has %d "
                   "spatial axes (give 1 or %d)",
                   v->len, (long long)i, sn, sn);
  for (int a = 0; a < 3; a++) {
    int k = a - (3 - sn);
    s[a] = k < 0 ? 0.0 : v->v[v->len == 1 ? 0 : k];
  }
  return VP_OK;
}

static vp_status infer(const vp_op_call *c, int64_t i, vp_out_spec *out) {
  const vp_tensor *t = c->in[0][i];
  double s[3];
  VP_TRY(sigmas(c, i, s));
  out->dtype = t->dtype;
  out->ndim = t->ndim;
  memcpy(out->shape, t->shape, sizeof out->shape);
  return VP_OK;
}

/* The chain planner's hook: a sample that p leaves alone is copied. */
static int passes(const vp_op_call *c, int64_t i) { return !applies(c, i); }

/* Half-kernel of sigma with truncate into w[0..r]; returns r. */
static int half_kernel(double sigma, double truncate, double *w) {
  if (!(sigma > 0)) {
    w[0] = 1.0;
    return 0;
  }
  int r = (int)ceil(truncate * sigma);
  if (r > VP_BLUR_MAX_RADIUS) r = VP_BLUR_MAX_RADIUS; /* unreachable within the bounds */
  double sum = 0;
  for (int k = 0; k <= r; k++) {
    w[k] = exp(-0.5 * (double)k * (double)k / (sigma * sigma));
    sum += k ? 2 * w[k] : w[k];
  }
  for (int k = 0; k <= r; k++) w[k] /= sum;
  return r;
}

/* Descriptors and the weight table of the batch (host pointers). */
static vp_status prepare(const vp_op_call *c, vp_blur_desc **descs, double **weights,
                         int64_t *n_weights) {
  *descs = calloc((size_t)c->batch, sizeof **descs);
  *weights = malloc((size_t)c->batch * 3 * (VP_BLUR_MAX_RADIUS + 1) * sizeof **weights);
  *n_weights = 0;
  if (!*descs || !*weights) {
    free(*descs);
    free(*weights);
    *descs = NULL;
    *weights = NULL;
    return vp_fail(VP_ERR_NOMEM, "gaussian_blur: out of memory");
  }
  const double truncate = vp_arg_num(c->args, ARG_TRUNCATE, 0);
  for (int64_t i = 0; i < c->batch; i++) {
    const vp_tensor *t = c->in[0][i];
    vp_blur_desc *d = &(*descs)[i];
    double s[3];
    vp_status st = sigmas(c, i, s);
    if (st != VP_OK) {
      free(*descs);
      free(*weights);
      *descs = NULL;
      *weights = NULL;
      return st;
    }
    d->in = t->data;
    d->out = c->out[0][i]->data;
    vp_bl_shape4(t->ndim, t->shape, spatial(t), d->shape);
    d->numel = vp_tensor_numel(t);
    d->apply = (uint32_t)applies(c, i);
    for (int a = 0; a < 3; a++) {
      d->woff[a] = *n_weights;
      d->radius[a] = half_kernel(s[a], truncate, *weights + *n_weights);
      *n_weights += d->radius[a] + 1;
    }
  }
  return VP_OK;
}

/* ---------------------------------------------------------------- */
/* CPU body                                                          */

typedef struct blur_ctx {
  vp_blur_desc *d; /* tmp_a: the sample's intermediate (host) */
  const double *w;
  vp_dtype t;
  int dbl; /* float64 data: float64 intermediate */
} blur_ctx;

static void put_acc(void *tmp, int dbl, int64_t e, double v) {
  if (dbl)
    ((double *)tmp)[e] = v;
  else
    ((float *)tmp)[e] = (float)v;
}

/* Pass W, rows [begin, end) (a row = the W voxels of one (outer, d, h)). */
static vp_status pass_w(void *ctx, int64_t i, int64_t begin, int64_t end) {
  const blur_ctx *bc = ctx;
  const vp_blur_desc *d = &bc->d[i];
  const int64_t W = d->shape[3];
  const double *w = bc->w + d->woff[2];
  const int r = d->radius[2];
  for (int64_t row = begin; row < end; row++)
    for (int64_t x = 0; x < W; x++) {
      double v = bc->dbl ? vp_blur_taps_d(d->in, bc->t, row * W, 1, W, x, w, r)
                         : (double)vp_blur_taps_f(d->in, bc->t, row * W, 1, W, x, w, r);
      put_acc(d->tmp_a, bc->dbl, row * W + x, v);
    }
  return VP_OK;
}

/* Pass H in place on the intermediate, planes [begin, end) (a plane = the
 * H x W voxels of one (outer, d)), each read from a copy. */
static vp_status pass_h(void *ctx, int64_t i, int64_t begin, int64_t end) {
  const blur_ctx *bc = ctx;
  const vp_blur_desc *d = &bc->d[i];
  const int64_t H = d->shape[2], W = d->shape[3], HW = H * W;
  const double *w = bc->w + d->woff[1];
  const int r = d->radius[1];
  const size_t as = bc->dbl ? sizeof(double) : sizeof(float);
  const vp_dtype at = bc->dbl ? VP_F64 : VP_F32;
  void *plane = malloc((size_t)HW * as);
  if (!plane)
    return vp_fail(VP_ERR_NOMEM, "gaussian_blur: out of memory for a %lld-voxel plane",
                   (long long)HW);
  for (int64_t pl = begin; pl < end; pl++) {
    char *dst = (char *)d->tmp_a + (size_t)(pl * HW) * as;
    memcpy(plane, dst, (size_t)HW * as);
    for (int64_t h = 0; h < H; h++)
      for (int64_t x = 0; x < W; x++) {
        double v = bc->dbl ? vp_blur_taps_d(plane, at, x, W, H, h, w, r)
                           : (double)vp_blur_taps_f(plane, at, x, W, H, h, w, r);
        put_acc(dst, bc->dbl, h * W + x, v);
      }
  }
  free(plane);
  return VP_OK;
}

/* Pass D from the intermediate into the output, rows [begin, end);
 * samples that p left alone are copied here. */
static vp_status pass_d(void *ctx, int64_t i, int64_t begin, int64_t end) {
  const blur_ctx *bc = ctx;
  const vp_blur_desc *d = &bc->d[i];
  const int64_t D = d->shape[1], H = d->shape[2], W = d->shape[3], HW = H * W;
  const size_t es = vp_dtype_size(bc->t);
  if (!d->apply) {
    memcpy((char *)d->out + (size_t)(begin * W) * es,
           (const char *)d->in + (size_t)(begin * W) * es, (size_t)((end - begin) * W) * es);
    return VP_OK;
  }
  const double *w = bc->w + d->woff[0];
  const int r = d->radius[0];
  for (int64_t row = begin; row < end; row++) {
    const int64_t z = (row / H) % D;
    for (int64_t x = 0; x < W; x++) {
      const int64_t e = row * W + x, base = e - z * HW;
      if (bc->dbl)
        vp_cvt_store(d->out, bc->t, e, vp_blur_taps_d(d->tmp_a, VP_F64, base, HW, D, z, w, r));
      else
        vp_blur_storef(d->out, bc->t, e, vp_blur_taps_f(d->tmp_a, VP_F32, base, HW, D, z, w, r));
    }
  }
  return VP_OK;
}

static vp_status run_cpu(const vp_op_call *c) {
  if (c->batch < 1) return VP_OK;
  blur_ctx bc = {NULL, NULL, c->in[0][0]->dtype, c->in[0][0]->dtype == VP_F64};
  double *weights;
  int64_t n_weights;
  VP_TRY(prepare(c, &bc.d, &weights, &n_weights));
  bc.w = weights;
  const size_t as = bc.dbl ? sizeof(double) : sizeof(float);
  int64_t *units = malloc((size_t)c->batch * sizeof *units);
  vp_status s = units ? VP_OK : vp_fail(VP_ERR_NOMEM, "gaussian_blur: out of memory");
  int64_t widest = 1;
  for (int64_t i = 0; i < c->batch && s == VP_OK; i++) {
    vp_blur_desc *d = &bc.d[i];
    if (d->shape[3] > widest) widest = d->shape[3];
    if (!d->apply || d->numel == 0) continue;
    if ((uint64_t)d->numel > SIZE_MAX / as || !(d->tmp_a = malloc((size_t)d->numel * as)))
      s = vp_fail(VP_ERR_NOMEM,
                  "gaussian_blur: no memory for the %lld-voxel intermediate of "
                  "sample %lld",
                  (long long)d->numel, (long long)i);
  }
  const int64_t row_grain = 1 + (1 << 15) / widest;
  if (s == VP_OK) { /* W: rows of applied samples */
    for (int64_t i = 0; i < c->batch; i++)
      units[i] = bc.d[i].apply && bc.d[i].shape[3] ? bc.d[i].numel / bc.d[i].shape[3] : 0;
    s = vp_op_parallel(c, units, row_grain, pass_w, &bc);
  }
  if (s == VP_OK) { /* H: planes of applied samples with an H kernel */
    for (int64_t i = 0; i < c->batch; i++) {
      const vp_blur_desc *d = &bc.d[i];
      units[i] = d->apply && d->radius[1] > 0 ? d->shape[0] * d->shape[1] : 0;
    }
    s = vp_op_parallel(c, units, 1, pass_h, &bc);
  }
  if (s == VP_OK) { /* D (or the copy): rows of every sample but those a chain passes
                     * through (output = input, call_chain.c) */
    for (int64_t i = 0; i < c->batch; i++)
      units[i] = bc.d[i].shape[3] && (bc.d[i].apply || bc.d[i].in != bc.d[i].out)
                     ? bc.d[i].numel / bc.d[i].shape[3]
                     : 0;
    s = vp_op_parallel(c, units, row_grain, pass_d, &bc);
  }
  for (int64_t i = 0; i < c->batch; i++) free(bc.d[i].tmp_a);
  free(units);
  free(bc.d);
  free(weights);
  return s;
}

static vp_status run_gpu(const vp_op_call *c) {
#ifdef VP_HAVE_CUDA
  if (c->batch < 1) return VP_OK;
  vp_blur_desc *d;
  double *weights;
  int64_t n_weights;
  VP_TRY(prepare(c, &d, &weights, &n_weights));
  vp_status s =
      vp_cuda_gaussian_blur(d, c->batch, weights, n_weights, c->in[0][0]->dtype, c->stream);
  free(d);
  free(weights);
  return s;
#else
  return vp_fail(VP_ERR_NO_DEVICE, "gaussian_blur: voxpipe was built without its CUDA backend");
#endif
}

const vp_op_desc vp_op_gaussian_blur = {
    .name = "gaussian_blur",
    .doc =
        "Blurs the spatial axes of each sample with a separable Gaussian (sigma per axis, "
        "radius ceil(truncate*sigma), border reflect as scipy's gaussian_filter) with "
        "probability p; integers round and saturate.",
    .num_inputs = 1,
    .num_outputs = 1,
    .inputs = {"input"},
    .outputs = {"output"},
    .args = k_args,
    .num_args = 3,
    .infer = infer,
    .run_cpu = run_cpu,
    .run_gpu = run_gpu,
    .passes = passes,
    .random = 1,
};

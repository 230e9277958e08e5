/* erase: random cuboids ("holes") filled with a value or with Gaussian noise,
 * with probability p per sample (MONAI RandCoarseDropout, torchvision
 * RandomErasing). A hole spans every channel; holes may overlap.
 *
 * Randomness, sample s, with r = vp_rng_draw(key, iteration, s, 2^64 - 1):
 * - the sample is changed when vp_u01f(r[0]) < p;
 * - it gets holes + floor(vp_u01f(r[1]) * (max_holes - holes + 1)) holes
 *   (max_holes below holes counts as holes);
 * - hole h draws a = vp_rng_draw(key, iteration, s, 2^64 - 2 - h) and
 *   b = vp_rng_draw(key, iteration, s, 2^64 - 2 - 32 - h); on spatial axis
 *   k (0 = the first spatial axis) of extent n its extent is
 *   m = clamp(round(n * (lo_k + (hi_k - lo_k) * vp_u01f(a[k]))), 1, n)
 *   (round half to even; lo/hi = size_lo/size_hi, one value for every
 *   axis or one per axis) and its start is
 *   min(floor(vp_u01f(b[k]) * (n - m + 1)), n - m): uniform over the
 *   places where the hole fits;
 * - noise fill: element e (linear index in the sample) gets
 *   mean + stddev * z, z as gaussian_noise draws it (counter e / 4).
 * Integer outputs round and saturate the fill. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "core/tensor.h"
#include "cuda/batch_launch.h"
#include "cuda/intensity_kernels.h"
#include "ops/op.h"

enum {
  ARG_HOLES,
  ARG_MAX_HOLES,
  ARG_SIZE_LO,
  ARG_SIZE_HI,
  ARG_FILL,
  ARG_VALUE,
  ARG_MEAN,
  ARG_STDDEV,
  ARG_P
};

static const vp_arg_spec k_args[] = {
    {"holes", VP_ARG_INT, "1", 0, VP_ERASE_MAX_HOLES, 0, NULL, VP_ARG_PER_SAMPLE,
     "number of cuboids (the least number when max_holes is larger)"},
    {"max_holes", VP_ARG_INT, "0", 0, VP_ERASE_MAX_HOLES, 0, NULL, VP_ARG_PER_SAMPLE,
     "when above holes, the count is uniform in [holes, max_holes]"},
    {"size_lo", VP_ARG_FLOATS, "[0.1]", 0, 1, 3, NULL, VP_ARG_PER_SAMPLE,
     "smallest hole extent as a fraction of the axis: one for every spatial axis or one per "
     "axis"},
    {"size_hi", VP_ARG_FLOATS, "[0.3]", 0, 1, 3, NULL, VP_ARG_PER_SAMPLE,
     "largest hole extent as a fraction of the axis (extents are uniform in between, at least "
     "one voxel)"},
    {"fill", VP_ARG_ENUM, "\"value\"", 0, 0, 0, "value|noise", 0,
     "fill holes with `value` or with Gaussian noise N(mean, stddev^2)"},
    {"value", VP_ARG_FLOAT, "0", -1e300, 1e300, 0, NULL, VP_ARG_PER_SAMPLE, "the fill value"},
    {"mean", VP_ARG_FLOAT, "0", -1e30, 1e30, 0, NULL, VP_ARG_PER_SAMPLE, "mean of the noise fill"},
    {"stddev", VP_ARG_FLOAT, "1", 0, 1e30, 0, NULL, VP_ARG_PER_SAMPLE,
     "standard deviation of the noise fill"},
    {"p", VP_ARG_FLOAT, "1", 0, 1, 0, NULL, VP_ARG_PER_SAMPLE,
     "probability that a sample is changed (else it is copied unchanged)"},
};

static int spatial(const vp_tensor *t) {
  return t->spatial_ndim < t->ndim ? t->spatial_ndim : t->ndim;
}

static vp_status check(const vp_op_call *c, int64_t i) {
  const int sn = spatial(c->in[0][i]);
  if (sn < 1)
    return vp_fail(VP_ERR_INVALID_ARG, "erase: sample %lld is a scalar: nothing to erase",
                   (long long)i);
  const vp_arg_value *lo = vp_arg(c->args, ARG_SIZE_LO, i), *hi = vp_arg(c->args, ARG_SIZE_HI, i);
  if ((lo->len != 1 && lo->len != sn) || (hi->len != 1 && hi->len != sn))
    return vp_fail(VP_ERR_INVALID_ARG,
                   "erase: arguments 'size_lo' and 'size_hi' have %d and %d values for sample "
                   "%lld, which has %d spatial axes (give 1 or %d)",
                   lo->len, hi->len, (long long)i, sn, sn);
  for (int k = 0; k < sn; k++)
    if (lo->v[lo->len == 1 ? 0 : k] > hi->v[hi->len == 1 ? 0 : k])
      return vp_fail(VP_ERR_INVALID_ARG,
                     "erase: sample %lld: size_lo %g is above size_hi %g on spatial axis %d",
                     (long long)i, lo->v[lo->len == 1 ? 0 : k], hi->v[hi->len == 1 ? 0 : k], k);
  return VP_OK;
}

static vp_status infer(const vp_op_call *c, int64_t i, vp_out_spec *out) {
  const vp_tensor *t = c->in[0][i];
  VP_TRY(check(c, i));
  out->dtype = t->dtype;
  out->ndim = t->ndim;
  memcpy(out->shape, t->shape, sizeof out->shape);
  return VP_OK;
}

/* Sample i's descriptor: the draws documented above. */
static void describe(const vp_op_call *c, int64_t i, vp_erase_desc *d) {
  const vp_tensor *t = c->in[0][i];
  const int sn = spatial(t);
  const uint32_t sample = c->sample_base + (uint32_t)i;
  d->in = t->data;
  d->out = c->out[0][i]->data;
  vp_bl_shape4(t->ndim, t->shape, sn, d->shape);
  d->numel = vp_tensor_numel(t);
  d->sample = sample;
  d->noise = vp_arg_num(c->args, ARG_FILL, i) == 1;
  d->value = vp_arg_num(c->args, ARG_VALUE, i);
  d->mean = vp_arg_num(c->args, ARG_MEAN, i);
  d->stddev = vp_arg_num(c->args, ARG_STDDEV, i);
  vp_u32x4 r = vp_rng_draw(c->key, c->iteration, sample, UINT64_MAX);
  d->apply = vp_u01f(r.v[0]) < (float)vp_arg_num(c->args, ARG_P, i);
  const int64_t least = (int64_t)vp_arg_num(c->args, ARG_HOLES, i);
  int64_t most = (int64_t)vp_arg_num(c->args, ARG_MAX_HOLES, i);
  if (most < least) most = least;
  int64_t count = least + (int64_t)floor((double)vp_u01f(r.v[1]) * (double)(most - least + 1));
  d->holes = (int32_t)(count > most ? most : count);
  const vp_arg_value *lo = vp_arg(c->args, ARG_SIZE_LO, i), *hi = vp_arg(c->args, ARG_SIZE_HI, i);
  for (int h = 0; h < d->holes; h++) {
    vp_u32x4 a = vp_rng_draw(c->key, c->iteration, sample, UINT64_MAX - 1 - (uint64_t)h);
    vp_u32x4 b = vp_rng_draw(c->key, c->iteration, sample,
                             UINT64_MAX - 1 - VP_ERASE_MAX_HOLES - (uint64_t)h);
    for (int ax = 0; ax < 3; ax++) { /* D, H, W; missing spatial axes span their one voxel */
      const int k = ax - (3 - sn);
      const int64_t n = d->shape[1 + ax];
      if (k < 0 || n < 1) {
        d->lo[h][ax] = 0;
        d->hi[h][ax] = n;
        continue;
      }
      const double flo = lo->v[lo->len == 1 ? 0 : k], fhi = hi->v[hi->len == 1 ? 0 : k];
      double m = nearbyint((double)n * (flo + (fhi - flo) * (double)vp_u01f(a.v[k])));
      int64_t ext = m < 1 ? 1 : (m > (double)n ? n : (int64_t)m);
      int64_t start = (int64_t)floor((double)vp_u01f(b.v[k]) * (double)(n - ext + 1));
      if (start > n - ext) start = n - ext;
      d->lo[h][ax] = start;
      d->hi[h][ax] = start + ext;
    }
  }
}

static vp_status prepare(const vp_op_call *c, vp_erase_desc **out) {
  vp_erase_desc *d = calloc((size_t)c->batch, sizeof *d);
  if (!d) return vp_fail(VP_ERR_NOMEM, "erase: out of memory");
  for (int64_t i = 0; i < c->batch; i++) {
    vp_status s = check(c, i);
    if (s != VP_OK) {
      free(d);
      return s;
    }
    describe(c, i, &d[i]);
  }
  *out = d;
  return VP_OK;
}

typedef struct erase_ctx {
  const vp_op_call *c;
  const vp_erase_desc *d;
  vp_dtype t;
} erase_ctx;

static vp_status erase_range(void *ctx, int64_t i, int64_t begin, int64_t end) {
  const erase_ctx *ec = ctx;
  const vp_erase_desc *d = &ec->d[i];
  if (!d->apply || d->holes == 0) {
    const size_t es = vp_dtype_size(ec->t);
    memcpy((char *)d->out + (size_t)begin * es, (const char *)d->in + (size_t)begin * es,
           (size_t)(end - begin) * es);
    return VP_OK;
  }
  for (int64_t e = begin; e < end; e++) vp_erase_elem(d, ec->t, ec->c->key, ec->c->iteration, e);
  return VP_OK;
}

static vp_status run_cpu(const vp_op_call *c) {
  if (c->batch < 1) return VP_OK;
  vp_erase_desc *d = NULL;
  VP_TRY(prepare(c, &d));
  erase_ctx ec = {c, d, c->in[0][0]->dtype};
  vp_status s = vp_op_parallel_elems(c, 1 << 15, erase_range, &ec);
  free(d);
  return s;
}

static vp_status run_gpu(const vp_op_call *c) {
#ifdef VP_HAVE_CUDA
  if (c->batch < 1) return VP_OK;
  vp_erase_desc *d = NULL;
  VP_TRY(prepare(c, &d));
  vp_status s = vp_cuda_erase(d, c->batch, c->in[0][0]->dtype, c->key, c->iteration, c->stream);
  free(d);
  return s;
#else
  return vp_fail(VP_ERR_NO_DEVICE, "erase: voxpipe was built without its CUDA backend");
#endif
}

const vp_op_desc vp_op_erase = {
    .name = "erase",
    .doc =
        "Fills random cuboids of each sample (every channel) with a value or Gaussian noise "
        "with probability p (RandCoarseDropout / RandomErasing).",
    .num_inputs = 1,
    .num_outputs = 1,
    .inputs = {"input"},
    .outputs = {"output"},
    .args = k_args,
    .num_args = 9,
    .infer = infer,
    .run_cpu = run_cpu,
    .run_gpu = run_gpu,
    .random = 1,
};

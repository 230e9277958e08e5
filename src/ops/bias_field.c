/* bias_field: MONAI's RandBiasField. With probability p, a sample is
 * multiplied by a smooth field exp(sum of c * P_i(a) P_j(b) [P_k(c)]),
 * Legendre polynomials P of the spatial coordinates, each axis mapped to
 * [-1, 1] (numpy's linspace in float32, as MONAI); the same field for
 * every channel. 3-D: the terms (i, j, k) with i + j + k <= degree;
 * 2-D: (i, j) with j <= i (MONAI fills the lower triangle of the
 * coefficient matrix, so 2-D terms reach degree 2 * degree). The field is
 * evaluated per voxel in float64 (src/cuda/intensity_kernels.h).
 *
 * Randomness, sample s: it is changed when vp_u01f(word 0 of
 * vp_rng_draw(key, iteration, s, 2^64 - 1)) < p; coefficient j (MONAI's
 * order) is lo + (hi - lo) * vp_u01d(r[0], r[1]) with r = vp_rng_draw(key,
 * iteration, s, j) and [lo, hi] = coeff_range. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "core/tensor.h"
#include "cuda/batch_launch.h"
#include "cuda/intensity_kernels.h"
#include "ops/op.h"

enum { ARG_DEGREE, ARG_COEFF_RANGE, ARG_P };

static const vp_arg_spec k_args[] = {
    {"degree", VP_ARG_INT, "3", 1, VP_BIAS_MAX_DEGREE, 0, NULL, 0,
     "highest Legendre degree per term (MONAI's degree)"},
    {"coeff_range", VP_ARG_FLOATS, "[0.0, 0.1]", -10, 10, 2, NULL, VP_ARG_PER_SAMPLE,
     "[lo, hi]: the coefficients are uniform in it"},
    {"p", VP_ARG_FLOAT, "1", 0, 1, 0, NULL, VP_ARG_PER_SAMPLE,
     "probability that a sample is changed (else it is copied unchanged)"},
};

static int spatial(const vp_tensor *t) {
  return t->spatial_ndim < t->ndim ? t->spatial_ndim : t->ndim;
}

/* Number of coefficients of sn spatial axes at degree d (MONAI's n_coeff). */
static int terms(int sn, int d) {
  return sn == 3 ? (d + 1) * (d + 2) * (d + 3) / 6 : (d + 1) * (d + 2) / 2;
}

static vp_status check(const vp_op_call *c, int64_t i) {
  const vp_tensor *t = c->in[0][i];
  if (spatial(t) < 2)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "bias_field: sample %lld has %d spatial axes: the field is 2-D or 3-D",
                   (long long)i, spatial(t));
  const vp_arg_value *r = vp_arg(c->args, ARG_COEFF_RANGE, i);
  if (r->len != 2 || r->v[0] > r->v[1])
    return vp_fail(VP_ERR_INVALID_ARG,
                   "bias_field: argument 'coeff_range' of sample %lld must be [lo, hi] with lo <= "
                   "hi",
                   (long long)i);
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

static vp_status prepare(const vp_op_call *c, vp_bias_desc **out) {
  vp_bias_desc *d = calloc((size_t)c->batch, sizeof *d);
  if (!d) return vp_fail(VP_ERR_NOMEM, "bias_field: out of memory");
  const int degree = (int)vp_arg_num(c->args, ARG_DEGREE, 0);
  for (int64_t i = 0; i < c->batch; i++) {
    vp_status s = check(c, i);
    if (s != VP_OK) {
      free(d);
      return s;
    }
    const vp_tensor *t = c->in[0][i];
    const uint32_t sample = c->sample_base + (uint32_t)i;
    d[i].in = t->data;
    d[i].out = c->out[0][i]->data;
    d[i].sn = spatial(t);
    vp_bl_shape4(t->ndim, t->shape, d[i].sn, d[i].shape);
    d[i].numel = vp_tensor_numel(t);
    d[i].degree = degree;
    vp_u32x4 r = vp_rng_draw(c->key, c->iteration, sample, UINT64_MAX);
    d[i].apply = vp_u01f(r.v[0]) < (float)vp_arg_num(c->args, ARG_P, i);
    const vp_arg_value *range = vp_arg(c->args, ARG_COEFF_RANGE, i);
    for (int j = 0; j < terms(d[i].sn, degree); j++) {
      vp_u32x4 q = vp_rng_draw(c->key, c->iteration, sample, (uint64_t)j);
      d[i].coef[j] = range->v[0] + (range->v[1] - range->v[0]) * vp_u01d(q.v[0], q.v[1]);
    }
  }
  *out = d;
  return VP_OK;
}

typedef struct bias_ctx {
  const vp_bias_desc *d;
  vp_dtype t;
} bias_ctx;

static vp_status bias_range(void *ctx, int64_t i, int64_t begin, int64_t end) {
  const bias_ctx *bc = ctx;
  for (int64_t e = begin; e < end; e++) vp_bias_elem(&bc->d[i], bc->t, e);
  return VP_OK;
}

static vp_status run_cpu(const vp_op_call *c) {
  if (c->batch < 1) return VP_OK;
  vp_bias_desc *d = NULL;
  VP_TRY(prepare(c, &d));
  bias_ctx bc = {d, c->in[0][0]->dtype};
  vp_status s = vp_op_parallel_elems(c, 1 << 14, bias_range, &bc);
  free(d);
  return s;
}

static vp_status run_gpu(const vp_op_call *c) {
#ifdef VP_HAVE_CUDA
  if (c->batch < 1) return VP_OK;
  vp_bias_desc *d = NULL;
  VP_TRY(prepare(c, &d));
  vp_status s = vp_cuda_bias_field(d, c->batch, c->in[0][0]->dtype, c->stream);
  free(d);
  return s;
#else
  return vp_fail(VP_ERR_NO_DEVICE, "bias_field: voxpipe was built without its CUDA backend");
#endif
}

const vp_op_desc vp_op_bias_field = {
    .name = "bias_field",
    .doc =
        "Multiplies each sample with probability p by a random smooth bias field (MONAI "
        "RandBiasField: exp of Legendre terms up to degree with coefficients uniform in "
        "coeff_range); integers round and saturate.",
    .num_inputs = 1,
    .num_outputs = 1,
    .inputs = {"input"},
    .outputs = {"output"},
    .args = k_args,
    .num_args = 3,
    .infer = infer,
    .run_cpu = run_cpu,
    .run_gpu = run_gpu,
    .random = 1,
};

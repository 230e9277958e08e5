/* gaussian_noise: adds N(mean, stddev^2) to every element of a sample, with
 * probability p per sample.
 *
 * The numbers, shared with the GPU body: sample s (counter sample index
 * sample_base + s) is changed when vp_u01f(word 0 of vp_rng_draw(key,
 * iteration, s, 2^64 - 1)) < p; element e then adds mean + stddev * z with
 * z from r = vp_rng_draw(key, iteration, s, e / 4): vp_normal2f(r[0], r[1])
 * gives (z of 4k, z of 4k+1), vp_normal2f(r[2], r[3]) gives 4k+2 and 4k+3.
 * Element counters stay far below 2^64 - 1, so the decision never shares a
 * draw with the noise. */
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "core/tensor.h"
#include "cuda/batch_launch.h"
#include "ops/op.h"
#ifdef VP_HAVE_CUDA
#include "cuda/kernels.h"
#endif

enum { ARG_MEAN, ARG_STDDEV, ARG_P };

static const vp_arg_spec k_args[] = {
    {"mean", VP_ARG_FLOAT, "0", -1e30, 1e30, 0, NULL, VP_ARG_PER_SAMPLE, "mean of the noise"},
    {"stddev", VP_ARG_FLOAT, "1", 0, 1e30, 0, NULL, VP_ARG_PER_SAMPLE,
     "standard deviation of the noise"},
    {"p", VP_ARG_FLOAT, "1", 0, 1, 0, NULL, VP_ARG_PER_SAMPLE,
     "probability that a sample gets noise (else it is copied unchanged)"},
};

static int applies(const vp_op_call *c, int64_t i) {
  vp_u32x4 r = vp_rng_draw(c->key, c->iteration, c->sample_base + (uint32_t)i, UINT64_MAX);
  return vp_u01f(r.v[0]) < (float)vp_arg_num(c->args, ARG_P, i);
}

static vp_status infer(const vp_op_call *c, int64_t i, vp_out_spec *out) {
  const vp_tensor *t = c->in[0][i];
  out->dtype = t->dtype;
  out->ndim = t->ndim;
  memcpy(out->shape, t->shape, sizeof out->shape);
  return VP_OK;
}

typedef struct noise_ctx {
  const vp_op_call *c;
  const int *apply;
} noise_ctx;

/* Groups of four elements [begin, end) of sample i. */
static vp_status noise_groups(void *ctx, int64_t i, int64_t begin, int64_t end) {
  const noise_ctx *nc = ctx;
  const vp_op_call *c = nc->c;
  const vp_tensor *in = c->in[0][i];
  vp_tensor *out = c->out[0][i];
  const int64_t n = vp_tensor_numel(in);
  if (!nc->apply[i]) {
    size_t es = vp_dtype_size(in->dtype);
    int64_t e0 = begin * 4, e1 = end * 4 < n ? end * 4 : n;
    memcpy((char *)out->data + (size_t)e0 * es, (const char *)in->data + (size_t)e0 * es,
           (size_t)(e1 - e0) * es);
    return VP_OK;
  }
  const double mean = vp_arg_num(c->args, ARG_MEAN, i);
  const double stddev = vp_arg_num(c->args, ARG_STDDEV, i);
  const uint32_t sample = c->sample_base + (uint32_t)i;
  for (int64_t g = begin; g < end; g++) {
    vp_u32x4 r = vp_rng_draw(c->key, c->iteration, sample, (uint64_t)g);
    vp_f32x2 a = vp_normal2f(r.v[0], r.v[1]), b = vp_normal2f(r.v[2], r.v[3]);
    const float z[4] = {a.x, a.y, b.x, b.y};
    for (int k = 0; k < 4 && g * 4 + k < n; k++)
      vp_noise_elem(in->data, out->data, in->dtype, g * 4 + k, mean, stddev, z[k]);
  }
  return VP_OK;
}

static vp_status run_cpu(const vp_op_call *c) {
  int64_t *units = malloc((size_t)c->batch * sizeof *units);
  int *apply = malloc((size_t)c->batch * sizeof *apply);
  vp_status s = VP_OK;
  if (!units || !apply) {
    s = vp_fail(VP_ERR_NOMEM, "gaussian_noise: out of memory");
  } else {
    for (int64_t i = 0; i < c->batch; i++) {
      units[i] = (vp_tensor_numel(c->in[0][i]) + 3) / 4;
      apply[i] = applies(c, i);
    }
    noise_ctx nc = {c, apply};
    s = vp_op_parallel(c, units, 1 << 14, noise_groups, &nc);
  }
  free(units);
  free(apply);
  return s;
}

static vp_status run_gpu(const vp_op_call *c) {
#ifdef VP_HAVE_CUDA
  vp_bl_desc *d = calloc((size_t)c->batch, sizeof *d);
  if (!d) return vp_fail(VP_ERR_NOMEM, "gaussian_noise: out of memory");
  for (int64_t i = 0; i < c->batch; i++) {
    d[i].in = c->in[0][i]->data;
    d[i].out = c->out[0][i]->data;
    d[i].numel = vp_tensor_numel(c->in[0][i]);
    d[i].flags = applies(c, i) ? VP_BL_APPLY : 0;
    d[i].sample = c->sample_base + (uint32_t)i;
    d[i].param[0] = vp_arg_num(c->args, ARG_MEAN, i);
    d[i].param[1] = vp_arg_num(c->args, ARG_STDDEV, i);
  }
  vp_status s =
      vp_cuda_gaussian_noise(d, c->batch, c->in[0][0]->dtype, c->key, c->iteration, c->stream);
  free(d);
  return s;
#else
  return vp_fail(VP_ERR_NO_DEVICE, "gaussian_noise: voxpipe was built without its CUDA backend");
#endif
}

const vp_op_desc vp_op_gaussian_noise = {
    .name = "gaussian_noise",
    .doc = "Adds Gaussian noise N(mean, stddev^2) to each sample with probability p (integers "
           "round and saturate).",
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

/* gaussian_noise: adds N(mean, stddev^2) to every element of a sample, with
 * probability p per sample; a stage of the pointwise engine.
 *
 * The numbers (src/cuda/pointwise.h, vp_pw_gauss_z): sample s (counter
 * sample index sample_base + s) is changed when vp_u01f(word 0 of
 * vp_rng_draw(key, iteration, s, 2^64 - 1)) < p; element e then adds
 * mean + stddev * z with z from r = vp_rng_draw(key, iteration, s, e / 4):
 * vp_normal2f(r[0], r[1]) gives (z of 4k, z of 4k+1), vp_normal2f(r[2],
 * r[3]) gives 4k+2 and 4k+3. Float16 and float32 add in float, the others
 * in double (integers then round to nearest even and saturate). */
#include "core/status.h"
#include "core/tensor.h"
#include "ops/pointwise.h"

extern const vp_op_desc vp_op_gaussian_noise;

enum { ARG_MEAN, ARG_STDDEV, ARG_P };

static const vp_arg_spec k_args[] = {
    {"mean", VP_ARG_FLOAT, "0", -1e30, 1e30, 0, NULL, VP_ARG_PER_SAMPLE, "mean of the noise"},
    {"stddev", VP_ARG_FLOAT, "1", 0, 1e30, 0, NULL, VP_ARG_PER_SAMPLE,
     "standard deviation of the noise"},
    {"p", VP_ARG_FLOAT, "1", 0, 1, 0, NULL, VP_ARG_PER_SAMPLE,
     "probability that a sample gets noise (else it is copied unchanged)"},
};

static vp_status infer(const vp_op_call *c, int64_t i, vp_out_spec *out) {
  return vp_pw_infer_same_shape(c, i, c->in[0][i]->dtype, out);
}

static vp_status stage(const vp_op_call *c, int64_t i, vp_pw_stage *st) {
  vp_pw_stage_init(st, c->in[0][i]->dtype);
  if (!vp_pw_applies(c, i, vp_arg_num(c->args, ARG_P, i))) return VP_OK;
  st->kind = VP_PW_GAUSSIAN;
  st->mean = vp_arg_num(c->args, ARG_MEAN, i);
  st->stddev = vp_arg_num(c->args, ARG_STDDEV, i);
  st->key = c->key;
  st->iteration = c->iteration;
  st->sample = c->sample_base + (uint32_t)i;
  return VP_OK;
}

static vp_status run_cpu(const vp_op_call *c) {
  return vp_pw_run_cpu_one(&vp_op_gaussian_noise, c);
}
static vp_status run_gpu(const vp_op_call *c) {
  return vp_pw_run_gpu_one(&vp_op_gaussian_noise, c);
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
    .pointwise = stage,
};

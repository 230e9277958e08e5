/* cast: converts each sample to another dtype (round to nearest even and
 * saturate into integers, NaN -> 0; float16 through float), as
 * core/convert.h converts elements. A stage of the pointwise engine that
 * only rounds: an identity cast copies bytes, so int64 values above 2^53
 * and NaN payloads survive it. */
#include "core/status.h"
#include "core/tensor.h"
#include "ops/pointwise.h"

extern const vp_op_desc vp_op_cast;

enum { ARG_DTYPE };

static const vp_arg_spec k_args[] = {
    {"dtype", VP_ARG_DTYPE, NULL, 0, 0, 0, NULL, 0,
     "output dtype; floats to integers round to nearest even and saturate, NaN becomes 0"},
};

static vp_dtype target(const vp_op_call *c) {
  return (vp_dtype)(int)vp_arg_num(c->args, ARG_DTYPE, 0);
}

static vp_status infer(const vp_op_call *c, int64_t i, vp_out_spec *out) {
  return vp_pw_infer_same_shape(c, i, target(c), out);
}

static vp_status stage(const vp_op_call *c, int64_t i, vp_pw_stage *st) {
  vp_pw_stage_init(st, target(c));
  return VP_OK;
}

static vp_status run_cpu(const vp_op_call *c) { return vp_pw_run_cpu_one(&vp_op_cast, c); }
static vp_status run_gpu(const vp_op_call *c) { return vp_pw_run_gpu_one(&vp_op_cast, c); }

const vp_op_desc vp_op_cast = {
    .name = "cast",
    .doc = "Converts each sample to another dtype (integers saturate; NaN becomes 0).",
    .num_inputs = 1,
    .num_outputs = 1,
    .inputs = {"input"},
    .outputs = {"output"},
    .args = k_args,
    .num_args = 1,
    .infer = infer,
    .run_cpu = run_cpu,
    .run_gpu = run_gpu,
    .pointwise = stage,
};

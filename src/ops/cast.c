/* cast: converts each sample to another dtype (round to nearest even and
 * saturate into integers, NaN -> 0), with core/convert.h's element
 * conversion, which the GPU body shares. */
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

enum { ARG_DTYPE };

static const vp_arg_spec k_args[] = {
    {"dtype", VP_ARG_DTYPE, NULL, 0, 0, 0, NULL, 0,
     "output dtype; floats to integers round to nearest even and saturate, NaN becomes 0"},
};

static vp_dtype target(const vp_op_call *c) {
  return (vp_dtype)(int)vp_arg_num(c->args, ARG_DTYPE, 0);
}

static vp_status infer(const vp_op_call *c, int64_t i, vp_out_spec *out) {
  const vp_tensor *t = c->in[0][i];
  out->dtype = target(c);
  out->ndim = t->ndim;
  memcpy(out->shape, t->shape, sizeof out->shape);
  return VP_OK;
}

typedef struct cast_ctx {
  const vp_op_call *c;
  vp_dtype to;
} cast_ctx;

static vp_status cast_range(void *ctx, int64_t i, int64_t begin, int64_t end) {
  const cast_ctx *cc = ctx;
  const vp_tensor *in = cc->c->in[0][i];
  vp_tensor *out = cc->c->out[0][i];
  if (in->dtype == cc->to) {
    size_t es = vp_dtype_size(in->dtype);
    memcpy((char *)out->data + (size_t)begin * es, (const char *)in->data + (size_t)begin * es,
           (size_t)(end - begin) * es);
    return VP_OK;
  }
  for (int64_t e = begin; e < end; e++)
    vp_cvt_store(out->data, cc->to, e, vp_cvt_load(in->data, in->dtype, e));
  return VP_OK;
}

static vp_status run_cpu(const vp_op_call *c) {
  int64_t *units = malloc((size_t)c->batch * sizeof *units);
  if (!units) return vp_fail(VP_ERR_NOMEM, "cast: out of memory");
  for (int64_t i = 0; i < c->batch; i++) units[i] = vp_tensor_numel(c->in[0][i]);
  cast_ctx cc = {c, target(c)};
  vp_status s = vp_op_parallel(c, units, 1 << 16, cast_range, &cc);
  free(units);
  return s;
}

static vp_status run_gpu(const vp_op_call *c) {
#ifdef VP_HAVE_CUDA
  vp_bl_desc *d = calloc((size_t)c->batch, sizeof *d);
  if (!d) return vp_fail(VP_ERR_NOMEM, "cast: out of memory");
  for (int64_t i = 0; i < c->batch; i++) {
    d[i].in = c->in[0][i]->data;
    d[i].out = c->out[0][i]->data;
    d[i].numel = vp_tensor_numel(c->in[0][i]);
  }
  vp_status s = vp_cuda_cast(d, c->batch, c->in[0][0]->dtype, target(c), c->stream);
  free(d);
  return s;
#else
  return vp_fail(VP_ERR_NO_DEVICE, "cast: voxpipe was built without its CUDA backend");
#endif
}

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
};

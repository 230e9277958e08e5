/* one_hot: a label map ([1,] D, H, W or [1,] H, W) to one channel per class,
 * [num_classes, D, H, W], in float32 by default (what losses consume, as
 * MONAI's one_hot; uint8 saves memory). Label value v goes to channel v
 * (0 <= v < num_classes), or with `classes` to the channel of its position
 * in that list; any other value (and a non-integral float) gives an
 * all-zero voxel. Spacing and affine stay the label's. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "core/tensor.h"
#include "cuda/batch_launch.h"
#include "cuda/intensity_kernels.h"
#include "ops/op.h"

enum { ARG_NUM_CLASSES, ARG_CLASSES, ARG_DTYPE };

static const vp_arg_spec k_args[] = {
    {"num_classes", VP_ARG_INT, "0", 0, 4096, 0, NULL, 0,
     "channels of the output; 0: the length of `classes`"},
    {"classes", VP_ARG_INTS, "[]", -2147483648.0, 4294967295.0, VP_ONEHOT_MAX_LIST, NULL,
     VP_ARG_EMPTY_OK,
     "label value of each channel, in channel order (default: channel k is "
     "label k)"},
    {"dtype", VP_ARG_DTYPE, "\"float32\"", 0, 0, 0, NULL, 0, "output dtype"},
};

static int spatial(const vp_tensor *t) {
  return t->spatial_ndim < t->ndim ? t->spatial_ndim : t->ndim;
}

/* The class table of the call. */
static vp_status spec_of(const vp_op_call *c, vp_onehot_spec *sp) {
  memset(sp, 0, sizeof *sp);
  const vp_arg_value *list = vp_arg(c->args, ARG_CLASSES, 0);
  int64_t n = (int64_t)vp_arg_num(c->args, ARG_NUM_CLASSES, 0);
  if (list->len && n && n != list->len)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "one_hot: num_classes is %lld but 'classes' lists %d values (give one, or "
                   "both equal)",
                   (long long)n, list->len);
  if (!list->len && !n) return vp_fail(VP_ERR_INVALID_ARG, "one_hot: give num_classes or classes");
  for (int k = 0; k < list->len; k++)
    for (int m = 0; m < k; m++)
      if (list->v[k] == list->v[m])
        return vp_fail(VP_ERR_INVALID_ARG, "one_hot: argument 'classes' lists %.0f twice",
                       list->v[k]);
  sp->num_classes = list->len ? list->len : n;
  sp->n_list = list->len;
  for (int k = 0; k < list->len; k++) sp->list[k] = list->v[k];
  return VP_OK;
}

static vp_status infer(const vp_op_call *c, int64_t i, vp_out_spec *out) {
  const vp_tensor *t = c->in[0][i];
  const int sn = spatial(t);
  vp_onehot_spec sp;
  VP_TRY(spec_of(c, &sp));
  int64_t ch = 1;
  for (int a = 0; a < t->ndim - sn; a++) ch *= t->shape[a];
  if (ch != 1 || t->ndim - sn > 1)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "one_hot: sample %lld has %d leading axes holding %lld channels: a label map "
                   "has one channel at most",
                   (long long)i, t->ndim - sn, (long long)ch);
  if (sn + 1 > VP_MAX_NDIM)
    return vp_fail(VP_ERR_INVALID_ARG, "one_hot: sample %lld has too many axes", (long long)i);
  out->dtype = (vp_dtype)(int)vp_arg_num(c->args, ARG_DTYPE, 0);
  out->ndim = sn + 1;
  out->shape[0] = sp.num_classes;
  for (int a = 0; a < sn; a++) out->shape[1 + a] = t->shape[t->ndim - sn + a];
  return VP_OK;
}

/* The output has one more axis than a label without a channel axis, so
 * the default (copy when the ranks match) may not have run. */
static vp_status meta(const vp_op_call *c, int64_t i) {
  vp_tensor_copy_meta(c->out[0][i], c->in[0][i]);
  return VP_OK;
}

typedef struct onehot_ctx {
  const vp_op_call *c;
  vp_onehot_spec sp;
} onehot_ctx;

static vp_status onehot_range(void *ctx, int64_t i, int64_t begin, int64_t end) {
  const onehot_ctx *oc = ctx;
  const vp_tensor *in = oc->c->in[0][i];
  vp_tensor *out = oc->c->out[0][i];
  const int64_t nsp = vp_tensor_numel(in);
  for (int64_t v = begin; v < end; v++)
    vp_onehot_voxel(&oc->sp, in->data, in->dtype, out->data, out->dtype, nsp, v);
  return VP_OK;
}

static vp_status run_cpu(const vp_op_call *c) {
  if (c->batch < 1) return VP_OK;
  onehot_ctx oc = {c, {0}};
  VP_TRY(spec_of(c, &oc.sp));
  return vp_op_parallel_elems(c, 1 + (1 << 16) / oc.sp.num_classes, onehot_range, &oc);
}

static vp_status run_gpu(const vp_op_call *c) {
#ifdef VP_HAVE_CUDA
  if (c->batch < 1) return VP_OK;
  vp_onehot_spec sp;
  VP_TRY(spec_of(c, &sp));
  vp_bl_desc *d = calloc((size_t)c->batch, sizeof *d);
  if (!d) return vp_fail(VP_ERR_NOMEM, "one_hot: out of memory");
  for (int64_t i = 0; i < c->batch; i++) {
    d[i].in = c->in[0][i]->data;
    d[i].out = c->out[0][i]->data;
    d[i].numel = vp_tensor_numel(c->in[0][i]);
  }
  vp_status s =
      vp_cuda_one_hot(d, c->batch, c->in[0][0]->dtype, c->out[0][0]->dtype, &sp, c->stream);
  free(d);
  return s;
#else
  return vp_fail(VP_ERR_NO_DEVICE, "one_hot: voxpipe was built without its CUDA backend");
#endif
}

const vp_op_desc vp_op_one_hot = {
    .name = "one_hot",
    .doc =
        "Turns a label map into one channel per class ([num_classes, D, H, W], float32 by "
        "default); values outside the classes give all-zero voxels.",
    .num_inputs = 1,
    .num_outputs = 1,
    .inputs = {"input"},
    .outputs = {"output"},
    .args = k_args,
    .num_args = 3,
    .infer = infer,
    .run_cpu = run_cpu,
    .run_gpu = run_gpu,
    .meta = meta,
};

/* flip: mirrors the spatial axes D, H, W (DALI's depthwise, vertical,
 * horizontal), per sample; the affine follows so world coordinates stay. */
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "core/tensor.h"
#include "cuda/batch_launch.h"
#include "ops/op.h"
#ifdef VP_HAVE_CUDA
#include "cuda/kernels.h"
#endif

enum { ARG_DEPTHWISE, ARG_VERTICAL, ARG_HORIZONTAL };

static const vp_arg_spec k_args[] = {
    {"depthwise", VP_ARG_BOOL, "false", 0, 1, 0, NULL, VP_ARG_PER_SAMPLE,
     "flip the depth axis D (ignored for 2-D data)"},
    {"vertical", VP_ARG_BOOL, "false", 0, 1, 0, NULL, VP_ARG_PER_SAMPLE, "flip the height axis H"},
    {"horizontal", VP_ARG_BOOL, "true", 0, 1, 0, NULL, VP_ARG_PER_SAMPLE, "flip the width axis W"},
};

static int spatial(const vp_tensor *t) {
  return t->spatial_ndim < t->ndim ? t->spatial_ndim : t->ndim;
}

/* VP_BL_FLIP_* bits of sample i, only for axes the sample has. */
static uint32_t flip_bits(const vp_op_call *c, int64_t i) {
  int sn = spatial(c->in[0][i]);
  uint32_t f = 0;
  if (sn >= 3 && vp_arg_num(c->args, ARG_DEPTHWISE, i) != 0) f |= VP_BL_FLIP_D;
  if (sn >= 2 && vp_arg_num(c->args, ARG_VERTICAL, i) != 0) f |= VP_BL_FLIP_H;
  if (sn >= 1 && vp_arg_num(c->args, ARG_HORIZONTAL, i) != 0) f |= VP_BL_FLIP_W;
  return f;
}

static vp_status infer(const vp_op_call *c, int64_t i, vp_out_spec *out) {
  const vp_tensor *t = c->in[0][i];
  out->dtype = t->dtype;
  out->ndim = t->ndim;
  memcpy(out->shape, t->shape, sizeof out->shape);
  return VP_OK;
}

/* A flip of the array axis whose NIfTI voxel index is column col, with n
 * voxels, sends index k to n - 1 - k: world = A (n - 1 - k') = A' k' with
 * column col negated and the translation moved by (n - 1) times it. */
static vp_status meta(const vp_op_call *c, int64_t i) {
  const vp_tensor *in = c->in[0][i];
  vp_tensor *out = c->out[0][i];
  int sn = spatial(in);
  uint32_t f = flip_bits(c, i);
  static const uint32_t bit_of_axis[3] = {VP_BL_FLIP_D, VP_BL_FLIP_H, VP_BL_FLIP_W};
  for (int a = 0; a < sn; a++) {
    /* spatial axis a of sn (array order) is the last-but-(sn-1-a) axis,
     * NIfTI column sn - 1 - a */
    if (!(f & bit_of_axis[3 - sn + a])) continue;
    int col = sn - 1 - a;
    double n1 = (double)(in->shape[in->ndim - sn + a] - 1);
    for (int row = 0; row < 3; row++) {
      out->affine[row * 4 + 3] += out->affine[row * 4 + col] * n1;
      out->affine[row * 4 + col] = -out->affine[row * 4 + col];
    }
  }
  return VP_OK;
}

typedef struct flip_ctx {
  const vp_op_call *c;
  int64_t (*shape4)[4];
  uint32_t *flags;
} flip_ctx;

/* Rows [begin, end) of sample i's output (a row = the W axis). */
static vp_status flip_rows(void *ctx, int64_t i, int64_t begin, int64_t end) {
  const flip_ctx *fc = ctx;
  const vp_tensor *in = fc->c->in[0][i];
  vp_tensor *out = fc->c->out[0][i];
  const int64_t *s = fc->shape4[i];
  const int64_t D = s[1], H = s[2], W = s[3];
  const uint32_t f = fc->flags[i];
  const size_t es = vp_dtype_size(in->dtype);
  const unsigned char *src = in->data;
  unsigned char *dst = out->data;
  for (int64_t r = begin; r < end; r++) {
    int64_t h = r % H, q = r / H, z = q % D, o = q / D;
    if (f & VP_BL_FLIP_H) h = H - 1 - h;
    if (f & VP_BL_FLIP_D) z = D - 1 - z;
    const unsigned char *sr = src + (size_t)(((o * D + z) * H + h) * W) * es;
    unsigned char *dr = dst + (size_t)(r * W) * es;
    if (!(f & VP_BL_FLIP_W)) {
      memcpy(dr, sr, (size_t)W * es);
      continue;
    }
    switch (es) {
#define REV(T)                                                             \
  for (int64_t w = 0; w < W; w++) ((T *)dr)[w] = ((const T *)sr)[W - 1 - w]; \
  break;
      case 1: REV(uint8_t)
      case 2: REV(uint16_t)
      case 4: REV(uint32_t)
      default: REV(uint64_t)
#undef REV
    }
  }
  return VP_OK;
}

static vp_status prepare(const vp_op_call *c, int64_t (**shape4)[4], uint32_t **flags) {
  *shape4 = malloc((size_t)c->batch * sizeof **shape4);
  *flags = malloc((size_t)c->batch * sizeof **flags);
  if (!*shape4 || !*flags) {
    free(*shape4);
    free(*flags);
    return vp_fail(VP_ERR_NOMEM, "flip: out of memory");
  }
  for (int64_t i = 0; i < c->batch; i++) {
    const vp_tensor *t = c->in[0][i];
    vp_bl_shape4(t->ndim, t->shape, spatial(t), (*shape4)[i]);
    (*flags)[i] = flip_bits(c, i);
  }
  return VP_OK;
}

static vp_status run_cpu(const vp_op_call *c) {
  flip_ctx fc = {c, NULL, NULL};
  VP_TRY(prepare(c, &fc.shape4, &fc.flags));
  int64_t *rows = malloc((size_t)c->batch * sizeof *rows);
  vp_status s = VP_OK;
  if (!rows) {
    s = vp_fail(VP_ERR_NOMEM, "flip: out of memory");
  } else {
    int64_t widest = 1;
    for (int64_t i = 0; i < c->batch; i++) {
      rows[i] = fc.shape4[i][3] ? vp_tensor_numel(c->in[0][i]) / fc.shape4[i][3] : 0;
      if (fc.shape4[i][3] > widest) widest = fc.shape4[i][3];
    }
    s = vp_op_parallel(c, rows, 1 + (1 << 16) / widest, flip_rows, &fc);
  }
  free(rows);
  free(fc.shape4);
  free(fc.flags);
  return s;
}

static vp_status run_gpu(const vp_op_call *c) {
#ifdef VP_HAVE_CUDA
  int64_t(*shape4)[4];
  uint32_t *flags;
  VP_TRY(prepare(c, &shape4, &flags));
  vp_bl_desc *d = calloc((size_t)c->batch, sizeof *d);
  vp_status s;
  if (!d) {
    s = vp_fail(VP_ERR_NOMEM, "flip: out of memory");
  } else {
    for (int64_t i = 0; i < c->batch; i++) {
      d[i].in = c->in[0][i]->data;
      d[i].out = c->out[0][i]->data;
      memcpy(d[i].in_shape, shape4[i], sizeof d[i].in_shape);
      memcpy(d[i].out_shape, shape4[i], sizeof d[i].out_shape);
      d[i].numel = vp_tensor_numel(c->in[0][i]);
      d[i].flags = flags[i];
    }
    s = vp_cuda_flip(d, c->batch, vp_dtype_size(c->in[0][0]->dtype), c->stream);
  }
  free(d);
  free(shape4);
  free(flags);
  return s;
#else
  return vp_fail(VP_ERR_NO_DEVICE, "flip: voxpipe was built without its CUDA backend");
#endif
}

const vp_op_desc vp_op_flip = {
    .name = "flip",
    .doc = "Mirrors the spatial axes D, H, W of each sample; the affine follows.",
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

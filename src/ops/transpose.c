/* transpose: permutes the axes of each sample (numpy.transpose), all of
 * them or, with spatial_only, the spatial ones (the leading channel axes
 * stay first). Spacing is permuted with the axes and the affine's columns
 * with them (NIfTI column sn - 1 - a is array spatial axis a), so every
 * voxel keeps its world position.
 *
 * Both bodies gather: output element e, a row-major index over the output
 * shape, reads input element sum_k idx_k(e) * stride_k, with the shape and
 * strides padded to 5 axes (leading extent 1, stride 0). */
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "core/tensor.h"
#include "ops/op.h"
#ifdef VP_HAVE_CUDA
#include "cuda/kernels.h"
#endif

enum { ARG_PERM, ARG_SPATIAL_ONLY };
#define T_AXES 5 /* VP_MAX_NDIM, the padded rank of the geometry */

static const vp_arg_spec k_args[] = {
    {"perm", VP_ARG_INTS, NULL, 0, VP_MAX_NDIM - 1, VP_MAX_NDIM, NULL, VP_ARG_PER_SAMPLE,
     "output axis j is input axis perm[j]: a permutation of all axes, or of the spatial axes "
     "only (0 = the first spatial axis) with spatial_only"},
    {"spatial_only", VP_ARG_BOOL, "false", 0, 1, 0, NULL, 0,
     "perm permutes the spatial axes only; the leading (channel) axes stay first"},
};

static int spatial(const vp_tensor *t) {
  return t->spatial_ndim < t->ndim ? t->spatial_ndim : t->ndim;
}

/* Sample i's permutation of all its axes: p[j] = input axis of output j. */
static vp_status full_perm(const vp_op_call *c, int64_t i, int p[VP_MAX_NDIM]) {
  const vp_tensor *t = c->in[0][i];
  const vp_arg_value *perm = vp_arg(c->args, ARG_PERM, i);
  int only = vp_arg_num(c->args, ARG_SPATIAL_ONLY, i) != 0;
  int nd = t->ndim, sn = spatial(t), lead = only ? nd - sn : 0, len = nd - lead;
  if (perm->len != len)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "transpose: argument 'perm' has %d values for sample %lld, which has %d %saxes",
                   perm->len, (long long)i, len, only ? "spatial " : "");
  int seen = 0;
  for (int j = 0; j < len; j++) {
    int v = (int)perm->v[j];
    if (v >= len || (seen >> v) & 1)
      return vp_fail(VP_ERR_INVALID_ARG,
                     "transpose: argument 'perm' is not a permutation of 0..%d for sample %lld "
                     "(value %d at position %d)",
                     len - 1, (long long)i, v, j);
    seen |= 1 << v;
  }
  for (int j = 0; j < lead; j++) p[j] = j;
  for (int j = 0; j < len; j++) p[lead + j] = lead + (int)perm->v[j];
  return VP_OK;
}

static vp_status infer(const vp_op_call *c, int64_t i, vp_out_spec *out) {
  const vp_tensor *t = c->in[0][i];
  int p[VP_MAX_NDIM];
  VP_TRY(full_perm(c, i, p));
  out->dtype = t->dtype;
  out->ndim = t->ndim;
  memset(out->shape, 0, sizeof out->shape);
  for (int j = 0; j < t->ndim; j++) out->shape[j] = t->shape[p[j]];
  return VP_OK;
}

static int is_default_meta(const vp_tensor *t, int sn) {
  for (int a = 0; a < sn; a++)
    if (t->spacing[a] != 1.0) return 0;
  for (int k = 0; k < 16; k++)
    if (t->affine[k] != (k % 5 == 0 ? 1.0 : 0.0)) return 0;
  return 1;
}

/* Output spatial axis a comes from input spatial axis k: spacing[a] =
 * spacing_in[k] and NIfTI column sn-1-a = input column sn-1-k (index 0
 * stays at index 0, so the translation stays). A permutation that moves a
 * channel axis among the spatial ones leaves no world direction for it:
 * allowed only while the input's metadata is the default, which stays. */
static vp_status meta(const vp_op_call *c, int64_t i) {
  const vp_tensor *in = c->in[0][i];
  vp_tensor *out = c->out[0][i];
  int p[VP_MAX_NDIM];
  VP_TRY(full_perm(c, i, p));
  int nd = in->ndim, sn = spatial(in), lead = nd - sn;
  for (int a = 0; a < sn; a++) {
    if (p[lead + a] >= lead) continue;
    if (is_default_meta(in, sn)) return VP_OK;
    return vp_fail(VP_ERR_INVALID_ARG,
                   "transpose: sample %lld: perm moves non-spatial axis %d to spatial axis %d, "
                   "where the input's spacing and affine cannot follow (use spatial_only, or "
                   "reset the metadata first)",
                   (long long)i, p[lead + a], lead + a);
  }
  for (int a = 0; a < sn; a++) {
    int k = p[lead + a] - lead;
    out->spacing[a] = in->spacing[k];
    for (int row = 0; row < 4; row++)
      out->affine[row * 4 + (sn - 1 - a)] = in->affine[row * 4 + (sn - 1 - k)];
  }
  return VP_OK;
}

/* Sample i's output shape and input strides per output axis, padded in
 * front to T_AXES axes. */
static vp_status geometry(const vp_op_call *c, int64_t i, int64_t shape[T_AXES],
                          int64_t stride[T_AXES]) {
  const vp_tensor *t = c->in[0][i];
  int p[VP_MAX_NDIM];
  VP_TRY(full_perm(c, i, p));
  int64_t in_stride[VP_MAX_NDIM], s = 1;
  for (int k = t->ndim - 1; k >= 0; k--) {
    in_stride[k] = s;
    s *= t->shape[k];
  }
  int pad = T_AXES - t->ndim;
  for (int j = 0; j < T_AXES; j++) {
    shape[j] = j < pad ? 1 : t->shape[p[j - pad]];
    stride[j] = j < pad ? 0 : in_stride[p[j - pad]];
  }
  return VP_OK;
}

typedef struct tr_ctx {
  const vp_op_call *c;
  int64_t (*shape)[T_AXES];
  int64_t (*stride)[T_AXES];
} tr_ctx;

/* Output rows [begin, end) of sample i (a row = the last output axis). */
static vp_status tr_rows(void *ctx, int64_t i, int64_t begin, int64_t end) {
  const tr_ctx *tc = ctx;
  const int64_t *sh = tc->shape[i], *st = tc->stride[i];
  const size_t es = vp_dtype_size(tc->c->in[0][i]->dtype);
  const unsigned char *src = tc->c->in[0][i]->data;
  unsigned char *dst = tc->c->out[0][i]->data;
  const int64_t W = sh[T_AXES - 1], sw = st[T_AXES - 1];
  for (int64_t r = begin; r < end; r++) {
    int64_t q = r, base = 0;
    for (int k = T_AXES - 2; k >= 0; k--) {
      base += (q % sh[k]) * st[k];
      q /= sh[k];
    }
    unsigned char *dr = dst + (size_t)(r * W) * es;
    switch (es) {
#define GATHER(T)                                                                 \
  for (int64_t w = 0; w < W; w++) ((T *)dr)[w] = ((const T *)src)[base + w * sw]; \
  break;
      case 1: GATHER(uint8_t)
      case 2: GATHER(uint16_t)
      case 4: GATHER(uint32_t)
      default: GATHER(uint64_t)
#undef GATHER
    }
  }
  return VP_OK;
}

static vp_status prepare(const vp_op_call *c, tr_ctx *tc) {
  tc->c = c;
  tc->shape = malloc((size_t)c->batch * sizeof *tc->shape);
  tc->stride = malloc((size_t)c->batch * sizeof *tc->stride);
  vp_status s = VP_OK;
  if (!tc->shape || !tc->stride) s = vp_fail(VP_ERR_NOMEM, "transpose: out of memory");
  for (int64_t i = 0; i < c->batch && s == VP_OK; i++) {
    s = geometry(c, i, tc->shape[i], tc->stride[i]);
    size_t es = vp_dtype_size(c->in[0][i]->dtype);
    if (s == VP_OK && es != vp_dtype_size(c->in[0][0]->dtype))
      s = vp_fail(VP_ERR_INVALID_ARG, "transpose: sample %lld has another dtype than sample 0",
                  (long long)i);
  }
  if (s != VP_OK) {
    free(tc->shape);
    free(tc->stride);
  }
  return s;
}

static vp_status run_cpu(const vp_op_call *c) {
  if (c->batch < 1) return VP_OK;
  tr_ctx tc;
  VP_TRY(prepare(c, &tc));
  int64_t *rows = malloc((size_t)c->batch * sizeof *rows);
  vp_status s;
  if (!rows) {
    s = vp_fail(VP_ERR_NOMEM, "transpose: out of memory");
  } else {
    int64_t widest = 1;
    for (int64_t i = 0; i < c->batch; i++) {
      int64_t W = tc.shape[i][T_AXES - 1];
      rows[i] = W ? vp_tensor_numel(c->in[0][i]) / W : 0;
      if (W > widest) widest = W;
    }
    s = vp_op_parallel(c, rows, 1 + (1 << 16) / widest, tr_rows, &tc);
  }
  free(rows);
  free(tc.shape);
  free(tc.stride);
  return s;
}

static vp_status run_gpu(const vp_op_call *c) {
#ifdef VP_HAVE_CUDA
  if (c->batch < 1) return VP_OK;
  tr_ctx tc;
  VP_TRY(prepare(c, &tc));
  const void **in = malloc((size_t)c->batch * sizeof *in);
  void **out = malloc((size_t)c->batch * sizeof *out);
  vp_status s;
  if (!in || !out) {
    s = vp_fail(VP_ERR_NOMEM, "transpose: out of memory");
  } else {
    for (int64_t i = 0; i < c->batch; i++) {
      in[i] = c->in[0][i]->data;
      out[i] = c->out[0][i]->data;
    }
    s = vp_cuda_transpose(in, out, (const int64_t(*)[5])tc.shape, (const int64_t(*)[5])tc.stride,
                          c->batch, vp_dtype_size(c->in[0][0]->dtype), c->stream);
  }
  free(in);
  free(out);
  free(tc.shape);
  free(tc.stride);
  return s;
#else
  return vp_fail(VP_ERR_NO_DEVICE, "transpose: voxpipe was built without its CUDA backend");
#endif
}

const vp_op_desc vp_op_transpose = {
    .name = "transpose",
    .doc =
        "Permutes the axes of each sample (numpy.transpose), or only the spatial ones; "
        "spacing and the affine's columns follow.",
    .num_inputs = 1,
    .num_outputs = 1,
    .inputs = {"input"},
    .outputs = {"output"},
    .args = k_args,
    .num_args = 2,
    .infer = infer,
    .run_cpu = run_cpu,
    .run_gpu = run_gpu,
    .meta = meta,
};

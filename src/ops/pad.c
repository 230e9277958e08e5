/* pad: grows the spatial axes of each sample, by explicit widths (before,
 * after), up to a shape, or up to a multiple of k per axis. A front end of
 * the resampling engine: output voxel o reads input o - before with nearest
 * interpolation, so every coordinate is an integer and the copy is exact
 * (the engine loads through double: int64 values beyond 2^53 round), and
 * the border rule makes the padding: constant (fill), edge (numpy 'edge')
 * or reflect (half-sample symmetric, numpy 'symmetric'). The affine is
 * translated so that every voxel keeps its world position.
 *
 * The centred forms (shape, multiple_of) split the extra voxels as MONAI's
 * SpatialPad and nnU-Net's pad_nd_image do: floor(extra / 2) before, the
 * rest (the odd voxel) after. */
#include <math.h>
#include <string.h>

#include "core/status.h"
#include "core/tensor.h"
#include "ops/op.h"
#include "ops/resample.h"

enum { ARG_BEFORE, ARG_AFTER, ARG_SHAPE, ARG_MULTIPLE, ARG_MODE, ARG_FILL };

/* 2^40 voxels per axis: far past any volume, and sums stay exact. */
#define PAD_MAX 1099511627776.0

static const vp_arg_spec k_args[] = {
    {"before", VP_ARG_INTS, "[]", 0, PAD_MAX, 3, NULL, VP_ARG_PER_SAMPLE | VP_ARG_EMPTY_OK,
     "voxels added in front of each spatial axis (array order D, H, W), or one value for all"},
    {"after", VP_ARG_INTS, "[]", 0, PAD_MAX, 3, NULL, VP_ARG_PER_SAMPLE | VP_ARG_EMPTY_OK,
     "voxels added behind each spatial axis, or one value for all (with before: missing = 0)"},
    {"shape", VP_ARG_INTS, "[]", 0, PAD_MAX, 3, NULL, VP_ARG_PER_SAMPLE | VP_ARG_EMPTY_OK,
     "pad each spatial axis up to at least this extent, centred: floor(extra / 2) before, the "
     "rest (the odd voxel) after, as MONAI's SpatialPad; larger axes stay"},
    {"multiple_of", VP_ARG_INTS, "[]", 1, PAD_MAX, 3, NULL, VP_ARG_PER_SAMPLE | VP_ARG_EMPTY_OK,
     "pad each spatial axis up to the next multiple of k (per axis, or one for all), centred "
     "as shape"},
    {"mode", VP_ARG_ENUM, "\"constant\"", 0, 0, 0, "constant|edge|reflect", 0,
     "the padding: fill, the edge voxel repeated (numpy 'edge'), or the input mirrored about "
     "its border, edge voxel included (numpy 'symmetric', scipy 'reflect')"},
    {"fill", VP_ARG_FLOAT, "0", -1e300, 1e300, 0, NULL, 0,
     "value of padded voxels with mode constant (rounded and saturated to the dtype)"},
};

/* Value k of a list of 1 or sn values. */
static double pick(const vp_arg_value *v, int k) { return v->v[v->len == 1 ? 0 : k]; }

/* Sample i's padding in front of each spatial axis and output extents. */
static vp_status geometry(const vp_op_call *c, int64_t i, int *sn_out, int64_t before[3],
                          int64_t out_sp[3]) {
  const vp_tensor *t = c->in[0][i];
  int sn = vp_resample_spatial(t);
  if (sn < 1)
    return vp_fail(VP_ERR_INVALID_ARG, "pad: sample %lld is a scalar: nothing to pad",
                   (long long)i);
  const vp_arg_value *v[4];
  static const char *const names[4] = {"before", "after", "shape", "multiple_of"};
  for (int k = 0; k < 4; k++) {
    v[k] = vp_arg(c->args, ARG_BEFORE + k, i);
    int one_ok = k != ARG_SHAPE;
    if (v[k]->len && v[k]->len != sn && !(one_ok && v[k]->len == 1))
      return vp_fail(VP_ERR_INVALID_ARG,
                     "pad: argument '%s' has %d values for sample %lld, which has %d spatial "
                     "axes (give %d%s)",
                     names[k], v[k]->len, (long long)i, sn, sn, one_ok ? " or 1" : "");
  }
  int forms = (v[ARG_BEFORE]->len || v[ARG_AFTER]->len) + (v[ARG_SHAPE]->len > 0) +
              (v[ARG_MULTIPLE]->len > 0);
  if (forms != 1)
    return vp_fail(VP_ERR_INVALID_ARG, "pad: give one of before/after, shape and multiple_of (%s)",
                   forms ? "more than one given" : "none given");
  for (int a = 0; a < sn; a++) {
    int64_t n = t->shape[t->ndim - sn + a], lo = 0, hi = 0;
    if (v[ARG_BEFORE]->len || v[ARG_AFTER]->len) {
      lo = v[ARG_BEFORE]->len ? (int64_t)pick(v[ARG_BEFORE], a) : 0;
      hi = v[ARG_AFTER]->len ? (int64_t)pick(v[ARG_AFTER], a) : 0;
    } else {
      int64_t target = n;
      if (v[ARG_SHAPE]->len) {
        int64_t s = (int64_t)v[ARG_SHAPE]->v[a];
        if (s > n) target = s;
      } else {
        int64_t k = (int64_t)pick(v[ARG_MULTIPLE], a);
        target = (n + k - 1) / k * k; /* n, k <= 2^40: no overflow */
      }
      lo = (target - n) / 2;
      hi = target - n - lo;
    }
    before[a] = lo;
    out_sp[a] = n + lo + hi; /* each term <= 2^41: exact */
  }
  *sn_out = sn;
  return VP_OK;
}

static vp_status infer(const vp_op_call *c, int64_t i, vp_out_spec *out) {
  const vp_tensor *t = c->in[0][i];
  int sn;
  int64_t before[3], sp[3];
  VP_TRY(geometry(c, i, &sn, before, sp));
  vp_resample_out_spec(t, sn, sp, 0, out);
  return VP_OK;
}

/* The engine's matrix: identity, translated by -before (missing spatial
 * axes map to 0). */
static void matrix(int sn, const int64_t before[3], double M[12]) {
  int64_t start[3];
  for (int a = 0; a < sn; a++) start[a] = -before[a];
  vp_resample_shift_matrix(sn, start, M);
}

static vp_status meta(const vp_op_call *c, int64_t i) {
  int sn;
  int64_t before[3], sp[3];
  double M[12];
  VP_TRY(geometry(c, i, &sn, before, sp));
  matrix(sn, before, M);
  vp_resample_affine(c->in[0][i]->affine, sn, M, c->out[0][i]->affine);
  return VP_OK;
}

static vp_status build(const vp_op_call *c, int64_t i, vp_resample_desc *d) {
  int sn;
  int64_t before[3], sp[3];
  VP_TRY(geometry(c, i, &sn, before, sp));
  matrix(sn, before, d->M);
  d->fill = vp_arg_num(c->args, ARG_FILL, i);
  return VP_OK;
}

static vp_status run(const vp_op_call *c, int gpu) {
  vp_border border = (vp_border)(int)vp_arg_num(c->args, ARG_MODE, 0);
  return vp_resample_op_run(c, "pad", gpu, build, VP_INTERP_NEAREST, border);
}

static vp_status run_cpu(const vp_op_call *c) { return run(c, 0); }
static vp_status run_gpu(const vp_op_call *c) { return run(c, 1); }

const vp_op_desc vp_op_pad = {
    .name = "pad",
    .doc =
        "Pads the spatial axes of each sample (widths before/after, up to a shape or a "
        "multiple, centred with the odd voxel after) with a constant, the edge or a mirror "
        "(numpy.pad constant/edge/symmetric); the affine follows.",
    .num_inputs = 1,
    .num_outputs = 1,
    .inputs = {"input"},
    .outputs = {"output"},
    .args = k_args,
    .num_args = 6,
    .infer = infer,
    .run_cpu = run_cpu,
    .run_gpu = run_gpu,
    .meta = meta,
};

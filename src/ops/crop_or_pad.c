/* crop_or_pad: each sample to a spatial shape, centred, cropping the axes
 * that are larger and padding those that are smaller (MONAI's
 * ResizeWithPadOrCrop). Per axis of extent n and target t:
 *   n > t: CenterSpatialCrop keeps [n/2 - t/2, n/2 - t/2 + t) (integer
 *          division: the centre voxel n/2 lands on t/2);
 *   n < t: SpatialPad adds (t - n)/2 voxels in front, the rest (the odd
 *          voxel) behind.
 * A front end of the resampling engine (nearest, integer coordinates, so
 * the copy is exact); the padding is the border rule: constant (fill),
 * edge, or reflect (half-sample symmetric, numpy 'symmetric'). The affine is
 * translated so that every voxel keeps its world position. */
#include <string.h>

#include "core/status.h"
#include "core/tensor.h"
#include "ops/op.h"
#include "ops/resample.h"

enum { ARG_SHAPE, ARG_MODE, ARG_FILL };

static const vp_arg_spec k_args[] = {
    {"shape", VP_ARG_INTS, NULL, 0, 1099511627776.0, 3, NULL, VP_ARG_PER_SAMPLE,
     "output extent per spatial axis (array order D, H, W); 0 keeps the axis"},
    {"mode", VP_ARG_ENUM, "\"constant\"", 0, 0, 0, "constant|edge|reflect", 0,
     "the padding: fill, the edge voxel repeated (numpy 'edge'), or the input mirrored about "
     "its border, edge voxel included (numpy 'symmetric')"},
    {"fill", VP_ARG_FLOAT, "0", -1e300, 1e300, 0, NULL, 0,
     "value of padded voxels with mode constant (rounded and saturated to the dtype)"},
};

/* Sample i's input index of output voxel 0 (negative: padding in front)
 * and output extent, per spatial axis. */
static vp_status geometry(const vp_op_call *c, int64_t i, int *sn_out, int64_t start[3],
                          int64_t out_sp[3]) {
  const vp_tensor *t = c->in[0][i];
  int sn = vp_resample_spatial(t);
  if (sn < 1)
    return vp_fail(VP_ERR_INVALID_ARG, "crop_or_pad: sample %lld is a scalar: nothing to crop",
                   (long long)i);
  const vp_arg_value *shape = vp_arg(c->args, ARG_SHAPE, i);
  if (shape->len != sn)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "crop_or_pad: argument 'shape' has %d values for sample %lld, which has %d "
                   "spatial axes",
                   shape->len, (long long)i, sn);
  for (int a = 0; a < sn; a++) {
    int64_t n = t->shape[t->ndim - sn + a], target = (int64_t)shape->v[a];
    if (target == 0) target = n;
    start[a] = n > target ? n / 2 - target / 2 : -((target - n) / 2);
    out_sp[a] = target;
  }
  *sn_out = sn;
  return VP_OK;
}

static vp_status infer(const vp_op_call *c, int64_t i, vp_out_spec *out) {
  const vp_tensor *t = c->in[0][i];
  int sn;
  int64_t start[3], sp[3];
  VP_TRY(geometry(c, i, &sn, start, sp));
  vp_resample_out_spec(t, sn, sp, 0, out);
  return VP_OK;
}

/* The engine's matrix: identity, translated by start (missing spatial
 * axes map to 0). */

static vp_status meta(const vp_op_call *c, int64_t i) {
  int sn;
  int64_t start[3], sp[3];
  double M[12];
  VP_TRY(geometry(c, i, &sn, start, sp));
  vp_resample_shift_matrix(sn, start, M);
  vp_resample_affine(c->in[0][i]->affine, sn, M, c->out[0][i]->affine);
  return VP_OK;
}

static vp_status build(const vp_op_call *c, int64_t i, vp_resample_desc *d) {
  int sn;
  int64_t start[3], sp[3];
  VP_TRY(geometry(c, i, &sn, start, sp));
  vp_resample_shift_matrix(sn, start, d->M);
  d->fill = vp_arg_num(c->args, ARG_FILL, i);
  return VP_OK;
}

static vp_status run(const vp_op_call *c, int gpu) {
  vp_border border = (vp_border)(int)vp_arg_num(c->args, ARG_MODE, 0);
  return vp_resample_op_run(c, "crop_or_pad", gpu, build, VP_INTERP_NEAREST, border);
}

static vp_status run_cpu(const vp_op_call *c) { return run(c, 0); }
static vp_status run_gpu(const vp_op_call *c) { return run(c, 1); }

const vp_op_desc vp_op_crop_or_pad = {
    .name = "crop_or_pad",
    .doc =
        "Brings the spatial axes of each sample to a shape, centred: crops the larger axes "
        "and pads the smaller ones (MONAI's ResizeWithPadOrCrop); the affine follows.",
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

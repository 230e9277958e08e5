/* resize: each sample to a new spatial extent, with voxel centres mapped
 * by the half-voxel rule (align_corners=False): input = (o + 0.5) in/out
 * - 0.5 per axis, through the resampling engine with the edge border.
 * That is torch.nn.functional.interpolate(align_corners=False) for linear
 * (torch clamps the coordinate at 0 and the upper neighbour at n - 1: the
 * same values as clamping indices) and scipy.ndimage.zoom(grid_mode=True,
 * mode='nearest'). No antialiasing: downsizing by more than 2 skips
 * input voxels, as those do. Spacing scales by in/out and the affine
 * follows, so every voxel centre keeps its world position. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "core/tensor.h"
#include "ops/op.h"
#include "ops/resample.h"

enum { ARG_SIZE, ARG_SCALE, ARG_MODE, ARG_INTERP, ARG_DTYPE };
enum { MODE_STRETCH, MODE_NOT_LARGER, MODE_NOT_SMALLER };

static const vp_arg_spec k_args[] = {
    {"size", VP_ARG_INTS, "[]", 0, 1e9, 3, NULL, VP_ARG_PER_SAMPLE | VP_ARG_EMPTY_OK,
     "output extent per spatial axis (array order); 0 keeps the axis (stretch) or leaves it "
     "unconstrained (not_larger, not_smaller). Give this or scale"},
    {"scale", VP_ARG_FLOATS, "[]", 1e-6, 1e6, 3, NULL, VP_ARG_PER_SAMPLE | VP_ARG_EMPTY_OK,
     "output extent = round(input extent * scale), per spatial axis or one for all"},
    {"mode", VP_ARG_ENUM, "\"stretch\"", 0, 0, 0, "stretch|not_larger|not_smaller", 0,
     "with size: stretch each axis to its size; not_larger / not_smaller keep the aspect "
     "ratio with one scale, the largest that fits inside the sizes / the smallest that covers "
     "them (as DALI's resize)"},
    {"interp", VP_ARG_ENUM, "\"linear\"", 0, 0, 0, "nearest|linear|cubic|label", 0,
     "nearest (voxel at floor(x + 0.5)), linear or label (per-label linear weights, then the "
     "heaviest label: for integer label maps); cubic is not implemented yet"},
    VP_RESAMPLE_DTYPE_ARG,
};

/* Sample i's spatial axes and output extents. */
static vp_status extents(const vp_op_call *c, int64_t i, int *sn_out, int64_t out_sp[3]) {
  const vp_tensor *t = c->in[0][i];
  int sn = vp_resample_spatial(t);
  if (sn < 1)
    return vp_fail(VP_ERR_INVALID_ARG, "resize: sample %lld is a scalar: nothing to resize",
                   (long long)i);
  if ((int)vp_arg_num(c->args, ARG_INTERP, i) == VP_INTERP_CUBIC)
    return vp_fail(VP_ERR_UNSUPPORTED,
                   "resize: interp \"cubic\" is not implemented yet (use \"nearest\" or "
                   "\"linear\")");
  const vp_arg_value *size = vp_arg(c->args, ARG_SIZE, i);
  const vp_arg_value *scale = vp_arg(c->args, ARG_SCALE, i);
  int mode = (int)vp_arg_num(c->args, ARG_MODE, i);
  if (size->len && scale->len)
    return vp_fail(VP_ERR_INVALID_ARG, "resize: give one of 'size' and 'scale', not both");
  if (size->len && size->len != sn)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "resize: argument 'size' has %d values for sample %lld, which has %d spatial "
                   "axes",
                   size->len, (long long)i, sn);
  if (scale->len && scale->len != sn && scale->len != 1)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "resize: argument 'scale' has %d values for sample %lld, which has %d spatial "
                   "axes (give %d or 1)",
                   scale->len, (long long)i, sn, sn);
  int64_t in_sp[3];
  for (int a = 0; a < sn; a++) in_sp[a] = out_sp[a] = t->shape[t->ndim - sn + a];
  double f[3] = {0, 0, 0}; /* per-axis scale; 0 = keep */
  if (scale->len) {
    for (int a = 0; a < sn; a++) f[a] = scale->v[scale->len == 1 ? 0 : a];
  } else if (size->len && mode == MODE_STRETCH) {
    for (int a = 0; a < sn; a++)
      if (size->v[a] > 0) out_sp[a] = (int64_t)size->v[a];
  } else if (size->len) {
    double s = 0;
    for (int a = 0; a < sn; a++) {
      if (!(size->v[a] > 0) || in_sp[a] == 0) continue;
      double r = size->v[a] / (double)in_sp[a];
      if (s == 0 || (mode == MODE_NOT_LARGER ? r < s : r > s)) s = r;
    }
    for (int a = 0; a < sn; a++) f[a] = s;
  }
  for (int a = 0; a < sn; a++) {
    if (f[a] <= 0 || in_sp[a] == 0) continue;
    double e = floor((double)in_sp[a] * f[a] + 0.5);
    if (e > 1e9)
      return vp_fail(VP_ERR_INVALID_ARG,
                     "resize: sample %lld: spatial axis %d would grow to %.0f voxels (at most "
                     "1e9)",
                     (long long)i, a, e);
    out_sp[a] = e < 1 ? 1 : (int64_t)e;
  }
  *sn_out = sn;
  return VP_OK;
}

/* The engine's matrix for sample i: diagonal in/out, translation
 * 0.5 in/out - 0.5 (missing spatial axes stay at 0). */
static vp_status geometry(const vp_op_call *c, int64_t i, int *sn_out, double M[12],
                          double ratio[3]) {
  int64_t out_sp[3];
  VP_TRY(extents(c, i, sn_out, out_sp));
  vp_resample_resize_matrix(c->in[0][i], *sn_out, out_sp, M, ratio);
  return VP_OK;
}

static vp_status infer(const vp_op_call *c, int64_t i, vp_out_spec *out) {
  const vp_tensor *t = c->in[0][i];
  int sn;
  int64_t sp[3];
  VP_TRY(extents(c, i, &sn, sp));
  vp_resample_out_spec(t, sn, sp, (int)vp_arg_num(c->args, ARG_DTYPE, i), out);
  return VP_OK;
}

static vp_status meta(const vp_op_call *c, int64_t i) {
  int sn;
  double M[12], ratio[3];
  VP_TRY(geometry(c, i, &sn, M, ratio));
  vp_tensor *out = c->out[0][i];
  const vp_tensor *in = c->in[0][i];
  vp_resample_affine(in->affine, sn, M, out->affine);
  int osn = vp_resample_spatial(out);
  for (int a = 0; a < sn && a < osn; a++) {
    double s = in->spacing[osn - sn + a] * ratio[a];
    if (s > 0 && s <= 1e30) out->spacing[osn - sn + a] = s;
  }
  return VP_OK;
}

static vp_status build(const vp_op_call *c, int64_t i, vp_resample_desc *d) {
  int sn;
  double ratio[3];
  return geometry(c, i, &sn, d->M, ratio);
}

static vp_status run(const vp_op_call *c, int gpu) {
  vp_interp interp = (vp_interp)(int)vp_arg_num(c->args, ARG_INTERP, 0);
  return vp_resample_op_run(c, "resize", gpu, build, interp, VP_BORDER_EDGE);
}

static vp_status run_cpu(const vp_op_call *c) { return run(c, 0); }
static vp_status run_gpu(const vp_op_call *c) { return run(c, 1); }

const vp_op_desc vp_op_resize = {
    .name = "resize",
    .doc =
        "Resizes the spatial axes of each sample (half-voxel centres, edge border, nearest or "
        "linear, no antialiasing: as torch interpolate(align_corners=False) and "
        "scipy.ndimage.zoom(grid_mode=True, mode='nearest')); spacing and affine follow.",
    .num_inputs = 1,
    .num_outputs = 1,
    .inputs = {"input"},
    .outputs = {"output"},
    .args = k_args,
    .num_args = 5,
    .infer = infer,
    .run_cpu = run_cpu,
    .run_gpu = run_gpu,
    .meta = meta,
};

/* resize: each sample to a new spatial extent, with voxel centres mapped
 * by the half-voxel rule (align_corners=False): input = (o + 0.5) in/out
 * - 0.5 per axis, through the resampling engine with the edge border.
 * That is torch.nn.functional.interpolate(align_corners=False) for linear
 * (torch clamps the coordinate at 0 and the upper neighbour at n - 1: the
 * same values as clamping indices) and scipy.ndimage.zoom(grid_mode=True,
 * mode='nearest'). Without antialiasing, shrinking by more than 2 skips
 * input voxels, as those do; `antialias` widens linear's filter to the
 * shrink factor (resample.h's aa). A region of interest maps its edges
 * onto the output's. Spacing scales by in/out and the affine follows, so
 * every voxel centre keeps its world position. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "core/tensor.h"
#include "ops/op.h"
#include "ops/resample.h"

enum {
  ARG_SIZE,
  ARG_SCALE,
  ARG_MODE,
  ARG_INTERP,
  ARG_DTYPE,
  ARG_ANTIALIAS,
  ARG_ROI_START,
  ARG_ROI_END
};
enum { AA_OFF, AA_TRIANGLE, AA_AREA };
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
    {"interp", VP_ARG_ENUM, "\"linear\"", 0, 0, 0, VP_RESAMPLE_INTERP_CHOICES, 0,
     "nearest (voxel at floor(x + 0.5)), linear, cubic (B-spline with its prefilter: scipy "
     "order 3) or label (per-label linear weights, then the heaviest label: integer label maps)"},
    VP_RESAMPLE_DTYPE_ARG,
    {"antialias", VP_ARG_ENUM, "\"off\"", 0, 0, 0, "off|triangle|area", 0,
     "when an axis shrinks (linear only): average the input under a triangle (as torch's and "
     "PIL's antialiased resize) or a box (area) as wide as the shrink factor, instead of "
     "sampling it"},
    {"roi_start", VP_ARG_FLOATS, "[]", -1e9, 1e9, 3, NULL, VP_ARG_PER_SAMPLE | VP_ARG_EMPTY_OK,
     "region of interest: its start per spatial axis, in input voxel edges (0 = the first "
     "voxel's outer edge); [] = 0. The region is resized to the output (scale and the modes "
     "apply to its extent); a start after the end flips the axis"},
    {"roi_end", VP_ARG_FLOATS, "[]", -1e9, 1e9, 3, NULL, VP_ARG_PER_SAMPLE | VP_ARG_EMPTY_OK,
     "region of interest: its end per spatial axis (exclusive edge); [] = the input's extent"},
};

/* Sample i's region of interest per spatial axis: [start, end) in input
 * voxel edges. */
static vp_status region(const vp_op_call *c, int64_t i, int sn, double roi[2][3]) {
  const vp_tensor *t = c->in[0][i];
  const vp_arg_value *rs = vp_arg(c->args, ARG_ROI_START, i);
  const vp_arg_value *re = vp_arg(c->args, ARG_ROI_END, i);
  const vp_arg_value *v[2] = {rs, re};
  const char *names[2] = {"roi_start", "roi_end"};
  for (int k = 0; k < 2; k++)
    if (v[k]->len && v[k]->len != sn)
      return vp_fail(VP_ERR_INVALID_ARG,
                     "resize: argument '%s' has %d values for sample %lld, which has %d spatial "
                     "axes",
                     names[k], v[k]->len, (long long)i, sn);
  for (int a = 0; a < sn; a++) {
    roi[0][a] = rs->len ? rs->v[a] : 0.0;
    roi[1][a] = re->len ? re->v[a] : (double)t->shape[t->ndim - sn + a];
  }
  return VP_OK;
}

/* Sample i's spatial axes and output extents. */
static vp_status extents(const vp_op_call *c, int64_t i, int *sn_out, int64_t out_sp[3]) {
  const vp_tensor *t = c->in[0][i];
  int sn = vp_resample_spatial(t);
  if (sn < 1)
    return vp_fail(VP_ERR_INVALID_ARG, "resize: sample %lld is a scalar: nothing to resize",
                   (long long)i);
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
  double roi[2][3];
  VP_TRY(region(c, i, sn, roi));
  double in_sp[3];
  for (int a = 0; a < sn; a++) {
    in_sp[a] = fabs(roi[1][a] - roi[0][a]);
    out_sp[a] = (int64_t)floor(in_sp[a] + 0.5);
    if (out_sp[a] < 1 && t->shape[t->ndim - sn + a] > 0) out_sp[a] = 1;
  }
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
      double r = size->v[a] / in_sp[a];
      if (s == 0 || (mode == MODE_NOT_LARGER ? r < s : r > s)) s = r;
    }
    for (int a = 0; a < sn; a++) f[a] = s;
  }
  for (int a = 0; a < sn; a++) {
    if (f[a] <= 0 || in_sp[a] == 0) continue;
    double e = floor(in_sp[a] * f[a] + 0.5);
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
  double roi[2][3];
  VP_TRY(region(c, i, *sn_out, roi));
  for (int a = 0; a < *sn_out; a++) {
    /* the region [start, end) onto [0, out): input = start + (o + 1/2) r - 1/2 */
    int e = 3 - *sn_out + a;
    double r = out_sp[a] > 0 ? (roi[1][a] - roi[0][a]) / (double)out_sp[a] : 1.0;
    M[e * 4 + e] = r;
    M[e * 4 + 3] = roi[0][a] + 0.5 * r - 0.5;
    ratio[a] = r;
  }
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
  VP_TRY(geometry(c, i, &sn, d->M, ratio));
  int aa = (int)vp_arg_num(c->args, ARG_ANTIALIAS, i);
  if (aa == AA_OFF) return VP_OK;
  if ((int)vp_arg_num(c->args, ARG_INTERP, i) != VP_INTERP_LINEAR)
    return vp_fail(VP_ERR_INVALID_ARG, "resize: argument 'antialias' needs interp \"linear\"");
  for (int a = 0; a < sn; a++) {
    double r = fabs(ratio[a]);
    if (r > 256)
      return vp_fail(VP_ERR_INVALID_ARG,
                     "resize: sample %lld shrinks axis %d by %g: antialiasing takes at most 256",
                     (long long)i, a, r);
    d->aa[3 - sn + a] = r > 1 ? r : 0;
  }
  d->aa_area = aa == AA_AREA;
  return VP_OK;
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
        "Resizes the spatial axes of each sample or a region of it (half-voxel centres, edge "
        "border: as torch interpolate(align_corners=False) and scipy.ndimage.zoom(grid_mode=True, "
        "mode='nearest')), nearest, linear (optionally antialiased), cubic or label; spacing and "
        "affine follow.",
    .num_inputs = 1,
    .num_outputs = 1,
    .inputs = {"input"},
    .outputs = {"output"},
    .args = k_args,
    .num_args = 8,
    .infer = infer,
    .run_cpu = run_cpu,
    .run_gpu = run_gpu,
    .meta = meta,
};

/* rotate: each sample rotated by `angle` degrees about its centre, about
 * `axis` (d, h, w) in 3-D or in the (h, w) plane in 2-D, through the
 * resampling engine.
 *
 * The forward rotation R is transform_rotation's (right-handed in array
 * order; 2-D: from h towards w for positive angles), with sines and
 * cosines of whole multiples of 90 degrees exact, as scipy's cosdg/sindg.
 * Output voxel o reads input point R^T (o - co) + ci, c = (n - 1) / 2 per
 * axis (scipy.ndimage.rotate's centres). With keep_size false the output
 * holds the whole rotated volume: extent = int(ptp + 0.5) of R applied to
 * the corners of the box [0, n] per axis (scipy's rule with reshape=True,
 * generalised to 3-D). So rotate(angle=a) = scipy.ndimage.rotate(x, a,
 * axes=(-2, -1)) in 2-D and about d; about h it is axes (0, 2) with -a,
 * about w axes (0, 1) with a; border constant = mode 'grid-constant'.
 * The affine follows: every voxel centre keeps its world position. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "core/tensor.h"
#include "ops/op.h"
#include "ops/resample.h"

enum { ARG_ANGLE, ARG_AXIS, ARG_KEEP, ARG_INTERP, ARG_BORDER, ARG_FILL, ARG_DTYPE };

static const vp_arg_spec k_args[] = {
    {"angle", VP_ARG_FLOAT, NULL, -1e6, 1e6, 0, NULL, VP_ARG_PER_SAMPLE, "angle in degrees"},
    {"axis", VP_ARG_FLOATS, "[1, 0, 0]", -1e30, 1e30, 3, NULL, VP_ARG_PER_SAMPLE,
     "rotation axis (d, h, w), any nonzero length (3-D only; [1, 0, 0] turns the (h, w) planes "
     "as 2-D does)"},
    {"keep_size", VP_ARG_BOOL, "false", 0, 1, 0, NULL, VP_ARG_PER_SAMPLE,
     "keep the input's extents (else grow the canvas to hold the whole rotated volume, as "
     "scipy.ndimage.rotate(reshape=True))"},
    {"interp", VP_ARG_ENUM, "\"linear\"", 0, 0, 0, VP_RESAMPLE_INTERP_CHOICES, 0,
     "nearest (labels), linear, or label (smooth labels: per-label linear weights, then the "
     "heaviest label)"},
    VP_RESAMPLE_BORDER_ARG,
    VP_RESAMPLE_FILL_ARG,
    VP_RESAMPLE_DTYPE_ARG,
};

/* sin and cos of `deg` degrees, exact at whole multiples of 90. */
static void sincos_deg(double deg, double *s, double *c) {
  double q = nearbyint(deg / 90.0);
  double r = (deg - 90.0 * q) * (3.14159265358979323846 / 180.0);
  double sr = sin(r), cr = cos(r);
  int k = (int)fmod(q, 4.0);
  if (k < 0) k += 4;
  switch (k) {
    case 0: *s = sr, *c = cr; break;
    case 1: *s = cr, *c = -sr; break;
    case 2: *s = -sr, *c = -cr; break;
    default: *s = -cr, *c = sr; break;
  }
}

/* Sample i's forward rotation (sn x sn in R[3][3]), output extents and
 * engine matrix. */
static vp_status geometry(const vp_op_call *c, int64_t i, int *sn_out, double M[12],
                          int64_t out_sp[3]) {
  const vp_tensor *t = c->in[0][i];
  int sn = vp_resample_spatial(t);
  if (sn < 2)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "rotate: sample %lld has %d spatial axes; it needs 2 (H, W) or 3 (D, H, W)",
                   (long long)i, sn);
  double s, co;
  sincos_deg(vp_arg_num(c->args, ARG_ANGLE, i), &s, &co);
  double R[3][3] = {{0}};
  if (sn == 2) {
    R[0][0] = co, R[0][1] = -s;
    R[1][0] = s, R[1][1] = co;
  } else {
    const vp_arg_value *ax = vp_arg(c->args, ARG_AXIS, i);
    double len =
        ax->len == 3 ? sqrt(ax->v[0] * ax->v[0] + ax->v[1] * ax->v[1] + ax->v[2] * ax->v[2]) : 0;
    if (!(len > 0) || !isfinite(len))
      return vp_fail(VP_ERR_INVALID_ARG,
                     "rotate: argument 'axis' of sample %lld must be a nonzero 3-vector (d, h, w)",
                     (long long)i);
    double x = ax->v[0] / len, y = ax->v[1] / len, z = ax->v[2] / len, C = 1 - co;
    double Rr[3][3] = {{co + x * x * C, x * y * C - z * s, x * z * C + y * s},
                       {y * x * C + z * s, co + y * y * C, y * z * C - x * s},
                       {z * x * C - y * s, z * y * C + x * s, co + z * z * C}};
    memcpy(R, Rr, sizeof R);
  }
  int64_t in_sp[3];
  for (int a = 0; a < sn; a++) in_sp[a] = t->shape[t->ndim - sn + a];
  int keep = vp_arg_num(c->args, ARG_KEEP, i) != 0;
  for (int r = 0; r < sn; r++) {
    if (keep) {
      out_sp[r] = in_sp[r];
      continue;
    }
    double lo = 0, hi = 0;
    for (int k = 0; k < (1 << sn); k++) {
      double v = 0;
      for (int col = 0; col < sn; col++)
        v += R[r][col] * ((k >> (sn - 1 - col)) & 1 ? (double)in_sp[col] : 0.0);
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    double e = floor(hi - lo + 0.5);
    if (e > 1e9)
      return vp_fail(VP_ERR_INVALID_ARG,
                     "rotate: sample %lld: spatial axis %d would grow to %.0f voxels (at most 1e9)",
                     (long long)i, r, e);
    out_sp[r] = (int64_t)e;
  }
  /* engine rows/columns 3 - sn .. 2 hold the spatial axes */
  memset(M, 0, 12 * sizeof *M);
  for (int r = 0; r < sn; r++) {
    int er = 3 - sn + r;
    double ci = ((double)in_sp[r] - 1) / 2, b = ci;
    for (int col = 0; col < sn; col++) {
      M[er * 4 + 3 - sn + col] = R[col][r]; /* R^T */
      b -= R[col][r] * (((double)out_sp[col] - 1) / 2);
    }
    M[er * 4 + 3] = b;
  }
  *sn_out = sn;
  return VP_OK;
}

static vp_status infer(const vp_op_call *c, int64_t i, vp_out_spec *out) {
  return vp_resample_geom_infer(c, i, geometry, (int)vp_arg_num(c->args, ARG_DTYPE, i), out);
}
static vp_status meta(const vp_op_call *c, int64_t i) {
  return vp_resample_geom_meta(c, i, geometry);
}
static vp_status build(const vp_op_call *c, int64_t i, vp_resample_desc *d) {
  return vp_resample_geom_build(c, i, geometry, vp_arg_num(c->args, ARG_FILL, i), d);
}

static vp_status run(const vp_op_call *c, int gpu) {
  vp_interp interp = (vp_interp)(int)vp_arg_num(c->args, ARG_INTERP, 0);
  vp_border border = (vp_border)(int)vp_arg_num(c->args, ARG_BORDER, 0);
  return vp_resample_op_run(c, "rotate", gpu, build, interp, border);
}

static vp_status run_cpu(const vp_op_call *c) { return run(c, 0); }
static vp_status run_gpu(const vp_op_call *c) { return run(c, 1); }

const vp_op_desc vp_op_rotate = {
    .name = "rotate",
    .doc =
        "Rotates each sample about its centre by angle degrees (about axis in 3-D), growing "
        "the canvas to hold it unless keep_size (as scipy.ndimage.rotate); nearest or "
        "linear, a border rule; the affine follows.",
    .num_inputs = 1,
    .num_outputs = 1,
    .inputs = {"input"},
    .outputs = {"output"},
    .args = k_args,
    .num_args = 7,
    .infer = infer,
    .run_cpu = run_cpu,
    .run_gpu = run_gpu,
    .meta = meta,
};

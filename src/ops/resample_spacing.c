/* resample_spacing: each sample to a target voxel size (MONAI's Spacing,
 * nnU-Net's preprocessing). The output extent per spatial axis is
 * round(in_spacing / target * n), rounded half to even as nnU-Net's
 * round() and numpy's do (spacings are often round numbers, so ties are
 * common), at least 1; the voxels are then placed as resize places them
 * (half-voxel rule: input = (o + 0.5) n / out - 0.5, edge border), through
 * the resampling engine: scipy.ndimage.zoom(grid_mode=True, mode='nearest').
 *
 * Metadata: the spacing becomes the target; the affine follows the grid
 * (as resize's), so the volume keeps its extent and position in the world.
 * Its column lengths are then in_spacing * n / out, which differs from the
 * target by the rounding of the extent (at most half an output voxel over
 * the whole axis). */
#include <math.h>
#include <string.h>

#include "core/status.h"
#include "core/tensor.h"
#include "ops/op.h"
#include "ops/resample.h"

enum { ARG_SPACING, ARG_INTERP };

static const vp_arg_spec k_args[] = {
    {"spacing", VP_ARG_FLOATS, NULL, 1e-9, 1e9, 3, NULL, VP_ARG_PER_SAMPLE,
     "target voxel size per spatial axis in array order (dz, dy, dx), or one for all"},
    {"interp", VP_ARG_ENUM, "\"linear\"", 0, 0, 0, VP_RESAMPLE_INTERP_CHOICES, 0,
     "nearest (labels), linear, or label (smooth labels: per-label linear weights, then the "
     "heaviest label)"},
};

static double round_half_even(double x) {
  double f = floor(x), d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return fmod(f, 2.0) == 0 ? f : f + 1;
}

/* Sample i's output extents and the engine's matrix (resize's: diagonal
 * n / out, translation 0.5 n / out - 0.5; missing spatial axes map to 0). */
static vp_status geometry(const vp_op_call *c, int64_t i, int *sn_out, int64_t out_sp[3],
                          double M[12]) {
  const vp_tensor *t = c->in[0][i];
  int sn = vp_resample_spatial(t);
  if (sn < 1)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "resample_spacing: sample %lld is a scalar: nothing to resample", (long long)i);
  const vp_arg_value *sp = vp_arg(c->args, ARG_SPACING, i);
  if (sp->len != sn && sp->len != 1)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "resample_spacing: argument 'spacing' has %d values for sample %lld, which "
                   "has %d spatial axes (give %d or 1)",
                   sp->len, (long long)i, sn, sn);
  for (int a = 0; a < sn; a++) {
    int64_t n = t->shape[t->ndim - sn + a];
    double have = t->spacing[a], want = sp->v[sp->len == 1 ? 0 : a];
    if (!(have > 0) || !isfinite(have))
      return vp_fail(VP_ERR_INVALID_ARG,
                     "resample_spacing: sample %lld has spacing %g on spatial axis %d (need a "
                     "positive voxel size)",
                     (long long)i, have, a);
    double e = round_half_even(have / want * (double)n);
    if (e > 1e9)
      return vp_fail(VP_ERR_INVALID_ARG,
                     "resample_spacing: sample %lld: spatial axis %d would grow to %.0f voxels "
                     "(at most 1e9)",
                     (long long)i, a, e);
    out_sp[a] = n == 0 ? 0 : (e < 1 ? 1 : (int64_t)e);
  }
  vp_resample_resize_matrix(t, sn, out_sp, M, NULL); /* resize's half-voxel map */
  *sn_out = sn;
  return VP_OK;
}

static vp_status infer(const vp_op_call *c, int64_t i, vp_out_spec *out) {
  const vp_tensor *t = c->in[0][i];
  int sn;
  int64_t sp[3];
  double M[12];
  VP_TRY(geometry(c, i, &sn, sp, M));
  vp_resample_out_spec(t, sn, sp, 0, out);
  return VP_OK;
}

static vp_status meta(const vp_op_call *c, int64_t i) {
  int sn;
  int64_t sp[3];
  double M[12];
  VP_TRY(geometry(c, i, &sn, sp, M));
  vp_tensor *out = c->out[0][i];
  vp_resample_affine(c->in[0][i]->affine, sn, M, out->affine);
  const vp_arg_value *want = vp_arg(c->args, ARG_SPACING, i);
  for (int a = 0; a < sn; a++) out->spacing[a] = want->v[want->len == 1 ? 0 : a];
  return VP_OK;
}

static vp_status build(const vp_op_call *c, int64_t i, vp_resample_desc *d) {
  int sn;
  int64_t sp[3];
  return geometry(c, i, &sn, sp, d->M);
}

static vp_status run(const vp_op_call *c, int gpu) {
  vp_interp interp = (vp_interp)(int)vp_arg_num(c->args, ARG_INTERP, 0);
  return vp_resample_op_run(c, "resample_spacing", gpu, build, interp, VP_BORDER_EDGE);
}

static vp_status run_cpu(const vp_op_call *c) { return run(c, 0); }
static vp_status run_gpu(const vp_op_call *c) { return run(c, 1); }

const vp_op_desc vp_op_resample_spacing = {
    .name = "resample_spacing",
    .doc =
        "Resamples each sample to a target voxel size (MONAI's Spacing, nnU-Net's "
        "preprocessing): extent round(n * spacing / target), resize's half-voxel grid, "
        "nearest, linear or label; spacing becomes the target, the affine keeps the volume's "
        "extent "
        "and position.",
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

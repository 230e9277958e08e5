/* zoom: nnU-Net's centred scaling of each sample, keeping its shape:
 * output voxel o reads input point c + (o - c) / scale per axis,
 * c = (n - 1) / 2, so scale > 1 zooms in (the object grows) and scale < 1
 * zooms out (the border rule fills the rim). That is
 * scipy.ndimage.affine_transform with the diagonal matrix 1 / scale and
 * offset c - c / scale. Through the resampling engine; the affine follows
 * (every voxel centre keeps its world position, spacing divides by the
 * scale). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "core/tensor.h"
#include "ops/op.h"
#include "ops/resample.h"

enum { ARG_SCALE, ARG_INTERP, ARG_BORDER, ARG_FILL, ARG_DTYPE };

static const vp_arg_spec k_args[] = {
    {"scale", VP_ARG_FLOATS, NULL, 1e-6, 1e6, 3, NULL, VP_ARG_PER_SAMPLE,
     "zoom factor per spatial axis (array order) or one for all; > 1 zooms in"},
    {"interp", VP_ARG_ENUM, "\"linear\"", 0, 0, 0, VP_RESAMPLE_INTERP_CHOICES, 0,
     "nearest (labels), linear, or label (smooth labels: per-label linear weights, then the "
     "heaviest label)"},
    VP_RESAMPLE_BORDER_ARG,
    VP_RESAMPLE_FILL_ARG,
    VP_RESAMPLE_DTYPE_ARG,
};

/* Sample i's engine matrix and per-axis scale (array order). */
static vp_status geometry(const vp_op_call *c, int64_t i, int *sn_out, double M[12], double f[3]) {
  const vp_tensor *t = c->in[0][i];
  int sn = vp_resample_spatial(t);
  if (sn < 1)
    return vp_fail(VP_ERR_INVALID_ARG, "zoom: sample %lld is a scalar: nothing to zoom",
                   (long long)i);
  const vp_arg_value *sc = vp_arg(c->args, ARG_SCALE, i);
  if (sc->len != 1 && sc->len != sn)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "zoom: argument 'scale' has %d values for sample %lld, which has %d spatial "
                   "axes (give %d or 1)",
                   sc->len, (long long)i, sn, sn);
  memset(M, 0, 12 * sizeof *M);
  for (int a = 0; a < sn; a++) {
    f[a] = sc->v[sc->len == 1 ? 0 : a];
    double ctr = ((double)t->shape[t->ndim - sn + a] - 1) / 2;
    int e = 3 - sn + a;
    M[e * 4 + e] = 1.0 / f[a];
    M[e * 4 + 3] = ctr - ctr / f[a];
  }
  *sn_out = sn;
  return VP_OK;
}

static vp_status infer(const vp_op_call *c, int64_t i, vp_out_spec *out) {
  const vp_tensor *t = c->in[0][i];
  int sn;
  double M[12], f[3];
  VP_TRY(geometry(c, i, &sn, M, f));
  vp_resample_out_spec(t, sn, NULL, (int)vp_arg_num(c->args, ARG_DTYPE, i), out);
  return VP_OK;
}

static vp_status meta(const vp_op_call *c, int64_t i) {
  int sn;
  double M[12], f[3];
  VP_TRY(geometry(c, i, &sn, M, f));
  vp_tensor *out = c->out[0][i];
  const vp_tensor *in = c->in[0][i];
  vp_resample_affine(in->affine, sn, M, out->affine);
  int osn = vp_resample_spatial(out);
  for (int a = 0; a < sn && a < osn; a++) {
    double s = in->spacing[osn - sn + a] / f[a];
    if (s > 0 && s <= 1e30) out->spacing[osn - sn + a] = s;
  }
  return VP_OK;
}

static vp_status build(const vp_op_call *c, int64_t i, vp_resample_desc *d) {
  int sn;
  double f[3];
  VP_TRY(geometry(c, i, &sn, d->M, f));
  d->fill = vp_arg_num(c->args, ARG_FILL, i);
  return VP_OK;
}

static vp_status run(const vp_op_call *c, int gpu) {
  vp_interp interp = (vp_interp)(int)vp_arg_num(c->args, ARG_INTERP, 0);
  vp_border border = (vp_border)(int)vp_arg_num(c->args, ARG_BORDER, 0);
  return vp_resample_op_run(c, "zoom", gpu, build, interp, border);
}

static vp_status run_cpu(const vp_op_call *c) { return run(c, 0); }
static vp_status run_gpu(const vp_op_call *c) { return run(c, 1); }

const vp_op_desc vp_op_zoom = {
    .name = "zoom",
    .doc =
        "Centred scaling keeping the shape (nnU-Net's zoom): output voxel o reads input "
        "c + (o - c) / scale, so scale > 1 zooms in; nearest or linear, a border rule; the "
        "affine follows.",
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

/* warp_affine: out[o] = in[A o + b] per sample, with A, b given as a
 * matrix in array-order index coordinates (output -> input, or input ->
 * output with `inverse`), through the resampling engine. The affine
 * follows, so world positions are those of the input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "core/tensor.h"
#include "ops/op.h"
#include "ops/resample.h"

enum { ARG_MATRIX, ARG_SIZE, ARG_INTERP, ARG_BORDER, ARG_FILL, ARG_INVERSE, ARG_DTYPE };

/* The choices of `dtype`: "same", then the dtypes in vp_dtype order. */
#define VP_RS_DTYPE_CHOICES \
  "same|uint8|int8|uint16|int16|uint32|int32|int64|float16|float32|float64"

static const vp_arg_spec k_args[] = {
    {"matrix", VP_ARG_FLOATS, NULL, -1e12, 1e12, 12, NULL, VP_ARG_PER_SAMPLE,
     "output -> input map in array-order voxel indices (D, H, W; integer = voxel centre), "
     "row-major: 12 values (3x4) for 3-D samples, 6 (2x3 over H, W) for 2-D"},
    {"size", VP_ARG_INTS, "[]", 0, 1e9, 3, NULL, VP_ARG_PER_SAMPLE | VP_ARG_EMPTY_OK,
     "output extent per spatial axis; [] or 0 keeps the input's"},
    {"interp", VP_ARG_ENUM, "\"linear\"", 0, 0, 0, VP_RESAMPLE_INTERP_CHOICES, 0,
     "nearest (voxel at floor(x + 0.5)), linear, cubic (B-spline with its prefilter: scipy "
     "order 3) or label (per-label linear weights, then the heaviest label: integer label maps)"},
    {"border", VP_ARG_ENUM, "\"constant\"", 0, 0, 0, "constant|edge|reflect", 0,
     "outside the input: fill (scipy 'grid-constant'), the edge voxel ('nearest') or a "
     "mirror about the edge's outer face ('reflect')"},
    VP_RESAMPLE_FILL_ARG,
    {"inverse", VP_ARG_BOOL, "false", 0, 1, 0, NULL, 0,
     "the matrix maps input -> output: it is inverted first"},
    {"dtype", VP_ARG_ENUM, "\"same\"", 0, 0, 0, VP_RS_DTYPE_CHOICES, 0,
     "output dtype (same = the input's); integers round to nearest and saturate"},
};

/* Inverts the n x (n + 1) affine map [A | b] in place (n <= 3): Gauss-
 * Jordan with partial pivoting on [A | I], then b' = -A^-1 b. */
static int invert_affine(int n, double *m /* n rows of n + 1 */) {
  double a[3][6];
  for (int r = 0; r < n; r++)
    for (int c = 0; c < 2 * n; c++) a[r][c] = c < n ? m[r * (n + 1) + c] : (c - n == r);
  for (int col = 0; col < n; col++) {
    int piv = col;
    for (int r = col + 1; r < n; r++)
      if (fabs(a[r][col]) > fabs(a[piv][col])) piv = r;
    if (!(fabs(a[piv][col]) > 1e-300)) return 0;
    for (int c = 0; c < 2 * n; c++) {
      double t = a[col][c];
      a[col][c] = a[piv][c];
      a[piv][c] = t;
    }
    double p = a[col][col];
    for (int c = 0; c < 2 * n; c++) a[col][c] /= p;
    for (int r = 0; r < n; r++) {
      if (r == col || a[r][col] == 0) continue;
      double f = a[r][col];
      for (int c = 0; c < 2 * n; c++) a[r][c] -= f * a[col][c];
    }
  }
  double b[3];
  for (int r = 0; r < n; r++) b[r] = m[r * (n + 1) + n];
  for (int r = 0; r < n; r++) {
    double t = 0;
    for (int c = 0; c < n; c++) {
      m[r * (n + 1) + c] = a[r][n + c];
      t += a[r][n + c] * b[c];
    }
    m[r * (n + 1) + n] = -t;
    for (int c = 0; c <= n; c++)
      if (!isfinite(m[r * (n + 1) + c])) return 0;
  }
  return 1;
}

/* Sample i's spatial axes, engine matrix and output spatial extents. */
static vp_status geometry(const vp_op_call *c, int64_t i, int *sn_out, double M[12],
                          int64_t out_sp[3]) {
  const vp_tensor *t = c->in[0][i];
  int sn = vp_resample_spatial(t);
  if (sn < 2)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "warp_affine: sample %lld has %d spatial axes; it needs 2 (H, W) or 3 (D, H, "
                   "W)",
                   (long long)i, sn);
  const vp_arg_value *mat = vp_arg(c->args, ARG_MATRIX, i);
  const vp_arg_value *size = vp_arg(c->args, ARG_SIZE, i);
  int want = sn * (sn + 1);
  if (mat->len != want)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "warp_affine: argument 'matrix' has %d values for sample %lld, which has %d "
                   "spatial axes (needs %d: %dx%d row-major)",
                   mat->len, (long long)i, sn, want, sn, sn + 1);
  if (size->len != 0 && size->len != sn)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "warp_affine: argument 'size' has %d values for sample %lld, which has %d "
                   "spatial axes",
                   size->len, (long long)i, sn);
  double m[12];
  memcpy(m, mat->v, (size_t)want * sizeof *m);
  if (vp_arg_num(c->args, ARG_INVERSE, i) != 0 && !invert_affine(sn, m))
    return vp_fail(VP_ERR_INVALID_ARG,
                   "warp_affine: sample %lld: the matrix is singular, so 'inverse' cannot invert "
                   "it",
                   (long long)i);
  memset(M, 0, 12 * sizeof *M);
  for (int r = 0; r < sn; r++) {
    int er = 3 - sn + r; /* engine row */
    for (int col = 0; col < sn; col++) M[er * 4 + 3 - sn + col] = m[r * (sn + 1) + col];
    M[er * 4 + 3] = m[r * (sn + 1) + sn];
  }
  for (int a = 0; a < sn; a++) {
    int64_t n = t->shape[t->ndim - sn + a];
    out_sp[a] = size->len && size->v[a] > 0 ? (int64_t)size->v[a] : n;
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
  return vp_resample_op_run(c, "warp_affine", gpu, build, interp, border);
}

static vp_status run_cpu(const vp_op_call *c) { return run(c, 0); }
static vp_status run_gpu(const vp_op_call *c) { return run(c, 1); }

const vp_op_desc vp_op_warp_affine = {
    .name = "warp_affine",
    .doc =
        "Resamples each sample at A o + b (a matrix in voxel indices, output -> input) with "
        "nearest or linear interpolation and a border rule, as scipy.ndimage."
        "affine_transform; the affine follows.",
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

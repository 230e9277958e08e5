/* The resampling engine's per-voxel arithmetic, one definition for the CPU
 * body (src/ops/resample.c) and the GPU body (src/cuda/resample.cu).
 *
 * Agreement between the two: every double and float operation here goes
 * through VP_RS_* helpers that are plain operators on the host (C11 does
 * not contract a*b+c into an FMA) and round-to-nearest intrinsics on the
 * device (which nvcc would otherwise contract). So coordinates, weights
 * and displacements carry the same bits on both sides, and nearest is
 * bit-exact; linear is too unless the host compiler itself contracts.
 *
 * Borders work on integer indices (as scipy.ndimage does for orders 0 and
 * 1): the neighbours a coordinate needs are mapped one by one, so a
 * constant border mixes `fill` into voxels within one voxel of the edge
 * ('grid-constant'), edge clamps the index ('nearest') and reflect mirrors
 * it about the half-voxel boundary ('reflect'). */
#ifndef VP_OPS_RESAMPLE_KERNEL_H
#define VP_OPS_RESAMPLE_KERNEL_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/convert.h"
#include "ops/resample.h"

#if defined(__CUDA_ARCH__)
#define VP_RS_DMUL(a, b) __dmul_rn((a), (b))
#define VP_RS_DADD(a, b) __dadd_rn((a), (b))
#define VP_RS_FMUL(a, b) __fmul_rn((a), (b))
#define VP_RS_FADD(a, b) __fadd_rn((a), (b))
#else
#define VP_RS_DMUL(a, b) ((a) * (b))
#define VP_RS_DADD(a, b) ((a) + (b))
#define VP_RS_FMUL(a, b) ((a) * (b))
#define VP_RS_FADD(a, b) ((a) + (b))
#endif

/* Coordinates are clamped to this magnitude before they become integers:
 * far beyond any extent (so the border rule still decides), and the
 * conversion stays defined. NaN goes to the low end: outside. */
#define VP_RS_COORD_MAX 1e15

/* Index i of an axis of n voxels under a border rule: an index inside
 * [0, n), or -1 for "the fill value" (constant border, or an empty axis). */
VP_HD int64_t vp_rs_map(int64_t i, int64_t n, int border) {
  if (i >= 0 && i < n) return i;
  if (n <= 0) return -1;
  if (border == VP_BORDER_EDGE) return i < 0 ? 0 : n - 1;
  if (border == VP_BORDER_REFLECT) {
    int64_t p = 2 * n, m = i % p;
    if (m < 0) m += p;
    return m < n ? m : p - 1 - m;
  }
  return -1;
}

VP_HD double vp_rs_clamp_coord(double x) {
  if (!(x > -VP_RS_COORD_MAX)) return -VP_RS_COORD_MAX;
  return x < VP_RS_COORD_MAX ? x : VP_RS_COORD_MAX;
}

/* Row a of M applied to the point (p0, p1, p2), summed in one fixed order:
 * (M0 p0 + M1 p1 + M3) + M2 p2, so a CPU row loop that computes the
 * bracket once per row and adds M2 w per voxel gets the same bits. */
VP_HD double vp_rs_row_base(const double *M, int a, double p0, double p1) {
  return VP_RS_DADD(VP_RS_DADD(VP_RS_DMUL(M[a * 4 + 0], p0), VP_RS_DMUL(M[a * 4 + 1], p1)),
                    M[a * 4 + 3]);
}
VP_HD double vp_rs_coord(const double *M, int a, double base, double p2) {
  return VP_RS_DADD(base, VP_RS_DMUL(M[a * 4 + 2], p2));
}

/* Weights of the uniform cubic B-spline at fraction f in [0, 1) for the
 * control points floor(t) - 1 .. floor(t) + 2: B(f + 1), B(f), B(f - 1),
 * B(f - 2) with B(x) = 2/3 - x^2 + |x|^3 / 2 for |x| < 1, (2 - |x|)^3 / 6
 * for 1 <= |x| < 2. */
VP_HD void vp_rs_bspline_weights(double f, double w[4]) {
  double g = VP_RS_DADD(1.0, -f);
  double f2 = VP_RS_DMUL(f, f), f3 = VP_RS_DMUL(f2, f);
  w[0] = VP_RS_DMUL(VP_RS_DMUL(VP_RS_DMUL(g, g), g), 1.0 / 6.0);
  /* (3 f^3 - 6 f^2 + 4) / 6 */
  w[1] = VP_RS_DADD(VP_RS_DADD(VP_RS_DMUL(0.5, f3), -f2), 2.0 / 3.0);
  w[3] = VP_RS_DMUL(f3, 1.0 / 6.0);
  /* the weights sum to one */
  w[2] = VP_RS_DADD(VP_RS_DADD(VP_RS_DADD(1.0, -w[0]), -w[1]), -w[3]);
}

/* The displacement u(o) of resample.h's rule at output point (od, oh, ow). */
VP_HD void vp_rs_disp(const vp_disp_grid *g, double od, double oh, double ow, double u[3]) {
  const double o[3] = {od, oh, ow};
  double w[3][4];
  int64_t idx[3][4];
  for (int a = 0; a < 3; a++) {
    double t = o[a] / g->spacing[a];
    double fl = floor(t);
    vp_rs_bspline_weights(VP_RS_DADD(t, -fl), w[a]);
    int64_t b = (int64_t)vp_rs_clamp_coord(fl) - 1;
    for (int k = 0; k < 4; k++) {
      int64_t i = b + k;
      idx[a][k] = i < 0 ? 0 : (i >= g->grid[a] ? g->grid[a] - 1 : i);
    }
  }
  u[0] = u[1] = u[2] = 0.0;
  for (int i = 0; i < 4; i++) {
    double sh[3] = {0.0, 0.0, 0.0};
    for (int j = 0; j < 4; j++) {
      double sw[3] = {0.0, 0.0, 0.0};
      const float *row = g->nodes + ((idx[0][i] * g->grid[1] + idx[1][j]) * g->grid[2]) * 3;
      for (int k = 0; k < 4; k++) {
        const float *nd = row + idx[2][k] * 3;
        for (int c = 0; c < 3; c++) sw[c] = VP_RS_DADD(sw[c], VP_RS_DMUL(w[2][k], (double)nd[c]));
      }
      for (int c = 0; c < 3; c++) sh[c] = VP_RS_DADD(sh[c], VP_RS_DMUL(w[1][j], sw[c]));
    }
    for (int c = 0; c < 3; c++) u[c] = VP_RS_DADD(u[c], VP_RS_DMUL(w[0][i], sh[c]));
  }
}

/* Whether M is axis-aligned: each output axis' coordinate depends on that
 * axis alone (the 3 x 3 part's off-diagonal terms are zero). */
VP_HD int vp_rs_axis_aligned(const double *M) {
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 3; b++)
      if (b != a && M[a * 4 + b] != 0.0) return 0;
  return 1;
}

/* The point (p0, p1, p2) under M, row by row in the order above. */
VP_HD void vp_rs_apply_matrix(const double *M, double p0, double p1, double p2, double x[3]) {
  for (int a = 0; a < 3; a++) x[a] = vp_rs_coord(M, a, vp_rs_row_base(M, a, p0, p1), p2);
}

/* Input coordinates (array order) of output voxel (d, h, w). */
VP_HD void vp_rs_point(const vp_resample_desc *ds, int64_t d, int64_t h, int64_t w, double x[3]) {
  double p0 = (double)d, p1 = (double)h, p2 = (double)w;
  if (ds->disp.nodes) {
    double u[3];
    vp_rs_disp(&ds->disp, p0, p1, p2, u);
    p0 = VP_RS_DADD(p0, u[0]);
    p1 = VP_RS_DADD(p1, u[1]);
    p2 = VP_RS_DADD(p2, u[2]);
  }
  vp_rs_apply_matrix(ds->M, p0, p1, p2, x);
}

/* Nearest (scipy order 0): the voxel at floor(x + 0.5) per axis, through
 * the border; -1 when it is the fill value. */
VP_HD int64_t vp_rs_nearest_offset(const int64_t shp[3], const double x[3], int border) {
  int64_t j[3];
  for (int a = 0; a < 3; a++) {
    int64_t i = (int64_t)floor(vp_rs_clamp_coord(VP_RS_DADD(x[a], 0.5)));
    j[a] = vp_rs_map(i, shp[a], border);
    if (j[a] < 0) return -1;
  }
  return (j[0] * shp[1] + j[1]) * shp[2] + j[2];
}

/* Trilinear neighbours: for each axis the two mapped indices and the
 * weight of the second. A zero weight reuses the first index, so a
 * coordinate on a voxel centre reads that voxel alone (and never mixes in
 * a fill or a neighbour's inf as 0 * inf). */
typedef struct vp_rs_lin {
  int64_t off[8]; /* corner (a, b, c) at [a * 4 + b * 2 + c]; -1 = fill */
  double t[3];
} vp_rs_lin;

VP_HD void vp_rs_linear_setup(const int64_t shp[3], const double x[3], int border, vp_rs_lin *L) {
  int64_t j[3][2];
  for (int a = 0; a < 3; a++) {
    double xc = vp_rs_clamp_coord(x[a]);
    double fl = floor(xc);
    L->t[a] = VP_RS_DADD(xc, -fl);
    int64_t i = (int64_t)fl;
    j[a][0] = vp_rs_map(i, shp[a], border);
    j[a][1] = L->t[a] == 0.0 ? j[a][0] : vp_rs_map(i + 1, shp[a], border);
  }
  for (int c = 0; c < 8; c++) {
    int64_t a = j[0][c >> 2], b = j[1][(c >> 1) & 1], w = j[2][c & 1];
    L->off[c] = (a < 0 || b < 0 || w < 0) ? -1 : (a * shp[1] + b) * shp[2] + w;
  }
}

/* One float lerp of linear interpolation, (1 - t) a + t b with ta = 1 - tb
 * found once per axis by the caller (the GPU does not merge explicit
 * roundings across calls: inline, it computed 1 - tw four times a voxel);
 * t = 0 takes a alone. */
VP_HD float vp_rs_lerpf_c(float a, float b, float ta, float tb) {
  return tb == 0.0f ? a : VP_RS_FADD(VP_RS_FMUL(ta, a), VP_RS_FMUL(tb, b));
}

/* The interpolated value from a channel's data (dtype t): in float for
 * float16/float32 data, in double otherwise. (1 - t) a + t b per axis,
 * W first, as scipy weighs its corners; t = 0 takes a alone. */
VP_HD double vp_rs_linear_value(const void *src, vp_dtype t, const vp_rs_lin *L, double fill) {
  if (t == VP_F32 || t == VP_F16) {
    float v[8];
    for (int c = 0; c < 8; c++)
      v[c] = L->off[c] < 0
                 ? (float)fill
                 : (t == VP_F32 ? ((const float *)src)[L->off[c]]
                                : vp_cvt_half_to_float(((const uint16_t *)src)[L->off[c]]));
    int n = 8;
    for (int a = 2; a >= 0; a--) {
      float tb = (float)L->t[a], ta = VP_RS_FADD(1.0f, -tb);
      n >>= 1;
      for (int c = 0; c < n; c++) v[c] = vp_rs_lerpf_c(v[2 * c], v[2 * c + 1], ta, tb);
    }
    return (double)v[0];
  }
  double v[8];
  for (int c = 0; c < 8; c++) v[c] = L->off[c] < 0 ? fill : vp_cvt_load(src, t, L->off[c]);
  int n = 8;
  for (int a = 2; a >= 0; a--) {
    double tb = L->t[a], ta = VP_RS_DADD(1.0, -tb);
    n >>= 1;
    for (int c = 0; c < n; c++)
      v[c] =
          tb == 0.0 ? v[2 * c] : VP_RS_DADD(VP_RS_DMUL(ta, v[2 * c]), VP_RS_DMUL(tb, v[2 * c + 1]));
  }
  return v[0];
}

/* Linear on float32 data whose eight corners lie inside the input: the
 * first corner at p[b], the second corner along D, H, W at od, oh, ow
 * elements (0 where that axis' weight is 0, so an outside neighbour is
 * never read), weights td, th, tw. vp_rs_linear_value's float arithmetic
 * in its order (W, then H, then D; a zero weight takes the first value),
 * so the bits are the same: the CPU's and GPU's interior fast paths. One
 * body for two offset types: int64_t (the CPU row path) and int32_t (the
 * GPU's fast kernel, whose extents fit). */
#define VP_RS_DEFINE_TRILINEAR(NAME, IDX)                                                         \
  VP_HD float NAME(const float *p, IDX b, IDX od, IDX oh, IDX ow, float td, float th, float tw) { \
    const float cd = VP_RS_FADD(1.0f, -td), ch = VP_RS_FADD(1.0f, -th),                           \
                cw = VP_RS_FADD(1.0f, -tw);                                                       \
    const float a = vp_rs_lerpf_c(p[b], p[b + ow], cw, tw),                                       \
                c = vp_rs_lerpf_c(p[b + oh], p[b + oh + ow], cw, tw);                             \
    const float e = vp_rs_lerpf_c(p[b + od], p[b + od + ow], cw, tw),                             \
                f = vp_rs_lerpf_c(p[b + od + oh], p[b + od + oh + ow], cw, tw);                   \
    return vp_rs_lerpf_c(vp_rs_lerpf_c(a, c, ch, th), vp_rs_lerpf_c(e, f, ch, th), cd, td);       \
  }
VP_RS_DEFINE_TRILINEAR(vp_rs_trilinear_f32, int64_t)
VP_RS_DEFINE_TRILINEAR(vp_rs_trilinear_f32_i32, int32_t)

/* Label mode (resample.h's VP_INTERP_LABEL) on linear's neighbours: the
 * corner weights are linear's products (1 - t) or t per axis, summed per
 * distinct label in corner order and compared, so the result is a label
 * of the input (or fill) and never a blend. Each label is summed once, at
 * its first corner, by scanning the later corners: no per-class
 * accumulators, which keeps the GPU's register use to the 8 labels and
 * weights. Integer data of at most 32 bits (loaded exactly); fill is
 * converted only when a corner needs it, the check having made it an
 * integer. */
VP_HD double vp_rs_label_value(const void *src, vp_dtype t, const vp_rs_lin *L, double fill) {
  int64_t lab[8];
  double wt[8];
  double wa[3][2];
  for (int a = 0; a < 3; a++) {
    wa[a][1] = L->t[a];
    wa[a][0] = VP_RS_DADD(1.0, -L->t[a]);
  }
  for (int c = 0; c < 8; c++) {
    lab[c] = L->off[c] < 0 ? (int64_t)fill : (int64_t)vp_cvt_load(src, t, L->off[c]);
    wt[c] = VP_RS_DMUL(VP_RS_DMUL(wa[0][c >> 2], wa[1][(c >> 1) & 1]), wa[2][c & 1]);
  }
  int64_t best = lab[0];
  double best_w = -1.0;
  for (int c = 0; c < 8; c++) {
    bool seen = false;
    for (int k = 0; k < c; k++) seen = seen || lab[k] == lab[c];
    if (seen) continue;
    double sum = wt[c];
    for (int k = c + 1; k < 8; k++)
      if (lab[k] == lab[c]) sum = VP_RS_DADD(sum, wt[k]);
    if (sum > best_w || (sum == best_w && lab[c] < best)) {
      best = lab[c];
      best_w = sum;
    }
  }
  return (double)best;
}

/* Nearest's value: the voxel, or fill (through float for float16/float32
 * data, as their linear path). */
VP_HD double vp_rs_nearest_value(const void *src, vp_dtype t, int64_t off, double fill) {
  if (off < 0) return (t == VP_F32 || t == VP_F16) ? (double)(float)fill : fill;
  return vp_cvt_load(src, t, off);
}

/* Cubic's coefficient stage (VP_INTERP_CUBIC_COEF): the B-spline of the
 * float32 coefficients c (src/ops/bspline.h's layout) at x, coefficient
 * indices mapped by `border` (edge or reflect). An axis of extent 1 reads
 * its one coefficient with weight one (its other taps weigh exactly 0).
 * Sums in float, W innermost. */
VP_HD float vp_rs_cubic_value(const float *c, const int64_t shp[3], const double x[3], int border) {
  float w[3][4];
  int64_t j[3][4];
  for (int a = 0; a < 3; a++) {
    if (shp[a] == 1) {
      w[a][0] = 1.0f;
      w[a][1] = w[a][2] = w[a][3] = 0.0f;
      j[a][0] = j[a][1] = j[a][2] = j[a][3] = 0;
      continue;
    }
    double xc = vp_rs_clamp_coord(x[a]);
    double fl = floor(xc), wd[4];
    vp_rs_bspline_weights(VP_RS_DADD(xc, -fl), wd);
    int64_t b = (int64_t)fl - 1;
    for (int k = 0; k < 4; k++) {
      w[a][k] = (float)wd[k];
      j[a][k] = vp_rs_map(b + k, shp[a], border);
    }
  }
  /* fixed trip counts, so the index and weight arrays stay in registers;
   * an extent-1 axis adds its zero-weight taps as exact zeros */
  float acc = 0.0f;
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int p = 0; p < 4; p++) {
    float ah = 0.0f;
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
    for (int q = 0; q < 4; q++) {
      const float *row = c + (j[0][p] * shp[1] + j[1][q]) * shp[2];
      float aw = 0.0f;
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
      for (int r = 0; r < 4; r++) aw = VP_RS_FADD(aw, VP_RS_FMUL(w[2][r], row[j[2][r]]));
      ah = VP_RS_FADD(ah, VP_RS_FMUL(w[1][q], aw));
    }
    acc = VP_RS_FADD(acc, VP_RS_FMUL(w[0][p], ah));
  }
  return acc;
}

/* Antialiased weights (resample.h's aa): the taps of axis position x for a
 * filter of width s (>= 1) and the weight of tap i. */
VP_HD void vp_rs_aa_span(double x, double s, int area, int64_t n, int64_t *lo, int64_t *hi) {
  const double r = area ? 0.5 * s + 0.5 : s;
  double a = ceil(vp_rs_clamp_coord(x - r)), b = floor(vp_rs_clamp_coord(x + r));
  *lo = a < 0 ? 0 : (int64_t)a;
  *hi = b > (double)(n - 1) ? n - 1 : (int64_t)b;
}
VP_HD double vp_rs_aa_weight(double x, double s, int area, int64_t i) {
  const double d = (double)i - x;
  if (!area) {
    const double w = 1.0 - fabs(d) / s;
    return w > 0 ? w : 0.0;
  }
  const double lo = fmax(d - 0.5, -0.5 * s), hi = fmin(d + 0.5, 0.5 * s);
  return hi > lo ? hi - lo : 0.0;
}

/* The antialiased value at x (array order), in double: the separable
 * weights over the taps inside the input, normalised per axis (an axis of
 * extent 1, or a position whose filter misses the input, reads the nearest
 * edge voxel with weight one). */
typedef struct vp_rs_aa_axis {
  int64_t lo, hi;
  double x, s, norm; /* norm 0: weight one */
  int area;
} vp_rs_aa_axis;

VP_HD double vp_rs_aa_w(const vp_rs_aa_axis *A, int64_t i) {
  return A->norm == 0.0 ? 1.0 : vp_rs_aa_weight(A->x, A->s, A->area, i) / A->norm;
}

/* Taps per axis whose weights are computed once per voxel (else each
 * tap's weight is recomputed where it is used). */
#define VP_RS_AA_TAPS 24

VP_HD double vp_rs_aa_value(const void *src, vp_dtype t, const int64_t shp[3], const double x[3],
                            const double aa[3], int area) {
  vp_rs_aa_axis A[3];
  double wt[3][VP_RS_AA_TAPS];
  int table = 1;
  for (int a = 0; a < 3; a++) {
    A[a].x = x[a];
    A[a].s = aa[a] > 1.0 ? aa[a] : 1.0;
    A[a].area = aa[a] > 1.0 && area;
    A[a].norm = 0.0;
    if (shp[a] == 1) {
      A[a].lo = A[a].hi = 0;
      wt[a][0] = 1.0;
      continue;
    }
    vp_rs_aa_span(x[a], A[a].s, A[a].area, shp[a], &A[a].lo, &A[a].hi);
    for (int64_t i = A[a].lo; i <= A[a].hi; i++)
      A[a].norm += vp_rs_aa_weight(x[a], A[a].s, A[a].area, i);
    if (!(A[a].norm > 0.0)) {
      A[a].lo = A[a].hi = x[a] < 0 ? 0 : shp[a] - 1;
      A[a].norm = 0.0;
    }
    if (A[a].hi - A[a].lo >= VP_RS_AA_TAPS) table = 0;
    for (int64_t i = A[a].lo; table && i <= A[a].hi; i++) wt[a][i - A[a].lo] = vp_rs_aa_w(&A[a], i);
  }
  double acc = 0.0;
  for (int64_t i = A[0].lo; i <= A[0].hi; i++) {
    double a1 = 0.0;
    for (int64_t j = A[1].lo; j <= A[1].hi; j++) {
      const int64_t row = (i * shp[1] + j) * shp[2];
      double a2 = 0.0;
      if (table) {
        for (int64_t k = A[2].lo; k <= A[2].hi; k++)
          a2 = VP_RS_DADD(a2, VP_RS_DMUL(wt[2][k - A[2].lo], vp_cvt_load(src, t, row + k)));
        a1 = VP_RS_DADD(a1, VP_RS_DMUL(wt[1][j - A[1].lo], a2));
      } else {
        for (int64_t k = A[2].lo; k <= A[2].hi; k++)
          a2 = VP_RS_DADD(a2, VP_RS_DMUL(vp_rs_aa_w(&A[2], k), vp_cvt_load(src, t, row + k)));
        a1 = VP_RS_DADD(a1, VP_RS_DMUL(vp_rs_aa_w(&A[1], j), a2));
      }
    }
    acc = VP_RS_DADD(acc, VP_RS_DMUL(table ? wt[0][i - A[0].lo] : vp_rs_aa_w(&A[0], i), a1));
  }
  return acc;
}

#endif

/* Cubic B-spline interpolation (scipy.ndimage order 3 with prefilter=True):
 * the layout of the coefficient volume and the per-line prefilter, one
 * definition for the CPU (src/ops/resample_cubic.c) and the GPU
 * (src/cuda/resample_cubic.cu, src/cuda/resample_separable.cu); and the
 * separable path's plan and per-line functions (below).
 *
 * A cubic B-spline through the samples needs coefficients c with
 * sum_k c[k] B(i - k) = x[i]: the inverse of the filter (1, 4, 1) / 6, run
 * as a causal and an anticausal first-order recursion with the pole
 * z = sqrt(3) - 2 (Unser, Aldroubi & Eden 1991). The recursions need the
 * signal beyond the line's ends; they take it from the boundary rule:
 *  - reflect: the half-sample mirror, exactly (as scipy's 'reflect');
 *  - constant and edge: as scipy, the input is first padded by
 *    VP_BSPLINE_PAD voxels of fill (or of the edge voxel) per side and the
 *    padded line filtered with a whole-sample mirror (constant) or a
 *    half-sample mirror (edge). |z|^12 < 1.4e-7, so the padded ends barely
 *    reach the data, and interpolating beyond the padding clamps to its
 *    outermost coefficients (those of the constant extension).
 * Axes of extent 1 are neither padded nor filtered: their one coefficient is
 * the value, read with weight one, so 2-D data (D = 1) stays 2-D. */
#ifndef VP_OPS_BSPLINE_H
#define VP_OPS_BSPLINE_H

#include <math.h>
#include <stdint.h>

#include "core/convert.h"
#include "ops/resample.h"
#include "ops/resample_kernel.h"

#define VP_BSPLINE_PAD 12
/* The boundary sums stop where z^k falls below this: 21 terms instead of
 * the whole line, changing the float32 coefficients by nothing. */
#define VP_BSPLINE_HORIZON 1e-12

/* Padding per axis and the coefficient volume's extents for an input of
 * in_shape under `border`. */
VP_HD void vp_bspline_layout(const int64_t in_shape[3], int border, int64_t pad[3],
                             int64_t coef_shape[3]) {
  for (int a = 0; a < 3; a++) {
    pad[a] = (border != VP_BORDER_REFLECT && in_shape[a] > 1) ? VP_BSPLINE_PAD : 0;
    coef_shape[a] = in_shape[a] + 2 * pad[a];
  }
}

/* The border rule the interpolation applies to the coefficient volume. */
VP_HD int vp_bspline_coef_border(int border) {
  return border == VP_BORDER_REFLECT ? VP_BORDER_REFLECT : VP_BORDER_EDGE;
}

/* Filters one line of n coefficients, `stride` floats apart, in place, in
 * double. half_sample: the half-sample mirror (reflect, edge) boundary,
 * else the whole-sample mirror (constant). Each boundary start is the sum
 * over the line (scipy's), cut where the pole's powers vanish. */
VP_HD void vp_bspline_line(float *c, int64_t n, int64_t stride, int half_sample) {
  if (n < 2) return;
  const double z = -0.2679491924311227; /* sqrt(3) - 2 */
  const double gain = 6.0;              /* (1 - z)(1 - 1/z) */
#define VP_BS(i) c[(i)*stride]
  double prev;
  /* causal start */
  {
    double acc, zi = z;
    if (half_sample) {
      const double zn = pow(z, (double)n);
      const int far = fabs(zn) < VP_BSPLINE_HORIZON; /* the mirrored end is out of reach */
      acc = gain * VP_BS(0) + (far ? 0.0 : zn * gain * VP_BS(n - 1));
      for (int64_t i = 1; i < n; i++) {
        acc += zi * (gain * VP_BS(i) + (far ? 0.0 : zn * gain * VP_BS(n - 1 - i)));
        zi *= z;
        if (fabs(zi) < VP_BSPLINE_HORIZON) break;
      }
      prev = acc * z / (1.0 - zn * zn) + gain * VP_BS(0);
    } else {
      const double zn1 = pow(z, (double)(n - 1));
      const int far = fabs(zn1) < VP_BSPLINE_HORIZON;
      acc = gain * VP_BS(0) + (far ? 0.0 : zn1 * gain * VP_BS(n - 1));
      for (int64_t i = 1; i < n - 1; i++) {
        acc += zi * (gain * VP_BS(i) + (far ? 0.0 : zn1 * gain * VP_BS(n - 1 - i)));
        zi *= z;
        if (fabs(zi) < VP_BSPLINE_HORIZON) break;
      }
      prev = acc / (1.0 - zn1 * zn1);
    }
  }
  /* causal pass, keeping the last two values in double for the
   * anticausal start */
  /* The passes load four values ahead of the recursion, so a GPU thread
   * keeps four reads in flight (the arithmetic, and so the result, is the
   * one-at-a-time loop's). */
  double before_last = prev;
  VP_BS(0) = (float)prev;
  int64_t i = 1;
  for (; i + 3 < n; i += 4) {
    const float v0 = VP_BS(i), v1 = VP_BS(i + 1), v2 = VP_BS(i + 2), v3 = VP_BS(i + 3);
    const double p0 = gain * v0 + z * prev;
    const double p1 = gain * v1 + z * p0;
    const double p2 = gain * v2 + z * p1;
    before_last = p2;
    prev = gain * v3 + z * p2;
    VP_BS(i) = (float)p0;
    VP_BS(i + 1) = (float)p1;
    VP_BS(i + 2) = (float)p2;
    VP_BS(i + 3) = (float)prev;
  }
  for (; i < n; i++) {
    before_last = prev;
    prev = gain * VP_BS(i) + z * prev;
    VP_BS(i) = (float)prev;
  }
  /* anticausal start and pass */
  double next = half_sample ? prev * z / (z - 1.0) : (z * before_last + prev) * z / (z * z - 1.0);
  VP_BS(n - 1) = (float)next;
  i = n - 2;
  for (; i >= 3; i -= 4) {
    const float v0 = VP_BS(i), v1 = VP_BS(i - 1), v2 = VP_BS(i - 2), v3 = VP_BS(i - 3);
    const double q0 = z * (next - (double)v0);
    const double q1 = z * (q0 - (double)v1);
    const double q2 = z * (q1 - (double)v2);
    next = z * (q2 - (double)v3);
    VP_BS(i) = (float)q0;
    VP_BS(i - 1) = (float)q1;
    VP_BS(i - 2) = (float)q2;
    VP_BS(i - 3) = (float)next;
  }
  for (; i >= 0; i--) {
    next = z * (next - (double)VP_BS(i));
    VP_BS(i) = (float)next;
  }
#undef VP_BS
}

/* ---------------------------------------------------------------- */
/* The separable path of axis-aligned maps (resize, zoom, flip, ...)  */

/* When every output coordinate of a sample depends on its own axis only
 * (M's off-diagonal terms zero, no displacement field), padding,
 * prefiltering and interpolating along one axis commute with the same
 * along the others: padding is a per-axis index rule, and the constant
 * border's fill is a fixed point of each axis' filter and taps (they
 * preserve constants). So cubic runs as up to three passes, each taking
 * every line along its axis through the border, filtering it and
 * interpolating 4 taps per output voxel: 4 + 4 + 4 taps instead of 64 and
 * no coefficient volume. In exact arithmetic the result is the coefficient
 * path's; in float the roundings differ (intermediates are float32
 * interpolated values, not coefficients). The CPU and the GPU run the same
 * plan, with the per-line functions below. */
#define VP_BSPLINE_MAX_PASSES 3

/* One pass over a volume [outer][n_in][inner] (channels and the axes
 * before the pass axis merged into outer, those after into inner) into
 * [outer][n_out][inner]. Output o along the axis reads the coefficient
 * line (n_in voxels plus pad per side) at scale * o + offset (offset
 * includes pad). */
typedef struct vp_bspline_pass {
  int axis;
  int64_t outer, inner;
  int64_t n_in, n_out, pad, ncoef;
  double scale, offset;
} vp_bspline_pass;

typedef struct vp_bspline_plan {
  int npass;
  vp_bspline_pass pass[VP_BSPLINE_MAX_PASSES];
  int64_t scratch[VP_BSPLINE_MAX_PASSES]; /* float32 elements written by pass k (not the last) */
} vp_bspline_plan;

/* One output voxel's taps along a pass axis: coefficient indices (the
 * coefficient border already applied) and weights. */
typedef struct vp_bspline_tap {
  int32_t j[4];
  float w[4];
} vp_bspline_tap;

/* The passes of sample s, or 0 when it is not axis-aligned (or is empty,
 * or a line's coefficients would not fit 32-bit indices): then the
 * coefficient path runs it. Axes whose map is the identity (same extent,
 * scale 1, offset 0: B-spline interpolation at the samples returns them)
 * and axes of extent 1 in and out are skipped. The order of the passes is
 * the one that moves the fewest elements (read + written, summed over the
 * passes): the axes that shrink most go first; ties go to W first, whose
 * lines are contiguous. If no axis needs a pass, one W pass converts. */
VP_HD int vp_bspline_plan_make(const vp_resample_desc *s, int border, vp_bspline_plan *p) {
  if (s->disp.nodes || s->channels <= 0) return 0;
  for (int a = 0; a < 3; a++) {
    if (s->aa[a] != 0 || s->in_shape[a] <= 0 || s->out_shape[a] <= 0) return 0;
    if (s->in_shape[a] + 2 * VP_BSPLINE_PAD >= ((int64_t)1 << 31) ||
        s->out_shape[a] >= ((int64_t)1 << 31))
      return 0;
  }
  if (!vp_rs_axis_aligned(s->M)) return 0;
  int need[3], nn = 0;
  for (int a = 0; a < 3; a++) {
    const int ident =
        s->in_shape[a] == s->out_shape[a] && s->M[a * 4 + a] == 1.0 && s->M[a * 4 + 3] == 0.0;
    need[a] = !ident && !(s->in_shape[a] == 1 && s->out_shape[a] == 1);
    nn += need[a];
  }
  if (nn == 0) need[2] = 1;
  const int orders[6][3] = {{2, 1, 0}, {2, 0, 1}, {1, 2, 0}, {1, 0, 2}, {0, 2, 1}, {0, 1, 2}};
  double best = -1.0;
  int pick = 0;
  for (int k = 0; k < 6; k++) {
    double cur[3] = {(double)s->in_shape[0], (double)s->in_shape[1], (double)s->in_shape[2]};
    double cost = 0.0;
    for (int q = 0; q < 3; q++) {
      const int a = orders[k][q];
      if (!need[a]) continue;
      const double before = cur[0] * cur[1] * cur[2];
      cur[a] = (double)s->out_shape[a];
      cost += before + cur[0] * cur[1] * cur[2];
    }
    if (best < 0 || cost < best) {
      best = cost;
      pick = k;
    }
  }
  /* every intermediate volume must be indexable (and allocatable) */
  double big = (double)s->channels;
  for (int a = 0; a < 3; a++)
    big *= (double)(s->in_shape[a] > s->out_shape[a] ? s->in_shape[a] : s->out_shape[a]);
  if (big > 1e17) return 0;
  int64_t cur[3] = {s->in_shape[0], s->in_shape[1], s->in_shape[2]};
  p->npass = 0;
  for (int q = 0; q < 3; q++) {
    const int a = orders[pick][q];
    if (!need[a]) continue;
    vp_bspline_pass *ps = &p->pass[p->npass];
    ps->axis = a;
    ps->outer = s->channels;
    for (int b = 0; b < a; b++) ps->outer *= cur[b];
    ps->inner = 1;
    for (int b = a + 1; b < 3; b++) ps->inner *= cur[b];
    ps->n_in = cur[a];
    ps->n_out = s->out_shape[a];
    ps->pad = (border != VP_BORDER_REFLECT && ps->n_in > 1) ? VP_BSPLINE_PAD : 0;
    ps->ncoef = ps->n_in + 2 * ps->pad;
    ps->scale = s->M[a * 4 + a];
    /* the coefficient path's shift of M's offset by the padding */
    ps->offset = s->M[a * 4 + 3] + (double)ps->pad;
    cur[a] = ps->n_out;
    p->scratch[p->npass] = s->channels * cur[0] * cur[1] * cur[2];
    p->npass++;
  }
  p->scratch[p->npass - 1] = 0; /* the last pass writes the output */
  return 1;
}

/* The taps of output o of pass p under the coefficient border (edge or
 * reflect): vp_rs_cubic_value's per-axis weights and indices. A line of
 * one coefficient reads it with weight one. */
VP_HD void vp_bspline_tap_at(const vp_bspline_pass *p, int64_t o, int coef_border,
                             vp_bspline_tap *t) {
  if (p->ncoef == 1) {
    t->w[0] = 1.0f;
    t->w[1] = t->w[2] = t->w[3] = 0.0f;
    t->j[0] = t->j[1] = t->j[2] = t->j[3] = 0;
    return;
  }
  const double x = vp_rs_clamp_coord(VP_RS_DADD(VP_RS_DMUL(p->scale, (double)o), p->offset));
  const double fl = floor(x);
  double wd[4];
  vp_rs_bspline_weights(VP_RS_DADD(x, -fl), wd);
  const int64_t b = (int64_t)fl - 1;
  for (int k = 0; k < 4; k++) {
    t->w[k] = (float)wd[k];
    t->j[k] = (int32_t)vp_rs_map(b + k, p->ncoef, coef_border);
  }
}

/* Element k of a coefficient line before filtering: the input voxel it
 * sits on through the border (the line's first voxel at `base`, voxels
 * `stride` apart), or fill. */
VP_HD float vp_bspline_load(const void *src, vp_dtype t, int64_t base, int64_t stride,
                            const vp_bspline_pass *p, int64_t k, int border, double fill) {
  const int64_t i = vp_rs_map(k - p->pad, p->n_in, border);
  if (i < 0) return (float)fill;
  const int64_t at = base + i * stride;
  return t == VP_F32 ? ((const float *)src)[at] : (float)vp_cvt_load(src, t, at);
}

/* The interpolated value of a filtered line c (elements `stride` apart):
 * sums in float in vp_rs_cubic_value's order. */
VP_HD float vp_bspline_tap_sum(const float *c, int64_t stride, const vp_bspline_tap *t) {
  float acc = 0.0f;
  for (int k = 0; k < 4; k++)
    acc = VP_RS_FADD(acc, VP_RS_FMUL(t->w[k], c[(int64_t)t->j[k] * stride]));
  return acc;
}

VP_HD void vp_bspline_store(void *dst, vp_dtype t, int64_t at, float v) {
  if (t == VP_F32)
    ((float *)dst)[at] = v;
  else
    vp_cvt_store(dst, t, at, (double)v);
}

#endif

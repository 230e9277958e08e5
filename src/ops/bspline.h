/* Cubic B-spline interpolation (scipy.ndimage order 3 with prefilter=True):
 * the layout of the coefficient volume and the per-line prefilter, one
 * definition for the CPU (src/ops/resample_cubic.c) and the GPU
 * (src/cuda/resample_cubic.cu).
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

#endif

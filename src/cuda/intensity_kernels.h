/* The per-voxel arithmetic of bias_field, erase and one_hot, shared by
 * their CPU bodies (src/ops/<op>.c) and GPU bodies (src/cuda/<op>.cu), and
 * the C-callable GPU launchers. The top half is plain C; the launch helper
 * at the bottom is CUDA C++ only. */
#ifndef VP_CUDA_INTENSITY_KERNELS_H
#define VP_CUDA_INTENSITY_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "core/convert.h"
#include "core/philox.h"
#include "cuda/batch_launch.h"
#include "cuda/gaussian_blur.h"
#include "voxpipe.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- */
/* bias_field                                                        */

#define VP_BIAS_MAX_DEGREE 6
#define VP_BIAS_MAX_TERMS 84 /* (6 + 3 choose 3): the 3-D count at degree 6 */

typedef struct vp_bias_desc {
  const void *in;
  void *out;
  int64_t shape[4]; /* outer, D, H, W */
  int64_t numel;
  int32_t sn;     /* spatial axes, 2 or 3 */
  int32_t degree; /* Legendre degree */
  uint32_t apply;
  /* The coefficients in MONAI's order: 3-D (i, j, k) with i + j + k <=
   * degree, lexicographic; 2-D (i, j) with j <= i (numpy's tril_indices
   * of a (degree + 1)^2 matrix), lexicographic. Axis order i: D (3-D) or
   * H (2-D). */
  double coef[VP_BIAS_MAX_TERMS];
} vp_bias_desc;

/* MONAI's coordinate of voxel k of n: np.linspace(-1, 1, n, dtype=float32). */
VP_HD double vp_bias_coord(int64_t k, int64_t n) {
  if (n < 2) return -1.0;
  if (k == n - 1) return 1.0;
  return (double)(float)(-1.0 + (double)k * (2.0 / (double)(n - 1)));
}

/* P_0 .. P_degree at x (Bonnet's recurrence). */
VP_HD void vp_legendre(double x, int degree, double *p) {
  p[0] = 1.0;
  if (degree > 0) p[1] = x;
  for (int n = 1; n < degree; n++) p[n + 1] = ((2 * n + 1) * x * p[n] - n * p[n - 1]) / (n + 1);
}

/* log of the field at spatial voxel (z, y, x) (z ignored in 2-D). */
VP_HD double vp_bias_log_field(const vp_bias_desc *d, int64_t z, int64_t y, int64_t x) {
  double pa[VP_BIAS_MAX_DEGREE + 1], pb[VP_BIAS_MAX_DEGREE + 1], pc[VP_BIAS_MAX_DEGREE + 1];
  const int deg = d->degree;
  double acc = 0;
  int t = 0;
  if (d->sn == 3) {
    vp_legendre(vp_bias_coord(z, d->shape[1]), deg, pa);
    vp_legendre(vp_bias_coord(y, d->shape[2]), deg, pb);
    vp_legendre(vp_bias_coord(x, d->shape[3]), deg, pc);
    for (int i = 0; i <= deg; i++)
      for (int j = 0; j <= deg - i; j++) {
        double s = 0;
        for (int k = 0; k <= deg - i - j; k++) s += d->coef[t++] * pc[k];
        acc += pa[i] * pb[j] * s;
      }
  } else {
    vp_legendre(vp_bias_coord(y, d->shape[2]), deg, pa);
    vp_legendre(vp_bias_coord(x, d->shape[3]), deg, pb);
    for (int i = 0; i <= deg; i++) {
      double s = 0;
      for (int j = 0; j <= i; j++) s += d->coef[t++] * pb[j];
      acc += pa[i] * s;
    }
  }
  return acc;
}

/* Element e of the sample: in * exp(field) (float32 and float16 multiply
 * in float, the others in double, integers round and saturate), or a copy
 * when p left the sample alone. */
VP_HD void vp_bias_elem(const vp_bias_desc *d, vp_dtype t, int64_t e) {
  if (!d->apply) {
    vp_stencil_copy_elem(d->in, d->out, vp_stencil_elem_size(t), e);
    return;
  }
  const int64_t W = d->shape[3], H = d->shape[2], D = d->shape[1];
  const int64_t r = vp_stencil_div(e, W), x = e - r * W, q = vp_stencil_div(r, H), y = r - q * H;
  const int64_t z = q - vp_stencil_div(q, D) * D;
  const double f = exp(vp_bias_log_field(d, z, y, x));
  switch (t) {
    case VP_F32: ((float *)d->out)[e] = ((const float *)d->in)[e] * (float)f; break;
    case VP_F16:
      ((uint16_t *)d->out)[e] =
          vp_cvt_float_to_half(vp_cvt_half_to_float(((const uint16_t *)d->in)[e]) * (float)f);
      break;
    default: vp_cvt_store(d->out, t, e, vp_cvt_load(d->in, t, e) * f); break;
  }
}

vp_status vp_cuda_bias_field(const vp_bias_desc *descs, int64_t n, vp_dtype t, vp_stream s);

/* ---------------------------------------------------------------- */
/* erase                                                             */

#define VP_ERASE_MAX_HOLES 32

typedef struct vp_erase_desc {
  const void *in;
  void *out;
  int64_t shape[4]; /* outer, D, H, W */
  int64_t numel;
  int64_t lo[VP_ERASE_MAX_HOLES][3], hi[VP_ERASE_MAX_HOLES][3]; /* boxes, D H W, hi exclusive */
  int32_t holes;
  uint32_t apply;
  uint32_t noise;  /* fill with mean + stddev * z instead of value */
  uint32_t sample; /* the Philox counter's sample index */
  double value, mean, stddev;
} vp_erase_desc;

/* Whether spatial voxel (z, y, x) lies in one of the sample's boxes. */
VP_HD int vp_erase_inside(const vp_erase_desc *d, int64_t z, int64_t y, int64_t x) {
  for (int h = 0; h < d->holes; h++)
    if (z >= d->lo[h][0] && z < d->hi[h][0] && y >= d->lo[h][1] && y < d->hi[h][1] &&
        x >= d->lo[h][2] && x < d->hi[h][2])
      return 1;
  return 0;
}

/* Element e: the fill inside a box, else the input's bytes. The noise of
 * element e is gaussian_noise's: z number e & 3 of the two Box-Muller
 * pairs of vp_rng_draw(key, iteration, sample, e / 4). */
VP_HD void vp_erase_elem(const vp_erase_desc *d, vp_dtype t, vp_rng_key key, uint32_t iteration,
                         int64_t e) {
  const int64_t W = d->shape[3], H = d->shape[2], D = d->shape[1];
  const int64_t r = vp_stencil_div(e, W), x = e - r * W, q = vp_stencil_div(r, H), y = r - q * H;
  const int64_t z = q - vp_stencil_div(q, D) * D;
  if (!d->apply || !vp_erase_inside(d, z, y, x)) {
    vp_stencil_copy_elem(d->in, d->out, vp_stencil_elem_size(t), e);
    return;
  }
  double v = d->value;
  if (d->noise) {
    vp_u32x4 w = vp_rng_draw(key, iteration, d->sample, (uint64_t)e >> 2);
    const int k = (int)(e & 3);
    vp_f32x2 p = k < 2 ? vp_normal2f(w.v[0], w.v[1]) : vp_normal2f(w.v[2], w.v[3]);
    v = d->mean + d->stddev * (double)((k & 1) ? p.y : p.x);
  }
  vp_cvt_store(d->out, t, e, v);
}

vp_status vp_cuda_erase(const vp_erase_desc *descs, int64_t n, vp_dtype t, vp_rng_key key,
                        uint32_t iteration, vp_stream s);

/* ---------------------------------------------------------------- */
/* one_hot                                                           */

#define VP_ONEHOT_MAX_LIST 16

typedef struct vp_onehot_spec {
  int64_t num_classes;
  int32_t n_list; /* 0: value v -> channel v */
  double list[VP_ONEHOT_MAX_LIST];
} vp_onehot_spec;

/* The channel of label value v, or -1 (no channel: all zero). */
VP_HD int64_t vp_onehot_channel(const vp_onehot_spec *sp, double v) {
  if (sp->n_list) {
    for (int k = 0; k < sp->n_list; k++)
      if (v == sp->list[k]) return k;
    return -1;
  }
  if (v >= 0 && v < (double)sp->num_classes && v == floor(v)) return (int64_t)v;
  return -1;
}

/* Spatial voxel v of a sample of nsp voxels: channel k of the output is 1
 * where the label maps to k, else 0. */
VP_HD void vp_onehot_voxel(const vp_onehot_spec *sp, const void *in, vp_dtype tin, void *out,
                           vp_dtype tout, int64_t nsp, int64_t v) {
  const int64_t ch = vp_onehot_channel(sp, vp_cvt_load(in, tin, v));
  for (int64_t k = 0; k < sp->num_classes; k++) {
    const int64_t e = k * nsp + v;
    const int on = k == ch;
    switch (tout) {
      case VP_U8: ((uint8_t *)out)[e] = (uint8_t)on; break;
      case VP_F32: ((float *)out)[e] = on ? 1.0f : 0.0f; break;
      case VP_F16: ((uint16_t *)out)[e] = on ? 0x3c00u : 0; break;
      default: vp_cvt_store(out, tout, e, on ? 1.0 : 0.0); break;
    }
  }
}

/* descs: in, out (device), numel = spatial voxels of the sample. */
vp_status vp_cuda_one_hot(const vp_bl_desc *descs, int64_t n, vp_dtype tin, vp_dtype tout,
                          const vp_onehot_spec *spec, vp_stream s);

#ifdef __cplusplus
}
#endif

#endif

/* The per-voxel program of the pointwise engine (src/ops/pointwise.c), shared
 * by its CPU body and its GPU body (src/cuda/pointwise.cu), and the GPU
 * body's C-callable launcher.
 *
 * A chain of pointwise operators becomes a list of steps per (sample,
 * channel): a handful of kinds (affine with clamps, gamma, Gaussian and
 * Rician noise, identity), each ending by rounding to its operator's output
 * dtype. A step whose parameters come from statistics of its input (z-score,
 * contrast, gamma's range) is "resolved" by vp_pw_resolve once those are
 * known; the CPU and the GPU call the same function. Everything here is
 * plain C on the host and __host__ __device__ under nvcc. */
#ifndef VP_CUDA_POINTWISE_H
#define VP_CUDA_POINTWISE_H

#include <math.h>
#include <stdint.h>

#include "core/convert.h"
#include "core/philox.h"
#include "voxpipe.h"

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Step kinds. */
enum { VP_PWK_IDENTITY, VP_PWK_AFFINE, VP_PWK_GAMMA, VP_PWK_GAUSSIAN, VP_PWK_RICIAN };

/* What a step derives from the statistics of its input (vp_pw_step.from). */
enum {
  VP_PWF_NONE,
  VP_PWF_ZSCORE,   /* affine: sub = mean, mul = 1 / max(std, 1e-8) */
  VP_PWF_CONTRAST, /* affine: sub = add = mean (mul = factor); optionally clamp to [min, max] */
  VP_PWF_GAMMA,    /* gamma: min and range (and the next step's targets when it restores) */
  VP_PWF_RESTORE   /* affine: (x - mean) * (t_std / (std + 1e-8)) + t_mean */
};

/* Statistics flags (vp_pw_step.stats and vp_pw_stage.stats). */
#define VP_PW_STAT_MEAN 1u
#define VP_PW_STAT_MINMAX 2u
#define VP_PW_STAT_STD 4u
#define VP_PW_STAT_CHANNEL 8u /* per channel (axis 0 of a 4-D or 5-D sample), else per sample */
#define VP_PW_STAT_NONZERO 16u /* over the voxels that are not 0 only */

/* No rounding after the step (a step inside an operator). */
#define VP_PW_NO_ROUND (-1)

/* Masked AFFINE steps (normalize_masked): what becomes of the voxels
 * outside the mask. */
enum { VP_PW_MASK_NONE, VP_PW_MASK_KEEP, VP_PW_MASK_ZERO };

/* One step for one (sample, channel). Parameters by kind:
 *   AFFINE:   x = clamp(x, p3, p4); x = (x - p0) * p1 + p2; x = clamp(x, p5, p6)
 *             (keep_zero: an input 0 stays 0 and skips all of it; outside a
 *             mask: x is kept, or 0, and skips all of it)
 *   GAMMA:    u = p0 * x; x = p0 * (pow((u - p1) / p2, p4) * p3 + p1)   (p0 = +-1, invert)
 *             p5 = epsilon (added to the range to make p2)
 *   GAUSSIAN: x + (p0 + p1 * z)
 *   RICIAN:   sqrt((x + p0 + p1 * z1)^2 + (p0 + p1 * z2)^2)
 * f[] are the float copies of p[] that float steps use (vp_pw_sync_f). */
typedef struct vp_pw_step {
  uint8_t kind, from, fp32, keep_zero;
  int8_t out; /* the dtype the result rounds to, or VP_PW_NO_ROUND */
  uint8_t stats;
  uint8_t clamp_stats; /* CONTRAST: clamp to the input's [min, max] (preserve_range) */
  uint8_t mask_mode;   /* AFFINE: VP_PW_MASK_NONE, _KEEP or _ZERO */
  vp_rng_key key;
  uint32_t iteration, sample;
  int32_t mask_dtype;
  uint32_t pad2_;
  /* AFFINE with a mask: element e of the sample is inside when element
   * e - mask_e0 of `mask` is not 0 (mask_e0 = the channel's first element
   * when one mask channel serves all channels, else 0). Statistics count
   * the inside only. */
  const void *mask;
  int64_t mask_e0;
  double p[7];
  double t_mean, t_std; /* RESTORE: the statistics to restore (set by the GAMMA before) */
  float f[7];
  float pad3_;
} vp_pw_step;

/* Statistics of a segment (count, sum, sum of squares in double). */
typedef struct vp_pw_stats {
  double n, sum, sumsq, min, max;
} vp_pw_stats;

VP_HD void vp_pw_stats_init(vp_pw_stats *s) {
  s->n = s->sum = s->sumsq = 0;
  s->min = INFINITY;
  s->max = -INFINITY;
}
VP_HD void vp_pw_stats_add(vp_pw_stats *s, double v, int nonzero) {
  if (nonzero && v == 0) return;
  s->n += 1;
  s->sum += v;
  s->sumsq += v * v;
  s->min = v < s->min ? v : s->min;
  s->max = v > s->max ? v : s->max;
}
VP_HD void vp_pw_stats_merge(vp_pw_stats *s, const vp_pw_stats *o) {
  s->n += o->n;
  s->sum += o->sum;
  s->sumsq += o->sumsq;
  s->min = o->min < s->min ? o->min : s->min;
  s->max = o->max > s->max ? o->max : s->max;
}
/* Mean and standard deviation (ddof 0, as numpy); an empty set gives 0, 0
 * and an empty range gives min = max = 0. */
VP_HD void vp_pw_stats_moments(const vp_pw_stats *s, double *mean, double *sd) {
  double m = s->n > 0 ? s->sum / s->n : 0;
  double var = s->n > 0 ? s->sumsq / s->n - m * m : 0;
  *mean = m;
  *sd = var > 0 ? sqrt(var) : 0;
}

VP_HD void vp_pw_sync_f(vp_pw_step *s) {
  for (int k = 0; k < 7; k++) s->f[k] = (float)s->p[k];
}

/* Whether element e of the sample lies inside the step's mask (always, for
 * a step without one). */
VP_HD int vp_pw_inside(const vp_pw_step *s, int64_t e) {
  return s->mask_mode == VP_PW_MASK_NONE ||
         vp_cvt_load(s->mask, (vp_dtype)s->mask_dtype, e - s->mask_e0) != 0;
}

/* Derives a step's parameters from the statistics of its input; `next` is
 * the following step of the same (sample, channel), which a GAMMA that
 * retains statistics hands its input's mean and std. */
VP_HD void vp_pw_resolve(vp_pw_step *s, const vp_pw_stats *st, vp_pw_step *next) {
  double mean, sd;
  vp_pw_stats_moments(st, &mean, &sd);
  double mn = st->n > 0 ? st->min : 0, mx = st->n > 0 ? st->max : 0;
  switch (s->from) {
    case VP_PWF_ZSCORE:
      s->p[0] = mean;
      s->p[1] = 1.0 / (sd > 1e-8 ? sd : 1e-8);
      break;
    case VP_PWF_CONTRAST:
      s->p[0] = s->p[2] = mean;
      if (s->clamp_stats) {
        s->p[5] = mn;
        s->p[6] = mx;
      }
      break;
    case VP_PWF_GAMMA: {
      /* in the inverted image u = -x: min u = -max x */
      double umin = s->p[0] < 0 ? -mx : mn, umax = s->p[0] < 0 ? -mn : mx;
      s->p[1] = umin;
      s->p[3] = umax - umin;
      s->p[2] = s->p[3] + s->p[5];
      if (next && next->from == VP_PWF_RESTORE) {
        next->t_mean = mean;
        next->t_std = sd;
      }
      break;
    }
    case VP_PWF_RESTORE:
      s->p[0] = mean;
      s->p[1] = s->t_std / (sd + 1e-8);
      s->p[2] = s->t_mean;
      break;
    default: break;
  }
  vp_pw_sync_f(s);
}

/* The standard normal values of elements e0 .. e0 + cnt - 1 (cnt <= 4) of a
 * sample, as gaussian_noise has always drawn them: element e takes word
 * pair (e & 3) < 2 ? (0, 1) : (2, 3) of draw e / 4, x of the pair for even
 * e, y for odd. */
VP_HD void vp_pw_gauss_z(const vp_pw_step *s, int64_t e0, int cnt, float z[4]) {
  if ((e0 & 3) == 0) {
    vp_u32x4 r = vp_rng_draw(s->key, s->iteration, s->sample, (uint64_t)e0 >> 2);
    vp_f32x2 a = vp_normal2f_fast(r.v[0], r.v[1]), b = vp_normal2f_fast(r.v[2], r.v[3]);
    z[0] = a.x;
    z[1] = a.y;
    z[2] = b.x;
    z[3] = b.y;
    return;
  }
  for (int k = 0; k < cnt; k++) {
    uint64_t e = (uint64_t)(e0 + k);
    vp_u32x4 r = vp_rng_draw(s->key, s->iteration, s->sample, e >> 2);
    int hi = (e & 3) >= 2;
    vp_f32x2 a = vp_normal2f_fast(r.v[hi ? 2 : 0], r.v[hi ? 3 : 1]);
    z[k] = (e & 1) ? a.y : a.x;
  }
}

/* Rician noise takes two normals per element: element e uses pair
 * (e & 1) ? (2, 3) : (0, 1) of draw e / 2 (x for the real part, y for the
 * imaginary one). */
VP_HD void vp_pw_rician_z(const vp_pw_step *s, int64_t e0, int cnt, float z1[4], float z2[4]) {
  for (int k = 0; k < cnt; k++) {
    uint64_t e = (uint64_t)(e0 + k);
    vp_u32x4 r = vp_rng_draw(s->key, s->iteration, s->sample, e >> 1);
    vp_f32x2 a = (e & 1) ? vp_normal2f_fast(r.v[2], r.v[3]) : vp_normal2f_fast(r.v[0], r.v[1]);
    z1[k] = a.x;
    z2[k] = a.y;
  }
}

/* Rounds a value to a dtype's set (integers: nearest even, saturated, NaN
 * to 0, and -0 to +0 as an integer store would; float16 and float32: to
 * nearest). */
VP_HD double vp_pw_round_d(double v, int t) {
  switch (t) {
    case VP_U8: return vp_cvt_sat(v, 0, 255.0) + 0.0;
    case VP_I8: return vp_cvt_sat(v, -128.0, 127.0) + 0.0;
    case VP_U16: return vp_cvt_sat(v, 0, 65535.0) + 0.0;
    case VP_I16: return vp_cvt_sat(v, -32768.0, 32767.0) + 0.0;
    case VP_U32: return vp_cvt_sat(v, 0, 4294967295.0) + 0.0;
    case VP_I32: return vp_cvt_sat(v, -2147483648.0, 2147483647.0) + 0.0;
    case VP_I64: return vp_cvt_sat(v, -9223372036854775808.0, 9223372036854775808.0) + 0.0;
    case VP_F16: return vp_cvt_half_to_float(vp_cvt_float_to_half((float)v));
    case VP_F32: return (double)(float)v;
    default: return v;
  }
}
VP_HD float vp_pw_round_f(float v, int t) {
#if defined(__CUDA_ARCH__)
  /* the hardware's round trip, and for a NaN the software's result (a quiet
   * NaN of the same sign) without a branch to it: a branch a value kept
   * the kernels' loops long (ncu: instruction fetch 43 % of their stalls) */
  if (t != VP_F16) return v;
  const float h = __half2float(__float2half_rn(v));
  return v == v ? h : __int_as_float((__float_as_int(v) & (int)0x80000000) | 0x7fc00000);
#else
  return t == VP_F16 ? vp_cvt_half_to_float(vp_cvt_float_to_half(v)) : v;
#endif
}

/* One step on cnt (<= 4) values of elements e0.. of the sample, in float
 * (vp_pw_apply_f, from f[]) or double (vp_pw_apply_d, from p[]): one body,
 * written once, for both. */
#define VP_PW_DEFINE_APPLY(SUF, T, PAR, POW, SQRT, ROUND)                                        \
  /* the affine formula on one value, parameters a[0..6] = PAR[0..6] (the GPU                    \
   * keeps them in registers across a thread's values); affine0 without the                      \
   * clamps, which bounds of -+inf make no-ops (a NaN passes them as it is) */                    \
  VP_HD T vp_pw_affine0_##SUF(T x, const T *a) { return (x - a[0]) * a[1] + a[2]; }               \
  VP_HD T vp_pw_affine1_##SUF(T x, const T *a) {                                                 \
    x = x < a[3] ? a[3] : (x > a[4] ? a[4] : x);                                                 \
    x = vp_pw_affine0_##SUF(x, a);                                                               \
    return x < a[5] ? a[5] : (x > a[6] ? a[6] : x);                                              \
  }                                                                                              \
  VP_HD void vp_pw_affine_##SUF(const vp_pw_step *s, T *v, int64_t e0, int cnt) {                \
    T a[7];                                                                                      \
    for (int q = 0; q < 7; q++) a[q] = (T)s->PAR[q];                                             \
    for (int k = 0; k < 4; k++) {                                                                \
      if (k >= cnt) break;                                                                       \
      if (s->mask_mode && !vp_pw_inside(s, e0 + k)) {                                            \
        if (s->mask_mode == VP_PW_MASK_ZERO) v[k] = 0;                                           \
        continue;                                                                                \
      }                                                                                          \
      if (s->keep_zero && v[k] == 0) continue;                                                   \
      v[k] = vp_pw_affine1_##SUF(v[k], a);                                                       \
    }                                                                                            \
  }                                                                                              \
  VP_HD void vp_pw_round_all_##SUF(const vp_pw_step *s, T *v, int cnt) {                         \
    if (s->out != VP_PW_NO_ROUND)                                                                \
      for (int k = 0; k < 4; k++)                                                                \
        if (k < cnt) v[k] = ROUND(v[k], s->out);                                                 \
  }                                                                                              \
  VP_HD void vp_pw_gaussian_##SUF(const vp_pw_step *s, T *v, int64_t e0, int cnt) {              \
    float z[4];                                                                                  \
    vp_pw_gauss_z(s, e0, cnt, z);                                                                \
    for (int k = 0; k < 4; k++)                                                                  \
      if (k < cnt) v[k] = v[k] + ((T)s->PAR[0] + (T)s->PAR[1] * (T)z[k]);                        \
  }                                                                                              \
  /* identity and affine steps only (NOISE: and gaussian noise): the GPU's                       \
   * kernels for chains without the other kinds, free of their registers */                      \
  VP_HD void vp_pw_apply_lite_##SUF(const vp_pw_step *s, T *v, int64_t e0, int cnt, int noise) { \
    if (s->kind == VP_PWK_AFFINE)                                                                \
      vp_pw_affine_##SUF(s, v, e0, cnt);                                                         \
    else if (noise && s->kind == VP_PWK_GAUSSIAN)                                                \
      vp_pw_gaussian_##SUF(s, v, e0, cnt);                                                       \
    vp_pw_round_all_##SUF(s, v, cnt);                                                            \
  }                                                                                              \
  VP_HD void vp_pw_apply_##SUF(const vp_pw_step *s, T *v, int64_t e0, int cnt) {                 \
    switch (s->kind) {                                                                           \
      case VP_PWK_AFFINE: vp_pw_affine_##SUF(s, v, e0, cnt); break;                              \
      case VP_PWK_GAMMA:                                                                         \
        for (int k = 0; k < 4; k++) {                                                            \
          if (k >= cnt) break;                                                                   \
          T u = (T)s->PAR[0] * v[k];                                                             \
          T w = POW((u - (T)s->PAR[1]) / (T)s->PAR[2], (T)s->PAR[4]);                            \
          v[k] = (T)s->PAR[0] * (w * (T)s->PAR[3] + (T)s->PAR[1]);                               \
        }                                                                                        \
        break;                                                                                   \
      case VP_PWK_GAUSSIAN: vp_pw_gaussian_##SUF(s, v, e0, cnt); break;                          \
      case VP_PWK_RICIAN: {                                                                      \
        float z1[4], z2[4];                                                                      \
        vp_pw_rician_z(s, e0, cnt, z1, z2);                                                      \
        for (int k = 0; k < 4; k++) {                                                            \
          if (k >= cnt) break;                                                                   \
          T re = v[k] + ((T)s->PAR[0] + (T)s->PAR[1] * (T)z1[k]);                                \
          T im = (T)s->PAR[0] + (T)s->PAR[1] * (T)z2[k];                                         \
          v[k] = SQRT(re * re + im * im);                                                        \
        }                                                                                        \
        break;                                                                                   \
      }                                                                                          \
      default: break;                                                                            \
    }                                                                                            \
    vp_pw_round_all_##SUF(s, v, cnt);                                                            \
  }

VP_PW_DEFINE_APPLY(f, float, f, powf, sqrtf, vp_pw_round_f)
VP_PW_DEFINE_APPLY(d, double, p, pow, sqrt, vp_pw_round_d)

/* Steps st[0..n) on values carried in double: float steps compute in float
 * (the carried value is then exactly a float or half). */
VP_HD void vp_pw_program_d(const vp_pw_step *st, int n, double *v, int64_t e0, int cnt) {
  for (int j = 0; j < n; j++) {
    if (st[j].kind == VP_PWK_IDENTITY && st[j].out == VP_PW_NO_ROUND) continue;
    if (st[j].fp32) {
      float w[4] = {(float)v[0], (float)v[1], (float)v[2], (float)v[3]};
      vp_pw_apply_f(&st[j], w, e0, cnt);
      for (int k = 0; k < 4; k++) v[k] = w[k];
    } else {
      vp_pw_apply_d(&st[j], v, e0, cnt);
    }
  }
}

/* Per-sample facts for the bodies. Channel c of sample i holds elements
 * [c * chan_numel, (c + 1) * chan_numel) and runs steps
 * table[steps + c * nsteps ..]. */
#define VP_PW_COPY 1u    /* every step is the identity and the dtypes are equal: copy bytes */
#define VP_PW_ALIGNED 2u /* in/out 16-byte aligned and chan_numel % 4 == 0: vector loads */
/* (bits 8-9 are the GPU body's own: the sample's kernel level) */
typedef struct vp_pw_sample {
  const void *in;
  void *out;
  int64_t chan_numel;
  int64_t steps;
  int32_t channels;
  uint32_t flags;
  int64_t part; /* GPU statistics: the sample's first partial (set by the GPU body) */
} vp_pw_sample;

/* Elements a reduction chunk covers (CPU and GPU alike). */
#define VP_PW_CHUNK 8192

/* The GPU body: n samples, the step table (host, nsteps per channel; its
 * resolved steps are uploaded and the rest resolved on the device), and
 * need[i * nsteps + j] = sample i's step j needs statistics of its input.
 * Launches on `stream` without synchronising. */
vp_status vp_cuda_pointwise(const vp_pw_sample *samples, int64_t n, const vp_pw_step *table,
                            int64_t table_len, int nsteps, const uint8_t *need, vp_dtype in,
                            vp_dtype out, void *stream);

#ifdef __cplusplus
}
#endif
#endif

/* Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
 * 3", SC'11), one header for C and CUDA.
 *
 * voxpipe's random values are pure functions of a counter and a key:
 *   key     = vp_rng_key_make(pipeline seed, op instance)
 *   counter = (element lo, element hi, sample index, iteration)
 * so the numbers do not depend on thread count, block layout, device or
 * batch composition, and the GPU draws what the CPU draws. */
#ifndef VP_CORE_PHILOX_H
#define VP_CORE_PHILOX_H

#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define VP_HD __host__ __device__ __forceinline__
#else
#define VP_HD static inline
#endif

typedef struct vp_u32x4 {
  uint32_t v[4];
} vp_u32x4;

typedef struct vp_rng_key {
  uint32_t k0, k1;
} vp_rng_key;

VP_HD uint32_t vp_mulhilo32(uint32_t a, uint32_t b, uint32_t *hi) {
  uint64_t p = (uint64_t)a * (uint64_t)b;
  *hi = (uint32_t)(p >> 32);
  return (uint32_t)p;
}

VP_HD vp_u32x4 vp_philox4x32_10(vp_u32x4 c, vp_rng_key k) {
  const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
  const uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  uint32_t k0 = k.k0, k1 = k.k1;
  for (int r = 0; r < 10; r++) {
    uint32_t hi0, hi1;
    uint32_t lo0 = vp_mulhilo32(M0, c.v[0], &hi0);
    uint32_t lo1 = vp_mulhilo32(M1, c.v[2], &hi1);
    vp_u32x4 n;
    n.v[0] = hi1 ^ c.v[1] ^ k0;
    n.v[1] = lo1;
    n.v[2] = hi0 ^ c.v[3] ^ k1;
    n.v[3] = lo0;
    c = n;
    k0 += W0;
    k1 += W1;
  }
  return c;
}

/* The stream key of one op instance under one pipeline seed. */
VP_HD vp_rng_key vp_rng_key_make(uint64_t seed, uint32_t op) {
  vp_u32x4 c = {{op, 0x766f7870u /* "voxp" */, 0, 0}};
  vp_rng_key k = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  vp_u32x4 r = vp_philox4x32_10(c, k);
  vp_rng_key out = {r.v[0], r.v[1]};
  return out;
}

/* Four 32-bit words for (iteration, sample, element). */
VP_HD vp_u32x4 vp_rng_draw(vp_rng_key k, uint32_t iteration, uint32_t sample, uint64_t element) {
  vp_u32x4 c = {{(uint32_t)element, (uint32_t)(element >> 32), sample, iteration}};
  return vp_philox4x32_10(c, k);
}

/* Uniform in the open interval (0, 1): the odd multiples of 2^-24, from the
 * top 23 bits. (2m + 1) < 2^24 fits a float's significand, so the product
 * is exact, the same on CPU and GPU (with or without FMA contraction), and
 * never rounds to 0 or 1. (m + 0.5) * 2^-24 with 24-bit m would not be: its
 * top half rounds half-way cases to even, and 0xffffffff gives 1.0f. */
VP_HD float vp_u01f(uint32_t x) {
  return (float)(((x >> 9) << 1) | 1u) * 5.9604644775390625e-08f; /* 2^-24 */
}

/* Uniform in (0, 1) from two words: the odd multiples of 2^-53, from the
 * top 52 bits of hi:lo, exact in double for the same reason. */
VP_HD double vp_u01d(uint32_t hi, uint32_t lo) {
  uint64_t m = ((uint64_t)hi << 20) | (uint64_t)(lo >> 12);
  return (double)((m << 1) | 1u) * 1.1102230246251565e-16; /* 2^-53 */
}

typedef struct vp_f32x2 {
  float x, y;
} vp_f32x2;

/* Two independent standard normal values from two words (Box-Muller).
 * The radius comes from a, the angle from b; a's uniform is never 0, so the
 * logarithm is finite and |value| <= sqrt(2 ln 2^24) < 5.8. The CPU and the
 * GPU agree to a few ulps, not bit for bit (their logf/sinf/cosf differ). */
VP_HD vp_f32x2 vp_normal2f(uint32_t a, uint32_t b) {
  float r = sqrtf(-2.0f * logf(vp_u01f(a)));
  float t = 6.283185307179586f * vp_u01f(b);
  vp_f32x2 z = {r * cosf(t), r * sinf(t)};
  return z;
}

/* vp_normal2f for the pointwise engine's noise steps: on the GPU the
 * angle's sine and cosine come from the hardware's approximation (the
 * angle moved into [-pi, pi], where __sincosf is within 2^-21.4), so the
 * values stay within ~2e-6 of vp_normal2f, which the engine's tests allow
 * (1e-5 of the value range); precise sinf and cosf made the noise kernel
 * bound by Box-Muller's instructions. Elsewhere (the CPU, and GPU draws that must round as the
 * CPU's, e.g. fields that nearest-neighbour labels follow) vp_normal2f. */
VP_HD vp_f32x2 vp_normal2f_fast(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
  /* logf stays precise: near u = 1 the radius is the square root of a
   * tiny logarithm, whose absolute error __logf would blow up (measured
   * 4e-5 off on a chain test) */
  const float r = sqrtf(-2.0f * logf(vp_u01f(a)));
  float t = 6.283185307179586f * vp_u01f(b);
  if (t > 3.14159265f) t -= 6.283185307179586f;
  float sn, cs;
  __sincosf(t, &sn, &cs);
  vp_f32x2 z = {r * cs, r * sn};
  return z;
#else
  return vp_normal2f(a, b);
#endif
}

#endif

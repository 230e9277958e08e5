/* Element conversion between voxpipe's dtypes: one definition for host
 * code and CUDA kernels, so that a cast on the GPU gives the CPU's bytes.
 *
 * Every conversion goes through a double: floats to integers round to
 * nearest (ties to even) and saturate, NaN becomes 0; float16 is IEEE half
 * with round to nearest even (via float, as vp_tensor_astype always did).
 * The same dtype is never converted (callers copy bytes instead), so int64
 * values above 2^53 and NaN payloads survive an identity cast. */
#ifndef VP_CORE_CONVERT_H
#define VP_CORE_CONVERT_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "voxpipe.h"

#if defined(__CUDACC__)
#define VP_HD __host__ __device__ __forceinline__
#else
#define VP_HD static inline
#endif

VP_HD uint32_t vp_cvt_f2u(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
VP_HD float vp_cvt_u2f(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

VP_HD float vp_cvt_half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t man = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else { /* subnormal: normalise */
      exp = 127 - 15 + 1;
      while (!(man & 0x400u)) {
        man <<= 1;
        exp--;
      }
      man &= 0x3ffu;
      bits = sign | (exp << 23) | (man << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  return vp_cvt_u2f(bits);
}

VP_HD uint16_t vp_cvt_float_to_half(float f) {
  uint32_t x = vp_cvt_f2u(f);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) /* inf or nan (keep a quiet nan) */
    return (uint16_t)(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0));
  if (absx >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
    return (uint16_t)(sign | 0x7c00u);
  if (absx < 0x38800000u) { /* below the smallest normal half: subnormal or zero */
    if (absx < 0x33000000u) return (uint16_t)sign; /* < 2^-25 rounds to zero */
    uint32_t e = absx >> 23;
    uint32_t m = (absx & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e; /* places the value in units of 2^-24 */
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return (uint16_t)(sign | q);
  }
  uint32_t r = absx - 0x38000000u; /* rebias 127 -> 15 */
  uint32_t q = r >> 13, rem = r & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) q++;
  return (uint16_t)(sign | q);
}

/* Rounds to nearest even and saturates into [lo, hi]; NaN -> 0. */
VP_HD double vp_cvt_sat(double v, double lo, double hi) {
  if (v != v) return 0.0;
  v = nearbyint(v);
  return v < lo ? lo : (v > hi ? hi : v);
}

/* Element i of a buffer of dtype t, as a double (exact except int64
 * beyond 2^53). */
VP_HD double vp_cvt_load(const void *buf, vp_dtype t, int64_t i) {
  switch (t) {
    case VP_U8: return ((const uint8_t *)buf)[i];
    case VP_I8: return ((const int8_t *)buf)[i];
    case VP_U16: return ((const uint16_t *)buf)[i];
    case VP_I16: return ((const int16_t *)buf)[i];
    case VP_U32: return ((const uint32_t *)buf)[i];
    case VP_I32: return ((const int32_t *)buf)[i];
    case VP_I64: return (double)((const int64_t *)buf)[i];
    case VP_F16: return vp_cvt_half_to_float(((const uint16_t *)buf)[i]);
    case VP_F32: return ((const float *)buf)[i];
    case VP_F64: return ((const double *)buf)[i];
    default: return 0.0;
  }
}

/* Stores v as element i of a buffer of dtype t (rounded, saturated). */
VP_HD void vp_cvt_store(void *buf, vp_dtype t, int64_t i, double v) {
  switch (t) {
    case VP_U8: ((uint8_t *)buf)[i] = (uint8_t)vp_cvt_sat(v, 0, 255.0); break;
    case VP_I8: ((int8_t *)buf)[i] = (int8_t)vp_cvt_sat(v, -128.0, 127.0); break;
    case VP_U16: ((uint16_t *)buf)[i] = (uint16_t)vp_cvt_sat(v, 0, 65535.0); break;
    case VP_I16: ((int16_t *)buf)[i] = (int16_t)vp_cvt_sat(v, -32768.0, 32767.0); break;
    case VP_U32: ((uint32_t *)buf)[i] = (uint32_t)vp_cvt_sat(v, 0, 4294967295.0); break;
    case VP_I32:
      ((int32_t *)buf)[i] = (int32_t)vp_cvt_sat(v, -2147483648.0, 2147483647.0);
      break;
    case VP_I64:
    {
      /* 2^63 itself is a double but not an int64: it saturates to the max */
      double r = vp_cvt_sat(v, -9223372036854775808.0, 9223372036854775808.0);
      ((int64_t *)buf)[i] = r >= 9223372036854775808.0 ? INT64_MAX : (int64_t)r;
      break;
    }
    case VP_F16: ((uint16_t *)buf)[i] = vp_cvt_float_to_half((float)v); break;
    case VP_F32: ((float *)buf)[i] = (float)v; break;
    case VP_F64: ((double *)buf)[i] = v; break;
    default: break;
  }
}

#endif

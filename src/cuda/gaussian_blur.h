/* gaussian_blur's per-voxel arithmetic, shared by the CPU body
 * (src/ops/gaussian_blur.c) and the GPU body (src/cuda/gaussian_blur.cu),
 * and its C-callable GPU launcher.
 *
 * The blur is separable: 1-D passes W then H then D through an
 * intermediate of the accumulation type (float32, or float64 for float64
 * data). Both bodies run the passes in that order with the same tap order
 * and the same roundings (the GPU's are explicit, so nothing is contracted
 * into a fused multiply-add): their bytes agree. A pass of radius 0
 * multiplies by a weight of exactly 1, so the GPU's separate passes skip
 * it (the first pass run reads the input, the last writes the output)
 * without changing a bit. */
#ifndef VP_CUDA_GAUSSIAN_BLUR_H
#define VP_CUDA_GAUSSIAN_BLUR_H

#include <stddef.h>
#include <stdint.h>

#include "core/convert.h"
#include "voxpipe.h"

#ifdef __cplusplus
extern "C" {
#endif

/* sigma <= 32 with truncate <= 4 keeps a half-kernel within 129 taps. */
#define VP_BLUR_MAX_RADIUS 128

/* One sample, shape normalised to (outer, D, H, W). */
typedef struct vp_blur_desc {
  const void *in;
  void *out;
  void *tmp_a, *tmp_b; /* GPU: scratch of numel accumulators each (set by the launcher) */
  int64_t shape[4];
  int64_t numel;
  int32_t radius[3]; /* per axis D, H, W: taps on each side */
  int64_t woff[3];   /* where axis a's half-kernel w[0..radius] starts in the weight table */
  uint32_t apply;    /* 0: p left the sample alone, it is copied */
} vp_blur_desc;

/* Index i of an axis of n voxels under scipy's 'reflect' border (d c b a |
 * a b c d | d c b a), for any i: the extension has period 2n. */
VP_HD int64_t vp_blur_reflect(int64_t i, int64_t n) {
  if (i >= 0 && i < n) return i;
  int64_t m = 2 * n;
  i %= m;
  if (i < 0) i += m;
  return i < n ? i : m - 1 - i;
}

VP_HD float vp_blur_loadf(const void *p, vp_dtype t, int64_t i) {
  if (t == VP_F32) return ((const float *)p)[i];
  if (t == VP_F16) return vp_cvt_half_to_float(((const uint16_t *)p)[i]);
  return (float)vp_cvt_load(p, t, i);
}

/* The GPU would contract a * b + c into one fused multiply-add, which the
 * CPU does not: explicit roundings keep both sums bit-identical. */
#if defined(__CUDA_ARCH__)
#define VP_BLUR_FMUL(a, b) __fmul_rn((a), (b))
#define VP_BLUR_FADD(a, b) __fadd_rn((a), (b))
#define VP_BLUR_DMUL(a, b) __dmul_rn((a), (b))
#define VP_BLUR_DADD(a, b) __dadd_rn((a), (b))
#else
#define VP_BLUR_FMUL(a, b) ((a) * (b))
#define VP_BLUR_FADD(a, b) ((a) + (b))
#define VP_BLUR_DMUL(a, b) ((a) * (b))
#define VP_BLUR_DADD(a, b) ((a) + (b))
#endif

/* The blurred value at position pos of the line base + k * stride (k < n)
 * of src (dtype t), with the half-kernel w[0..r]: the centre tap, then the
 * pairs at distance 1, 2, ... r (symmetric taps summed first). */
VP_HD float vp_blur_taps_f(const void *src, vp_dtype t, int64_t base, int64_t stride, int64_t n,
                           int64_t pos, const double *w, int r) {
  float acc = VP_BLUR_FMUL((float)w[0], vp_blur_loadf(src, t, base + pos * stride));
  for (int k = 1; k <= r; k++) {
    float a = vp_blur_loadf(src, t, base + vp_blur_reflect(pos - k, n) * stride);
    float b = vp_blur_loadf(src, t, base + vp_blur_reflect(pos + k, n) * stride);
    acc = VP_BLUR_FADD(acc, VP_BLUR_FMUL((float)w[k], VP_BLUR_FADD(a, b)));
  }
  return acc;
}

/* The same in float64 (float64 data). */
VP_HD double vp_blur_taps_d(const void *src, vp_dtype t, int64_t base, int64_t stride, int64_t n,
                            int64_t pos, const double *w, int r) {
  double acc = VP_BLUR_DMUL(w[0], vp_cvt_load(src, t, base + pos * stride));
  for (int k = 1; k <= r; k++) {
    double a = vp_cvt_load(src, t, base + vp_blur_reflect(pos - k, n) * stride);
    double b = vp_cvt_load(src, t, base + vp_blur_reflect(pos + k, n) * stride);
    acc = VP_BLUR_DADD(acc, VP_BLUR_DMUL(w[k], VP_BLUR_DADD(a, b)));
  }
  return acc;
}

/* The taps of vp_blur_taps_f, in the same order, over a line gathered
 * with its reflected halo (the GPU's shared-memory tiles): c points at the
 * centre, neighbours s apart; wf[k] = (float)w[k]. */
VP_HD float vp_blur_window_f(const float *c, int s, const float *wf, int r) {
  float acc = VP_BLUR_FMUL(wf[0], c[0]);
  for (int k = 1; k <= r; k++)
    acc = VP_BLUR_FADD(acc, VP_BLUR_FMUL(wf[k], VP_BLUR_FADD(c[-k * s], c[k * s])));
  return acc;
}

/* The same as vp_blur_taps_d. */
VP_HD double vp_blur_window_d(const double *c, int s, const double *w, int r) {
  double acc = VP_BLUR_DMUL(w[0], c[0]);
  for (int k = 1; k <= r; k++)
    acc = VP_BLUR_DADD(acc, VP_BLUR_DMUL(w[k], VP_BLUR_DADD(c[-k * s], c[k * s])));
  return acc;
}

/* Stores a float result as element e of out (dtype t): float16 rounds
 * from the float, integers round to nearest even and saturate. */
VP_HD void vp_blur_storef(void *out, vp_dtype t, int64_t e, float v) {
  if (t == VP_F32)
    ((float *)out)[e] = v;
  else if (t == VP_F16)
    ((uint16_t *)out)[e] = vp_cvt_float_to_half(v);
  else
    vp_cvt_store(out, t, e, (double)v);
}

/* a / b for a >= 0, b > 0: 32-bit division when both fit (several times
 * cheaper than the 64-bit routine on the GPU). */
VP_HD int64_t vp_stencil_div(int64_t a, int64_t b) {
  if ((((uint64_t)a | (uint64_t)b) >> 32) == 0) return (int64_t)((uint32_t)a / (uint32_t)b);
  return a / b;
}

/* Bytes per element of t (vp_dtype_size, usable in kernels). */
VP_HD size_t vp_stencil_elem_size(vp_dtype t) {
  switch (t) {
    case VP_U8:
    case VP_I8: return 1;
    case VP_U16:
    case VP_I16:
    case VP_F16: return 2;
    case VP_U32:
    case VP_I32:
    case VP_F32: return 4;
    default: return 8;
  }
}

/* Element e of a sample p left alone: its bytes. */
VP_HD void vp_stencil_copy_elem(const void *in, void *out, size_t es, int64_t e) {
  switch (es) {
    case 1: ((uint8_t *)out)[e] = ((const uint8_t *)in)[e]; break;
    case 2: ((uint16_t *)out)[e] = ((const uint16_t *)in)[e]; break;
    case 4: ((uint32_t *)out)[e] = ((const uint32_t *)in)[e]; break;
    default: ((uint64_t *)out)[e] = ((const uint64_t *)in)[e]; break;
  }
}

/* An opaque cudaStream_t, as in core/cuda_rt.h. */
typedef void *vp_stream;

/* Blurs n samples on stream s: descs is a host table (in/out device
 * pointers, tmp_* ignored), weights the host table of half-kernels that
 * woff indexes (n_weights doubles). dtype is the samples' (input = output)
 * dtype. Scratch comes from the stream-ordered pool and goes back in stream
 * order. */
vp_status vp_cuda_gaussian_blur(const vp_blur_desc *descs, int64_t n, const double *weights,
                                int64_t n_weights, vp_dtype dtype, vp_stream s);

/* Stream-ordered device scratch for the ops of this family (freed in stream
 * order after the kernels queued before the free). */
vp_status vp_cuda_scratch_alloc(size_t bytes, vp_stream s, void **out);
void vp_cuda_scratch_free(void *p, vp_stream s);

#ifdef __cplusplus
}
#endif
#endif

/* Cubic interpolation on the CPU: each sample's input becomes a float32
 * volume of B-spline coefficients (padded and prefiltered as
 * src/ops/bspline.h lays out), which the engine's coefficient stage then
 * interpolates. One sample at a time, so the scratch is one sample's. */
#include <stdlib.h>
#include <string.h>

#include "core/convert.h"
#include "core/status.h"
#include "ops/bspline.h"
#include "ops/resample.h"
#include "ops/resample_kernel.h"

void vp_resample_cubic_desc(const vp_resample_desc *s, vp_border border, const float *coef,
                            vp_resample_desc *out) {
  int64_t pad[3], cs[3];
  vp_bspline_layout(s->in_shape, (int)border, pad, cs);
  *out = *s;
  out->in = coef;
  for (int a = 0; a < 3; a++) {
    out->in_shape[a] = cs[a];
    out->M[a * 4 + 3] += (double)pad[a];
  }
}

typedef struct cubic_ctx {
  const vp_resample_desc *s;
  vp_dtype in;
  vp_border border;
  float *coef;
  int64_t pad[3], cs[3];
  int axis; /* the prefilter pass in hand */
} cubic_ctx;

/* Coefficient rows (one (channel, d, h) each) loaded through the border. */
static vp_status load_rows(void *ctx, int64_t r) {
  const cubic_ctx *k = ctx;
  const vp_resample_desc *s = k->s;
  const int64_t ch = r / (k->cs[0] * k->cs[1]), dh = r % (k->cs[0] * k->cs[1]);
  const int64_t id = vp_rs_map(dh / k->cs[1] - k->pad[0], s->in_shape[0], (int)k->border);
  const int64_t ih = vp_rs_map(dh % k->cs[1] - k->pad[1], s->in_shape[1], (int)k->border);
  float *dst = k->coef + r * k->cs[2];
  const int64_t plane = s->in_shape[0] * s->in_shape[1] * s->in_shape[2];
  for (int64_t w = 0; w < k->cs[2]; w++) {
    const int64_t iw = vp_rs_map(w - k->pad[2], s->in_shape[2], (int)k->border);
    dst[w] = (id < 0 || ih < 0 || iw < 0)
                 ? (float)s->fill
                 : (float)vp_cvt_load(
                       s->in, k->in, ch * plane + (id * s->in_shape[1] + ih) * s->in_shape[2] + iw);
  }
  return VP_OK;
}

/* Line l of the pass along k->axis. */
static vp_status filter_line(void *ctx, int64_t l) {
  const cubic_ctx *k = ctx;
  const int64_t D = k->cs[0], H = k->cs[1], W = k->cs[2];
  const int half = k->border != VP_BORDER_CONSTANT;
  if (k->axis == 2) {
    vp_bspline_line(k->coef + l * W, W, 1, half);
  } else if (k->axis == 1) {
    const int64_t cd = l / W, w = l % W; /* (channel, d) then w */
    vp_bspline_line(k->coef + cd * H * W + w, H, W, half);
  } else {
    const int64_t ch = l / (H * W), hw = l % (H * W);
    vp_bspline_line(k->coef + ch * D * H * W + hw, D, H * W, half);
  }
  return VP_OK;
}

vp_status vp_resample_cubic_cpu(const vp_resample_desc *d, int64_t n, vp_dtype in, vp_dtype out,
                                vp_border border, vp_threadpool *pool) {
  for (int64_t i = 0; i < n; i++) {
    const vp_resample_desc *s = &d[i];
    int64_t out_n = s->channels * s->out_shape[0] * s->out_shape[1] * s->out_shape[2];
    if (out_n == 0) continue;
    cubic_ctx k = {.s = s, .in = in, .border = border};
    vp_bspline_layout(s->in_shape, (int)border, k.pad, k.cs);
    int64_t cn = s->channels;
    for (int a = 0; a < 3; a++) {
      if (k.cs[a] != 0 && cn > INT64_MAX / 8 / k.cs[a])
        return vp_fail(VP_ERR_INVALID_ARG, "resample: sample %lld is too large for cubic",
                       (long long)i);
      cn *= k.cs[a];
    }
    if (cn == 0) {
      /* an empty input under a constant border: every output is fill,
       * which linear computes as well */
      VP_TRY(vp_resample_cpu(s, 1, in, out, VP_INTERP_LINEAR, border, pool));
      continue;
    }
    k.coef = malloc((size_t)cn * sizeof *k.coef);
    if (!k.coef)
      return vp_fail(VP_ERR_NOMEM, "resample: out of memory for %lld cubic coefficients",
                     (long long)cn);
    vp_status st = vp_parallel_for(pool, s->channels * k.cs[0] * k.cs[1], load_rows, &k);
    for (int a = 2; a >= 0 && st == VP_OK; a--) {
      if (k.cs[a] < 2) continue;
      k.axis = a;
      st = vp_parallel_for(pool, cn / k.cs[a], filter_line, &k);
    }
    if (st == VP_OK) {
      vp_resample_desc cd;
      vp_resample_cubic_desc(s, border, k.coef, &cd);
      st = vp_resample_cpu(&cd, 1, VP_F32, out, VP_INTERP_CUBIC_COEF,
                           (vp_border)vp_bspline_coef_border((int)border), pool);
    }
    free(k.coef);
    VP_TRY(st);
  }
  return VP_OK;
}

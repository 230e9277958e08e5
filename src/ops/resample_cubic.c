/* Cubic interpolation on the CPU, one sample at a time (so the scratch is
 * one sample's). Axis-aligned maps take bspline.h's separable plan: up to
 * three passes, each filtering and interpolating every line along its
 * axis. Other maps turn the input into a float32 volume of B-spline
 * coefficients (padded and prefiltered as bspline.h lays out), which the
 * engine's coefficient stage then interpolates. */
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

/* ---------------------------------------------------------------- */
/* The separable path                                                */

/* Rows per unit of a W pass, and lines per unit of an H or D pass: 16
 * neighbouring lines along W, so each load and store of a coefficient
 * row touches one 64-byte cache line. */
#define SEP_ROWS 16
#define SEP_TILE 16

typedef struct sep_ctx {
  const vp_bspline_pass *p;
  const void *src;
  void *dst;
  vp_dtype st, dt;
  int border, coef_border, half;
  double fill;
  int64_t tiles; /* units per outer index (H and D passes) */
} sep_ctx;

static vp_status sep_unit(void *ctx, int64_t u) {
  const sep_ctx *k = ctx;
  const vp_bspline_pass *p = k->p;
  const int64_t nc = p->ncoef, no = p->n_out, inner = p->inner;
  const int rows = inner == 1;
  float *buf = malloc((size_t)nc * (rows ? 1 : SEP_TILE) * sizeof *buf);
  vp_bspline_tap *tab = malloc((size_t)no * sizeof *tab);
  if (!buf || !tab) {
    free(buf);
    free(tab);
    return vp_fail(VP_ERR_NOMEM, "resample: out of memory for a cubic line of %lld voxels",
                   (long long)nc);
  }
  for (int64_t o = 0; o < no; o++) vp_bspline_tap_at(p, o, k->coef_border, &tab[o]);
  if (rows) {
    const int64_t r0 = u * SEP_ROWS, r1 = r0 + SEP_ROWS < p->outer ? r0 + SEP_ROWS : p->outer;
    for (int64_t r = r0; r < r1; r++) {
      for (int64_t c = 0; c < nc; c++)
        buf[c] = vp_bspline_load(k->src, k->st, r * p->n_in, 1, p, c, k->border, k->fill);
      vp_bspline_line(buf, nc, 1, k->half);
      for (int64_t o = 0; o < no; o++)
        vp_bspline_store(k->dst, k->dt, r * no + o, vp_bspline_tap_sum(buf, 1, &tab[o]));
    }
  } else {
    const int64_t o = u / k->tiles, i0 = (u - o * k->tiles) * SEP_TILE;
    const int64_t ni = inner - i0 < SEP_TILE ? inner - i0 : SEP_TILE;
    const int64_t base = o * p->n_in * inner + i0, obase = o * no * inner + i0;
    for (int64_t c = 0; c < nc; c++)
      for (int64_t t = 0; t < ni; t++)
        buf[c * SEP_TILE + t] =
            vp_bspline_load(k->src, k->st, base + t, inner, p, c, k->border, k->fill);
    for (int64_t t = 0; t < ni; t++) vp_bspline_line(buf + t, nc, SEP_TILE, k->half);
    for (int64_t q = 0; q < no; q++)
      for (int64_t t = 0; t < ni; t++)
        vp_bspline_store(k->dst, k->dt, obase + q * inner + t,
                         vp_bspline_tap_sum(buf + t, SEP_TILE, &tab[q]));
  }
  free(buf);
  free(tab);
  return VP_OK;
}

/* The plan's passes, ping-ponging between two float32 scratch volumes. */
static vp_status separable_cpu(const vp_resample_desc *s, const vp_bspline_plan *pl, vp_dtype in,
                               vp_dtype out, vp_border border, vp_threadpool *pool) {
  float *scr[2] = {NULL, NULL};
  for (int q = 0; q + 1 < pl->npass; q++) {
    scr[q % 2] = malloc((size_t)pl->scratch[q] * sizeof(float));
    if (!scr[q % 2]) {
      free(scr[0]);
      return vp_fail(VP_ERR_NOMEM, "resample: out of memory for %lld cubic intermediates",
                     (long long)pl->scratch[q]);
    }
  }
  vp_status st = VP_OK;
  for (int q = 0; q < pl->npass && st == VP_OK; q++) {
    const vp_bspline_pass *p = &pl->pass[q];
    const int last = q + 1 == pl->npass;
    sep_ctx k = {.p = p,
                 .src = q == 0 ? s->in : (const void *)scr[(q - 1) % 2],
                 .dst = last ? s->out : (void *)scr[q % 2],
                 .st = q == 0 ? in : VP_F32,
                 .dt = last ? out : VP_F32,
                 .border = (int)border,
                 .coef_border = vp_bspline_coef_border((int)border),
                 .half = border != VP_BORDER_CONSTANT,
                 .fill = s->fill,
                 .tiles = (p->inner + SEP_TILE - 1) / SEP_TILE};
    const int64_t units = p->inner == 1 ? (p->outer + SEP_ROWS - 1) / SEP_ROWS : p->outer * k.tiles;
    st = vp_parallel_for(pool, units, sep_unit, &k);
  }
  free(scr[0]);
  free(scr[1]);
  return st;
}

vp_status vp_resample_cubic_cpu(const vp_resample_desc *d, int64_t n, vp_dtype in, vp_dtype out,
                                vp_border border, vp_threadpool *pool) {
  for (int64_t i = 0; i < n; i++) {
    const vp_resample_desc *s = &d[i];
    int64_t out_n = s->channels * s->out_shape[0] * s->out_shape[1] * s->out_shape[2];
    if (out_n == 0) continue;
    vp_bspline_plan plan;
    if (vp_bspline_plan_make(s, (int)border, &plan)) {
      VP_TRY(separable_cpu(s, &plan, in, out, border, pool));
      continue;
    }
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

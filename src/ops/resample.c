/* The resampling engine's CPU body (the reference of the GPU body) and the
 * checks and metadata helpers both share. Work is split into pieces of
 * output rows (a row = the W axis of one (d, h)) over all samples; a row's
 * coordinates are computed once and serve every channel. */
#include "ops/resample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "core/tensor.h"
#include "ops/op.h"
#include "ops/resample_kernel.h"
#ifdef VP_HAVE_CUDA
#include "cuda/kernels.h"
#endif

int vp_resample_label_dtype(vp_dtype t) {
  return t == VP_U8 || t == VP_I8 || t == VP_U16 || t == VP_I16 || t == VP_U32 || t == VP_I32;
}

int vp_resample_spatial(const vp_tensor *t) {
  return t->spatial_ndim < t->ndim ? t->spatial_ndim : t->ndim;
}

void vp_resample_out_spec(const vp_tensor *t, int sn, const int64_t *sp, int dtype_choice,
                          vp_out_spec *out) {
  out->dtype = dtype_choice <= 0 ? t->dtype : (vp_dtype)(dtype_choice - 1);
  out->ndim = t->ndim;
  memcpy(out->shape, t->shape, sizeof out->shape);
  for (int a = 0; sp && a < sn; a++) out->shape[t->ndim - sn + a] = sp[a];
}

void vp_resample_resize_matrix(const vp_tensor *t, int sn, const int64_t out_sp[3], double M[12],
                               double ratio[3]) {
  memset(M, 0, 12 * sizeof *M);
  for (int a = 0; a < sn; a++) {
    int64_t n = t->shape[t->ndim - sn + a];
    double r = out_sp[a] > 0 ? (double)n / (double)out_sp[a] : 1.0;
    int e = 3 - sn + a;
    M[e * 4 + e] = r;
    M[e * 4 + 3] = 0.5 * r - 0.5;
    if (ratio) ratio[a] = r;
  }
}

void vp_resample_shift_matrix(int sn, const int64_t start[3], double M[12]) {
  memset(M, 0, 12 * sizeof *M);
  for (int a = 0; a < sn; a++) {
    int e = 3 - sn + a;
    M[e * 4 + e] = 1.0;
    M[e * 4 + 3] = (double)start[a];
  }
}

vp_status vp_resample_check(const vp_resample_desc *d, int64_t n, vp_dtype in, vp_dtype out,
                            vp_interp interp, vp_border border, const char *who) {
  if (n < 0 || (n > 0 && !d))
    return vp_fail(VP_ERR_INVALID_ARG, "%s: %lld descriptors at %p", who, (long long)n,
                   (const void *)d);
  if ((int)in < 0 || in >= VP_DTYPE_COUNT || (int)out < 0 || out >= VP_DTYPE_COUNT)
    return vp_fail(VP_ERR_INVALID_ARG, "%s: invalid dtype (%d -> %d)", who, (int)in, (int)out);
  if (interp != VP_INTERP_NEAREST && interp != VP_INTERP_LINEAR && interp != VP_INTERP_LABEL &&
      interp != VP_INTERP_CUBIC && interp != VP_INTERP_CUBIC_COEF)
    return vp_fail(VP_ERR_INVALID_ARG, "%s: unknown interpolation %d", who, (int)interp);
  if (interp == VP_INTERP_CUBIC_COEF && (in != VP_F32 || border == VP_BORDER_CONSTANT))
    return vp_fail(VP_ERR_INVALID_ARG,
                   "%s: cubic coefficients are float32 under an edge or reflect rule", who);
  if (border != VP_BORDER_CONSTANT && border != VP_BORDER_EDGE && border != VP_BORDER_REFLECT)
    return vp_fail(VP_ERR_INVALID_ARG, "%s: unknown border %d", who, (int)border);
  if (interp == VP_INTERP_LABEL && !vp_resample_label_dtype(in))
    return vp_fail(VP_ERR_UNSUPPORTED,
                   "%s: interp \"label\" needs an integer label map (uint8, int8, uint16, int16, "
                   "uint32 or int32), not %s",
                   who, vp_dtype_name(in));
  for (int64_t i = 0; i < n; i++) {
    const vp_resample_desc *s = &d[i];
    if (s->channels < 0)
      return vp_fail(VP_ERR_INVALID_ARG, "%s: sample %lld has %lld channels", who, (long long)i,
                     (long long)s->channels);
    int64_t in_n = 1, out_n = 1;
    for (int a = 0; a < 3; a++) {
      if (s->in_shape[a] < 0 || s->out_shape[a] < 0)
        return vp_fail(VP_ERR_INVALID_ARG, "%s: sample %lld has a negative extent on axis %d", who,
                       (long long)i, a);
      in_n *= s->in_shape[a];
      out_n *= s->out_shape[a];
    }
    if (s->channels == 0 || out_n == 0) continue;
    /* label mode outputs fill as a label: it must be one (exact in double) */
    if (interp == VP_INTERP_LABEL && border == VP_BORDER_CONSTANT &&
        !(fabs(s->fill) <= 9007199254740992.0 && s->fill == floor(s->fill)))
      return vp_fail(VP_ERR_INVALID_ARG,
                     "%s: sample %lld: fill %g is not an integer label, as interp \"label\" "
                     "needs",
                     who, (long long)i, s->fill);
    if (!s->out)
      return vp_fail(VP_ERR_INVALID_ARG, "%s: sample %lld: out is NULL", who, (long long)i);
    if (in_n == 0 && border != VP_BORDER_CONSTANT)
      return vp_fail(VP_ERR_INVALID_ARG,
                     "%s: sample %lld: the input is empty, so only a constant border can fill "
                     "its output",
                     who, (long long)i);
    if (in_n > 0 && !s->in)
      return vp_fail(VP_ERR_INVALID_ARG, "%s: sample %lld: in is NULL", who, (long long)i);
    for (int k = 0; k < 12; k++)
      if (!isfinite(s->M[k]))
        return vp_fail(VP_ERR_INVALID_ARG, "%s: sample %lld: matrix element %d is not finite", who,
                       (long long)i, k);
    for (int a = 0; a < 3; a++) {
      if (s->aa[a] == 0) continue;
      if (interp != VP_INTERP_LINEAR)
        return vp_fail(VP_ERR_INVALID_ARG, "%s: antialiasing needs linear interpolation", who);
      if (!(s->aa[a] >= 1 && s->aa[a] <= 256))
        return vp_fail(VP_ERR_INVALID_ARG,
                       "%s: sample %lld: antialiasing width %g on axis %d is outside [1, 256]", who,
                       (long long)i, s->aa[a], a);
    }
    if (s->disp.nodes) {
      for (int a = 0; a < 3; a++)
        if (s->disp.grid[a] < 1 || s->disp.grid[a] > (1 << 20) || !(s->disp.spacing[a] > 0) ||
            !isfinite(s->disp.spacing[a]))
          return vp_fail(VP_ERR_INVALID_ARG,
                         "%s: sample %lld: displacement grid axis %d has %lld points %g apart "
                         "(need >= 1 point, a positive spacing)",
                         who, (long long)i, a, (long long)s->disp.grid[a], s->disp.spacing[a]);
    }
  }
  return VP_OK;
}

/* ---------------------------------------------------------------- */
/* Rows                                                              */

typedef struct rs_ctx {
  const vp_resample_desc *d;
  const int64_t *first; /* first piece of each sample, n + 1 entries */
  int64_t n, grain;
  vp_dtype in, out;
  vp_interp interp;
  vp_border border;
  const vp_resample_desc *cur; /* the sample in hand (cubic, antialiasing) */
  int cur_aa;                  /* it antialiases */
} rs_ctx;

/* One channel's row of values, with the dtype a constant in each case so
 * that the inlined load folds to one access. */
static void gather_row(const rs_ctx *c, const void *src, const int64_t *off, const vp_rs_lin *lin,
                       int64_t W, double fill, double *val) {
  if (c->interp == VP_INTERP_CUBIC_COEF || c->cur_aa) {
    /* off carries the row's coordinates here, d then h then w */
    const double *x = (const double *)off;
    const vp_resample_desc *s = c->cur;
    for (int64_t w = 0; w < W; w++) {
      const double pt[3] = {x[w], x[W + w], x[2 * W + w]};
      val[w] = c->cur_aa ? vp_rs_aa_value(src, c->in, s->in_shape, pt, s->aa, s->aa_area)
                         : vp_rs_cubic_value((const float *)src, s->in_shape, pt, c->border);
    }
    return;
  }
#define RS_CASE(T)                                                                        \
  case T:                                                                                 \
    if (c->interp == VP_INTERP_NEAREST)                                                   \
      for (int64_t w = 0; w < W; w++) val[w] = vp_rs_nearest_value(src, T, off[w], fill); \
    else if (c->interp == VP_INTERP_LABEL)                                                \
      for (int64_t w = 0; w < W; w++) val[w] = vp_rs_label_value(src, T, &lin[w], fill);  \
    else                                                                                  \
      for (int64_t w = 0; w < W; w++) val[w] = vp_rs_linear_value(src, T, &lin[w], fill); \
    break;
  switch (c->in) {
    RS_CASE(VP_U8)
    RS_CASE(VP_I8)
    RS_CASE(VP_U16)
    RS_CASE(VP_I16)
    RS_CASE(VP_U32)
    RS_CASE(VP_I32)
    RS_CASE(VP_I64)
    RS_CASE(VP_F16)
    RS_CASE(VP_F32)
    RS_CASE(VP_F64)
    default: break;
  }
#undef RS_CASE
}

static void store_row(void *dst, vp_dtype t, int64_t at, const double *val, int64_t W) {
  switch (t) {
    case VP_F32: {
      float *o = (float *)dst + at;
      for (int64_t w = 0; w < W; w++) o[w] = (float)val[w];
      break;
    }
    case VP_F64: memcpy((double *)dst + at, val, (size_t)W * sizeof *val); break;
#define ST_CASE(T)                                                        \
  case T:                                                                 \
    for (int64_t w = 0; w < W; w++) vp_cvt_store(dst, T, at + w, val[w]); \
    break;
      ST_CASE(VP_U8)
      ST_CASE(VP_I8)
      ST_CASE(VP_U16)
      ST_CASE(VP_I16)
      ST_CASE(VP_U32)
      ST_CASE(VP_I32)
      ST_CASE(VP_I64)
      ST_CASE(VP_F16)
#undef ST_CASE
    default: break;
  }
}

/* Linear float32 -> float32 rows, the common case of warps and resizes,
 * without the general path's corner table: a voxel whose eight corners lie
 * inside the input reads them straight from its first corner's offset;
 * the others take the general setup. The arithmetic is
 * vp_rs_linear_value's (float lerps, W then H then D, a zero weight taking
 * the first corner alone), so the bits are the general path's. */
typedef struct f32_row {
  int64_t *base;  /* first corner's offset; -1: a border voxel */
  float *t;       /* 3 per voxel */
  vp_rs_lin *lin; /* border voxels' general setup */
} f32_row;

static void f32_setup(const vp_resample_desc *s, const double *xd, const double *xh,
                      const double *xw, int64_t W, vp_border border, f32_row *row) {
  const int64_t n0 = s->in_shape[0], n1 = s->in_shape[1], n2 = s->in_shape[2];
  for (int64_t w = 0; w < W; w++) {
    const double x[3] = {vp_rs_clamp_coord(xd[w]), vp_rs_clamp_coord(xh[w]),
                         vp_rs_clamp_coord(xw[w])};
    const double f0 = floor(x[0]), f1 = floor(x[1]), f2 = floor(x[2]);
    const int64_t i0 = (int64_t)f0, i1 = (int64_t)f1, i2 = (int64_t)f2;
    const double t0 = VP_RS_DADD(x[0], -f0), t1 = VP_RS_DADD(x[1], -f1), t2 = VP_RS_DADD(x[2], -f2);
    /* inside: every corner the lerps read (the second one only when its
     * weight is not zero) */
    const int in0 = i0 >= 0 && i0 + (t0 != 0.0) < n0, in1 = i1 >= 0 && i1 + (t1 != 0.0) < n1,
              in2 = i2 >= 0 && i2 + (t2 != 0.0) < n2;
    if (in0 && in1 && in2) {
      row->base[w] = (i0 * n1 + i1) * n2 + i2;
      row->t[3 * w] = (float)t0;
      row->t[3 * w + 1] = (float)t1;
      row->t[3 * w + 2] = (float)t2;
    } else {
      row->base[w] = -1;
      const double pt[3] = {xd[w], xh[w], xw[w]};
      vp_rs_linear_setup(s->in_shape, pt, border, &row->lin[w]);
    }
  }
}

static void f32_gather(const vp_resample_desc *s, const float *src, const f32_row *row, int64_t W,
                       float *dst) {
  const int64_t sh = s->in_shape[2], sd = s->in_shape[1] * s->in_shape[2];
  for (int64_t w = 0; w < W; w++) {
    const int64_t b = row->base[w];
    if (b < 0) {
      dst[w] = (float)vp_rs_linear_value(src, VP_F32, &row->lin[w], s->fill);
      continue;
    }
    const float td = row->t[3 * w], th = row->t[3 * w + 1], tw = row->t[3 * w + 2];
    /* a zero weight never reads its (possibly outside) second corner */
    dst[w] = vp_rs_trilinear_f32(src, b, td != 0.0f ? sd : 0, th != 0.0f ? sh : 0, tw != 0.0f, td,
                                 th, tw);
  }
}

static vp_status rs_piece(void *ctx, int64_t p) {
  const rs_ctx *c = ctx;
  int64_t lo = 0, hi = c->n - 1; /* the last sample whose first piece <= p */
  while (lo < hi) {
    int64_t mid = lo + (hi - lo + 1) / 2;
    if (c->first[mid] <= p)
      lo = mid;
    else
      hi = mid - 1;
  }
  const vp_resample_desc *s = &c->d[lo];
  const int64_t D = s->out_shape[0], H = s->out_shape[1], W = s->out_shape[2];
  const int64_t rows = D * H;
  const int64_t r0 = (p - c->first[lo]) * c->grain;
  const int64_t r1 = r0 + c->grain < rows ? r0 + c->grain : rows;
  const int64_t in_plane = s->in_shape[0] * s->in_shape[1] * s->in_shape[2];
  const int64_t out_plane = D * H * W;
  const size_t in_es = vp_dtype_size(c->in);
  const int linear = c->interp != VP_INTERP_NEAREST; /* label mode shares its neighbours */
  const int aa = s->aa[0] != 0 || s->aa[1] != 0 || s->aa[2] != 0;

  const int f32 =
      c->interp == VP_INTERP_LINEAR && !aa && c->in == VP_F32 && c->out == VP_F32 && s->in != NULL;
  double *x = malloc((size_t)W * 4 * sizeof *x);
  void *idx = malloc((size_t)W * (linear ? sizeof(vp_rs_lin) : sizeof(int64_t)));
  f32_row frow = {NULL, NULL, (vp_rs_lin *)idx};
  if (f32) {
    frow.base = malloc((size_t)W * sizeof *frow.base);
    frow.t = malloc((size_t)W * 3 * sizeof *frow.t);
  }
  if (!x || !idx || (f32 && (!frow.base || !frow.t))) {
    free(frow.base);
    free(frow.t);
    free(x);
    free(idx);
    return vp_fail(VP_ERR_NOMEM, "resample: out of memory for a row of %lld voxels", (long long)W);
  }
  double *xd = x, *xh = x + W, *xw = x + 2 * W, *val = x + 3 * W;
  for (int64_t r = r0; r < r1; r++) {
    const int64_t d = r / H, h = r % H;
    if (!s->disp.nodes) {
      /* the common case: a line through the input, M2 w apart */
      const double bd = vp_rs_row_base(s->M, 0, (double)d, (double)h);
      const double bh = vp_rs_row_base(s->M, 1, (double)d, (double)h);
      const double bw = vp_rs_row_base(s->M, 2, (double)d, (double)h);
#if defined(__GNUC__)
#pragma GCC ivdep
#endif
      for (int64_t w = 0; w < W; w++) {
        xd[w] = vp_rs_coord(s->M, 0, bd, (double)w);
        xh[w] = vp_rs_coord(s->M, 1, bh, (double)w);
        xw[w] = vp_rs_coord(s->M, 2, bw, (double)w);
      }
    } else {
      for (int64_t w = 0; w < W; w++) {
        double pt[3];
        vp_rs_point(s, d, h, w, pt);
        xd[w] = pt[0];
        xh[w] = pt[1];
        xw[w] = pt[2];
      }
    }
    if (f32) {
      f32_setup(s, xd, xh, xw, W, c->border, &frow);
      if (s->channels == 1) {
        f32_gather(s, (const float *)s->in, &frow, W, (float *)s->out + r * W);
        continue;
      }
      for (int64_t ch = 0; ch < s->channels; ch++)
        f32_gather(s, (const float *)s->in + ch * in_plane, &frow, W,
                   (float *)s->out + ch * out_plane + r * W);
      continue;
    }
    for (int64_t w = 0; w < W && c->interp != VP_INTERP_CUBIC_COEF && !aa; w++) {
      const double pt[3] = {xd[w], xh[w], xw[w]};
      if (linear)
        vp_rs_linear_setup(s->in_shape, pt, c->border, (vp_rs_lin *)idx + w);
      else
        ((int64_t *)idx)[w] = vp_rs_nearest_offset(s->in_shape, pt, c->border);
    }
    rs_ctx rc = *c;
    rc.cur = s;
    rc.cur_aa = aa;
    const int64_t *rowidx = c->interp == VP_INTERP_CUBIC_COEF || aa ? (const int64_t *)x : idx;
    for (int64_t ch = 0; ch < s->channels; ch++) {
      const void *src = s->in ? (const char *)s->in + (size_t)(ch * in_plane) * in_es : NULL;
      gather_row(&rc, src, rowidx, (const vp_rs_lin *)idx, W, s->fill, val);
      store_row(s->out, c->out, ch * out_plane + r * W, val, W);
    }
  }
  free(frow.base);
  free(frow.t);
  free(x);
  free(idx);
  return VP_OK;
}

vp_status vp_resample_cpu(const vp_resample_desc *d, int64_t n, vp_dtype in, vp_dtype out,
                          vp_interp interp, vp_border border, vp_threadpool *pool) {
  VP_TRY(vp_resample_check(d, n, in, out, interp, border, "resample"));
  if (n == 0) return VP_OK;
  if (interp == VP_INTERP_CUBIC) return vp_resample_cubic_cpu(d, n, in, out, border, pool);
  int64_t widest = 1;
  for (int64_t i = 0; i < n; i++)
    if (d[i].out_shape[2] > widest) widest = d[i].out_shape[2];
  /* pieces of about 16k voxels per channel: enough to amortise a claim,
   * small enough to spread one large sample over the pool */
  int64_t grain = 1 + (1 << 14) / widest;
  int64_t *first = malloc((size_t)(n + 1) * sizeof *first);
  if (!first) return vp_fail(VP_ERR_NOMEM, "resample: out of memory");
  first[0] = 0;
  for (int64_t i = 0; i < n; i++) {
    const vp_resample_desc *s = &d[i];
    int64_t rows = s->out_shape[0] * s->out_shape[1];
    int64_t empty = s->channels == 0 || s->out_shape[2] == 0;
    first[i + 1] = first[i] + (empty ? 0 : (rows + grain - 1) / grain);
  }
  rs_ctx c = {d, first, n, grain, in, out, interp, border, NULL, 0};
  vp_status s = vp_parallel_for(pool, first[n], rs_piece, &c);
  free(first);
  return s;
}

/* ---------------------------------------------------------------- */
/* Metadata                                                          */

void vp_resample_place(const vp_tensor *in, vp_tensor *out, int sn, const double M[12]) {
  double A[16];
  vp_resample_affine(in->affine, sn, M, A);
  memcpy(out->affine, A, sizeof A);
  int osn = vp_resample_spatial(out);
  for (int a = 0; a < sn && a < osn; a++) {
    int col = sn - 1 - a;
    double n2 = 0;
    for (int r = 0; r < 3; r++) n2 += A[r * 4 + col] * A[r * 4 + col];
    if (sqrt(n2) > 0 && sqrt(n2) <= 1e30) out->spacing[osn - sn + a] = sqrt(n2);
  }
}

void vp_resample_affine(const double in_affine[16], int sn, const double M[12],
                        double out_affine[16]) {
  /* G: output NIfTI index -> input NIfTI index. NIfTI column c < sn is
   * array axis 2 - c of the engine's (d, h, w); others stay put. */
  double G[16] = {0};
  for (int r = 0; r < 4; r++) G[r * 4 + r] = 1.0;
  for (int r = 0; r < sn; r++) {
    int ar = 2 - r;
    for (int c = 0; c < sn; c++) G[r * 4 + c] = M[ar * 4 + (2 - c)];
    G[r * 4 + 3] = M[ar * 4 + 3];
  }
  double A[16];
  for (int r = 0; r < 4; r++)
    for (int c = 0; c < 4; c++) {
      double acc = 0;
      for (int k = 0; k < 4; k++) acc += in_affine[r * 4 + k] * G[k * 4 + c];
      A[r * 4 + c] = acc;
    }
  memcpy(out_affine, A, sizeof A);
}

/* ---------------------------------------------------------------- */
/* Operators' common body                                            */

vp_status vp_resample_geom_infer(const struct vp_op_call *c, int64_t i, vp_resample_geometry_fn g,
                                 int dtype_choice, struct vp_out_spec *out) {
  int sn;
  double M[12];
  int64_t sp[3];
  VP_TRY(g(c, i, &sn, M, sp));
  vp_resample_out_spec(c->in[0][i], sn, sp, dtype_choice, out);
  return VP_OK;
}

vp_status vp_resample_geom_meta(const struct vp_op_call *c, int64_t i, vp_resample_geometry_fn g) {
  int sn;
  double M[12];
  int64_t sp[3];
  VP_TRY(g(c, i, &sn, M, sp));
  vp_resample_place(c->in[0][i], c->out[0][i], sn, M);
  return VP_OK;
}

vp_status vp_resample_geom_build(const struct vp_op_call *c, int64_t i, vp_resample_geometry_fn g,
                                 double fill, vp_resample_desc *d) {
  int sn;
  int64_t sp[3];
  VP_TRY(g(c, i, &sn, d->M, sp));
  d->fill = fill;
  return VP_OK;
}

vp_status vp_resample_op_run(const struct vp_op_call *c, const char *name, int gpu,
                             vp_resample_build_fn build, vp_interp interp, vp_border border) {
  if (c->batch < 1) return VP_OK;
  vp_resample_desc *d = calloc((size_t)c->batch, sizeof *d);
  if (!d) return vp_fail(VP_ERR_NOMEM, "%s: out of memory", name);
  vp_status s = VP_OK;
  for (int64_t i = 0; i < c->batch && s == VP_OK; i++) {
    const vp_tensor *in = c->in[0][i];
    const vp_tensor *out = c->out[0][i];
    int sn = vp_resample_spatial(in);
    d[i].in = in->data;
    d[i].out = out->data;
    d[i].channels = 1;
    for (int a = 0; a < in->ndim - sn; a++) d[i].channels *= in->shape[a];
    for (int a = 0; a < 3; a++) {
      int k = a - (3 - sn); /* spatial axis k of the tensor, or none (extent 1) */
      d[i].in_shape[a] = k >= 0 ? in->shape[in->ndim - sn + k] : 1;
      d[i].out_shape[a] = k >= 0 ? out->shape[out->ndim - sn + k] : 1;
    }
    s = build(c, i, &d[i]);
  }
  if (s == VP_OK) {
    vp_dtype tin = c->in[0][0]->dtype, tout = c->out[0][0]->dtype;
    if (!gpu) {
      s = vp_resample_cpu(d, c->batch, tin, tout, interp, border, c->pool);
    } else {
#ifdef VP_HAVE_CUDA
      s = vp_cuda_resample(d, c->batch, tin, tout, interp, border, c->stream);
#else
      s = vp_fail(VP_ERR_NO_DEVICE, "%s: voxpipe was built without its CUDA backend", name);
#endif
    }
    if (s != VP_OK) s = vp_fail_prefix(s, "%s", name);
  }
  free(d);
  return s;
}

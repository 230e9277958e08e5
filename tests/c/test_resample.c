/* The resampling engine (vp_resample_cpu) and its operators (warp_affine,
 * resize) against a float64 reference written here: plain loops with
 * scipy.ndimage's rules for order 0 (floor(x + 0.5)) and order 1 (the
 * eight corners weighted), modes grid-constant / nearest / reflect, and the
 * displacement field's B-spline rule of src/ops/resample.h evaluated from
 * the textbook piecewise basis. Fresh random inputs, matrices (rotation,
 * scale, shear, translation, plus jitter so no coordinate sits exactly
 * half-way) and shapes (extents of 1, 2-D) per run.
 *
 * Tolerances: nearest exact (coordinates within 1e-9 of a rounding tie are
 * skipped); linear within 1e-5 of the input's value range for float16 and
 * float32 data (interpolated in float), 1e-9 of it otherwise; integer
 * outputs within 0.5 (rounding) of that; float16 outputs within half an
 * ulp more. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "ops/op.h"
#include "ops/resample.h"
#include "testutil.h"

static uint64_t g_rng;

static double urand(void) { return (double)(vp_test_rand(&g_rng) >> 11) * 0x1p-53; }
static int64_t irand(int64_t lo, int64_t hi) { /* inclusive */
  return lo + (int64_t)(vp_test_rand(&g_rng) % (uint64_t)(hi - lo + 1));
}

/* ---------------------------------------------------------------- */
/* Reference                                                         */

static double half_to_double(uint16_t h) {
  int sign = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  double v = e == 0 ? ldexp(m, -24) : (e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25));
  return sign ? -v : v;
}

static double load(const void *p, vp_dtype t, int64_t i) {
  switch (t) {
    case VP_U8: return ((const uint8_t *)p)[i];
    case VP_I8: return ((const int8_t *)p)[i];
    case VP_U16: return ((const uint16_t *)p)[i];
    case VP_I16: return ((const int16_t *)p)[i];
    case VP_U32: return ((const uint32_t *)p)[i];
    case VP_I32: return ((const int32_t *)p)[i];
    case VP_I64: return (double)((const int64_t *)p)[i];
    case VP_F16: return half_to_double(((const uint16_t *)p)[i]);
    case VP_F32: return ((const float *)p)[i];
    default: return ((const double *)p)[i];
  }
}

/* scipy's boundary rules on an integer index; -1 = cval. */
static int64_t ref_index(int64_t i, int64_t n, vp_border mode) {
  if (mode == VP_BORDER_CONSTANT) return (i < 0 || i >= n) ? -1 : i;
  if (mode == VP_BORDER_EDGE) return i < 0 ? 0 : (i >= n ? n - 1 : i);
  while (i < 0 || i >= n) i = i < 0 ? -i - 1 : 2 * n - 1 - i; /* mirror about the faces */
  return i;
}

/* Value at input coordinate x (array order) of one channel. *tie is set
 * when nearest's coordinate is within 1e-9 of a rounding tie. */
static double ref_interp(const void *src, vp_dtype t, const int64_t shp[3], const double x[3],
                         vp_interp order, vp_border mode, double cval, int *tie) {
  if (order == VP_INTERP_NEAREST) {
    int64_t j[3];
    for (int a = 0; a < 3; a++) {
      double y = x[a] + 0.5;
      if (fabs(y - nearbyint(y)) < 1e-9 && x[a] != 0) *tie = 1; /* 0: exact (2-D) */
      j[a] = ref_index((int64_t)floor(y), shp[a], mode);
      if (j[a] < 0) return cval;
    }
    return load(src, t, (j[0] * shp[1] + j[1]) * shp[2] + j[2]);
  }
  double sum = 0;
  int64_t lo[3];
  double fr[3];
  for (int a = 0; a < 3; a++) {
    lo[a] = (int64_t)floor(x[a]);
    fr[a] = x[a] - floor(x[a]);
  }
  for (int c = 0; c < 8; c++) {
    double wgt = 1;
    int64_t j[3];
    int out = 0;
    for (int a = 0; a < 3; a++) {
      int up = (c >> (2 - a)) & 1;
      wgt *= up ? fr[a] : 1 - fr[a];
      j[a] = ref_index(lo[a] + up, shp[a], mode);
      if (j[a] < 0) out = 1;
    }
    if (wgt == 0) continue;
    sum += wgt * (out ? cval : load(src, t, (j[0] * shp[1] + j[1]) * shp[2] + j[2]));
  }
  return sum;
}

static double bspline(double x) {
  x = fabs(x);
  if (x < 1) return 2.0 / 3.0 - x * x + x * x * x / 2;
  if (x < 2) return (2 - x) * (2 - x) * (2 - x) / 6;
  return 0;
}

static void ref_disp(const vp_disp_grid *g, const double o[3], double u[3]) {
  double t[3];
  int64_t f[3];
  for (int a = 0; a < 3; a++) {
    t[a] = o[a] / g->spacing[a];
    f[a] = (int64_t)floor(t[a]);
  }
  u[0] = u[1] = u[2] = 0;
  for (int64_t i = f[0] - 1; i <= f[0] + 2; i++)
    for (int64_t j = f[1] - 1; j <= f[1] + 2; j++)
      for (int64_t k = f[2] - 1; k <= f[2] + 2; k++) {
        double b = bspline(t[0] - i) * bspline(t[1] - j) * bspline(t[2] - k);
        int64_t ci = i < 0 ? 0 : (i >= g->grid[0] ? g->grid[0] - 1 : i);
        int64_t cj = j < 0 ? 0 : (j >= g->grid[1] ? g->grid[1] - 1 : j);
        int64_t ck = k < 0 ? 0 : (k >= g->grid[2] ? g->grid[2] - 1 : k);
        const float *nd = g->nodes + ((ci * g->grid[1] + cj) * g->grid[2] + ck) * 3;
        for (int c = 0; c < 3; c++) u[c] += b * nd[c];
      }
}

/* ---------------------------------------------------------------- */
/* Inputs                                                            */

static double dtype_lo(vp_dtype t) {
  static const double lo[] = {0, -128, 0, -32768, 0, -2147483648.0, -1e15, -300, -300, -300};
  return lo[t];
}
static double dtype_hi(vp_dtype t) {
  static const double hi[] = {255,          127,  65535, 32767, 4294967295.0,
                              2147483647.0, 1e15, 300,   300,   300};
  return hi[t];
}

static void store_exact(void *p, vp_dtype t, int64_t i, double v) {
  switch (t) {
    case VP_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case VP_I8: ((int8_t *)p)[i] = (int8_t)v; break;
    case VP_U16: ((uint16_t *)p)[i] = (uint16_t)v; break;
    case VP_I16: ((int16_t *)p)[i] = (int16_t)v; break;
    case VP_U32: ((uint32_t *)p)[i] = (uint32_t)v; break;
    case VP_I32: ((int32_t *)p)[i] = (int32_t)v; break;
    case VP_I64: ((int64_t *)p)[i] = (int64_t)v; break;
    case VP_F16: { /* a value on the half grid: 1/4 steps in [-300, 300] */
      double q = nearbyint(v * 4) / 4;
      int neg = q < 0;
      q = fabs(q);
      uint16_t h = 0;
      if (q > 0) {
        int e;
        frexp(q, &e); /* q = f 2^e */
        uint16_t m = (uint16_t)(ldexp(q, 11 - e) - 1024);
        h = (uint16_t)(((e - 1 + 15) << 10) | m);
      }
      ((uint16_t *)p)[i] = (uint16_t)(h | (neg ? 0x8000 : 0));
      break;
    }
    case VP_F32: ((float *)p)[i] = (float)v; break;
    default: ((double *)p)[i] = v; break;
  }
}

static void *random_data(vp_dtype t, int64_t n) {
  void *p = malloc((size_t)(n > 0 ? n : 1) * vp_dtype_size(t));
  assert_non_null(p);
  for (int64_t i = 0; i < n; i++) {
    double v = dtype_lo(t) + urand() * (dtype_hi(t) - dtype_lo(t));
    store_exact(p, t, i, t < VP_F16 ? floor(v) : v);
    if (t == VP_F16) assert_true(fabs(load(p, t, i) - nearbyint(v * 4) / 4) < 1e-12);
  }
  return p;
}

/* A random map output -> input: rotation (unit quaternion), scales,
 * shears, about the centres so that output and input overlap, plus
 * jitter. 2-D: row 0 zero and only the (h, w) block. */
static void random_matrix(int two_d, const int64_t in[3], const int64_t out[3], double M[12]) {
  double q[4], qn = 0;
  for (int k = 0; k < 4; k++) {
    q[k] = urand() - 0.5;
    qn += q[k] * q[k];
  }
  qn = sqrt(qn);
  for (int k = 0; k < 4; k++) q[k] /= qn;
  double w = q[0], x = q[1], y = q[2], z = q[3];
  double R[3][3] = {{1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)},
                    {2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)},
                    {2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)}};
  if (two_d) {
    double th = urand() * 6.283185307179586;
    double R2[3][3] = {{1, 0, 0}, {0, cos(th), -sin(th)}, {0, sin(th), cos(th)}};
    memcpy(R, R2, sizeof R);
  }
  double S[3][3] = {{0}};
  for (int a = 0; a < 3; a++) S[a][a] = 0.5 + 1.5 * urand();
  S[0][1] = urand() - 0.5;
  S[1][2] = urand() - 0.5;
  S[0][2] = urand() - 0.5;
  double A[3][3];
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 3; c++) {
      A[r][c] = 0;
      for (int k = 0; k < 3; k++) A[r][c] += R[r][k] * S[k][c];
      A[r][c] += (urand() - 0.5) * 1e-6;
    }
  if (two_d)
    for (int k = 0; k < 3; k++) A[0][k] = A[k][0] = 0;
  for (int r = 0; r < 3; r++) {
    double ci = (in[r] - 1) / 2.0, t = ci;
    for (int c = 0; c < 3; c++) t -= A[r][c] * (out[c] - 1) / 2.0;
    for (int c = 0; c < 3; c++) M[r * 4 + c] = A[r][c];
    M[r * 4 + 3] = two_d && r == 0 ? 0 : t + (urand() - 0.5) * 3 + 1e-7 * urand();
  }
}

/* ---------------------------------------------------------------- */
/* Engine vs reference                                               */

static double tolerance(vp_dtype in, vp_interp interp) {
  if (interp == VP_INTERP_NEAREST) return 0;
  double range = dtype_hi(in) - dtype_lo(in);
  return (in == VP_F16 || in == VP_F32 ? 1e-5 : 1e-9) * range;
}

/* got (output dtype `out`) against the reference value v. */
static void check_value(double got, double v, vp_dtype out, double tol, const char *what,
                        int64_t e) {
  double want = v, slack = tol;
  if (out < VP_F16) {
    double lo = dtype_lo(out), hi = out == VP_I64 ? 9.2e18 : dtype_hi(out);
    if (out == VP_I64) lo = -9.2e18;
    want = v < lo ? lo : (v > hi ? hi : v);
    slack += 0.5 + 1e-9 * fabs(want);
  } else if (out == VP_F16) {
    if (fabs(want) >= 65520) want = want > 0 ? INFINITY : -INFINITY;
    slack += fabs(v) * 0x1p-11 + 0x1p-25;
  } else if (out == VP_F32) {
    slack += fabs(v) * 0x1p-24;
  }
  if (isinf(want) && got == want) return;
  if (!(fabs(got - want) <= slack))
    fail_msg("%s: element %lld is %.17g, reference %.17g (tolerance %g)", what, (long long)e, got,
             want, slack);
}

typedef struct job {
  vp_resample_desc d;
  void *in, *out;
} job;

static void random_job(job *j, vp_dtype tin, vp_dtype tout, int with_disp, float **nodes) {
  memset(j, 0, sizeof *j);
  int two_d = irand(0, 3) == 0;
  j->d.channels = irand(1, 3);
  for (int a = 0; a < 3; a++) {
    j->d.in_shape[a] = irand(1, 9);
    j->d.out_shape[a] = irand(1, 9);
  }
  if (two_d) j->d.in_shape[0] = j->d.out_shape[0] = 1;
  random_matrix(two_d, j->d.in_shape, j->d.out_shape, j->d.M);
  j->d.fill = (urand() - 0.5) * 100;
  int64_t nin = j->d.channels * j->d.in_shape[0] * j->d.in_shape[1] * j->d.in_shape[2];
  int64_t nout = j->d.channels * j->d.out_shape[0] * j->d.out_shape[1] * j->d.out_shape[2];
  j->in = random_data(tin, nin);
  j->out = malloc((size_t)nout * vp_dtype_size(tout));
  assert_non_null(j->out);
  memset(j->out, 0xab, (size_t)nout * vp_dtype_size(tout));
  j->d.in = j->in;
  j->d.out = j->out;
  *nodes = NULL;
  if (with_disp) {
    int64_t g = 1;
    for (int a = 0; a < 3; a++) {
      j->d.disp.grid[a] = irand(1, 5);
      j->d.disp.spacing[a] = 0.7 + 3 * urand();
      g *= j->d.disp.grid[a];
    }
    *nodes = malloc((size_t)g * 3 * sizeof **nodes);
    assert_non_null(*nodes);
    for (int64_t k = 0; k < g * 3; k++) (*nodes)[k] = (float)((urand() - 0.5) * 4);
    if (two_d)
      for (int64_t k = 0; k < g; k++) (*nodes)[k * 3] = 0;
    j->d.disp.nodes = *nodes;
  }
}

static void check_job(const job *j, vp_dtype tin, vp_dtype tout, vp_interp interp, vp_border border,
                      const char *what) {
  const vp_resample_desc *d = &j->d;
  int64_t in_plane = d->in_shape[0] * d->in_shape[1] * d->in_shape[2];
  int64_t out_plane = d->out_shape[0] * d->out_shape[1] * d->out_shape[2];
  double tol = tolerance(tin, interp);
  for (int64_t c = 0; c < d->channels; c++)
    for (int64_t o = 0; o < out_plane; o++) {
      double p[3] = {(double)(o / (d->out_shape[1] * d->out_shape[2])),
                     (double)(o / d->out_shape[2] % d->out_shape[1]),
                     (double)(o % d->out_shape[2])};
      if (d->disp.nodes) {
        double u[3];
        ref_disp(&d->disp, p, u);
        for (int a = 0; a < 3; a++) p[a] += u[a];
      }
      double x[3];
      for (int r = 0; r < 3; r++)
        x[r] =
            d->M[r * 4] * p[0] + d->M[r * 4 + 1] * p[1] + d->M[r * 4 + 2] * p[2] + d->M[r * 4 + 3];
      int tie = 0;
      double fill = (tin == VP_F16 || tin == VP_F32) ? (double)(float)d->fill : d->fill;
      const char *src = (const char *)j->in + (size_t)(c * in_plane) * vp_dtype_size(tin);
      double v = ref_interp(src, tin, d->in_shape, x, interp, border, fill, &tie);
      if (tie) continue;
      check_value(load(j->out, tout, c * out_plane + o), v, tout, tol, what, c * out_plane + o);
    }
}

static void run_case(vp_dtype tin, vp_dtype tout, vp_interp interp, vp_border border, int with_disp,
                     vp_threadpool *pool) {
  job jobs[3];
  float *nodes[3];
  int n = (int)irand(1, 3);
  vp_resample_desc d[3];
  for (int i = 0; i < n; i++) {
    random_job(&jobs[i], tin, tout, with_disp, &nodes[i]);
    d[i] = jobs[i].d;
  }
  VP_ASSERT_OK(vp_resample_cpu(d, n, tin, tout, interp, border, pool));
  char what[128];
  for (int i = 0; i < n; i++) {
    snprintf(what, sizeof what, "%s -> %s %s border %d%s sample %d", vp_dtype_name(tin),
             vp_dtype_name(tout), interp ? "linear" : "nearest", (int)border,
             with_disp ? " displaced" : "", i);
    check_job(&jobs[i], tin, tout, interp, border, what);
    free(jobs[i].in);
    free(jobs[i].out);
    free(nodes[i]);
  }
}

static void test_engine_all_dtypes(void **state) {
  (void)state;
  vp_threadpool *pool = NULL;
  VP_ASSERT_OK(vp_threadpool_create(2, &pool));
  for (int tin = 0; tin < VP_DTYPE_COUNT; tin++)
    for (int tout = 0; tout < VP_DTYPE_COUNT; tout++)
      for (int interp = 0; interp < 2; interp++)
        run_case((vp_dtype)tin, (vp_dtype)tout, (vp_interp)interp, (vp_border)irand(0, 2), 0,
                 (tin + tout) % 2 ? pool : NULL);
  vp_threadpool_destroy(pool);
}

static void test_engine_modes(void **state) {
  (void)state;
  const vp_dtype types[] = {VP_U8, VP_I16, VP_F32, VP_F64};
  for (int rep = 0; rep < 10; rep++)
    for (int t = 0; t < 4; t++)
      for (int interp = 0; interp < 2; interp++)
        for (int b = 0; b < 3; b++)
          run_case(types[t], types[t], (vp_interp)interp, (vp_border)b, 0, NULL);
}

static void test_engine_displacement(void **state) {
  (void)state;
  const vp_dtype types[] = {VP_U8, VP_F32, VP_F64};
  for (int rep = 0; rep < 6; rep++)
    for (int t = 0; t < 3; t++)
      for (int interp = 0; interp < 2; interp++)
        for (int b = 0; b < 3; b++)
          run_case(types[t], VP_F64, (vp_interp)interp, (vp_border)b, 1, NULL);
}

/* Integer coordinates read voxels alone: an identity map copies, even
 * next to inf and with a NaN fill. */
static void test_engine_identity(void **state) {
  (void)state;
  float in[2 * 3 * 4], out[2 * 3 * 4];
  for (int k = 0; k < 24; k++) in[k] = (float)(k * 1.25);
  in[5] = INFINITY;
  vp_resample_desc d;
  memset(&d, 0, sizeof d);
  d.in = in;
  d.out = out;
  d.channels = 1;
  int64_t shp[3] = {2, 3, 4};
  memcpy(d.in_shape, shp, sizeof shp);
  memcpy(d.out_shape, shp, sizeof shp);
  d.M[0] = d.M[5] = d.M[10] = 1;
  d.fill = NAN;
  for (int interp = 0; interp < 2; interp++)
    for (int b = 0; b < 3; b++) {
      memset(out, 0, sizeof out);
      VP_ASSERT_OK(vp_resample_cpu(&d, 1, VP_F32, VP_F32, (vp_interp)interp, (vp_border)b, NULL));
      assert_memory_equal(in, out, sizeof in);
    }
}

static void test_engine_errors(void **state) {
  (void)state;
  float in[8], out[8];
  vp_resample_desc d;
  memset(&d, 0, sizeof d);
  d.in = in;
  d.out = out;
  d.channels = 1;
  for (int a = 0; a < 3; a++) d.in_shape[a] = d.out_shape[a] = 2;
  d.M[0] = d.M[5] = d.M[10] = 1;
  /* the coefficient stage is internal: float32 coefficients, no constant border */
  assert_int_equal(
      vp_resample_cpu(&d, 1, VP_U8, VP_F32, VP_INTERP_CUBIC_COEF, VP_BORDER_EDGE, NULL),
      VP_ERR_INVALID_ARG);
  assert_non_null(strstr(vp_last_error(), "cubic coefficients"));
  assert_int_equal(
      vp_resample_cpu(&d, 1, VP_F32, VP_F32, VP_INTERP_CUBIC_COEF, VP_BORDER_CONSTANT, NULL),
      VP_ERR_INVALID_ARG);
  assert_int_equal(vp_resample_cpu(&d, 1, VP_F32, VP_F32, (vp_interp)9, VP_BORDER_EDGE, NULL),
                   VP_ERR_INVALID_ARG);
  assert_non_null(strstr(vp_last_error(), "unknown interpolation"));
  d.M[3] = NAN;
  assert_int_equal(vp_resample_cpu(&d, 1, VP_F32, VP_F32, VP_INTERP_LINEAR, VP_BORDER_EDGE, NULL),
                   VP_ERR_INVALID_ARG);
  assert_non_null(strstr(vp_last_error(), "not finite"));
  d.M[3] = 0;
  d.in_shape[1] = 0;
  assert_int_equal(vp_resample_cpu(&d, 1, VP_F32, VP_F32, VP_INTERP_LINEAR, VP_BORDER_EDGE, NULL),
                   VP_ERR_INVALID_ARG);
  /* an empty input with a constant border is all fill */
  d.fill = 3;
  VP_ASSERT_OK(vp_resample_cpu(&d, 1, VP_F32, VP_F32, VP_INTERP_LINEAR, VP_BORDER_CONSTANT, NULL));
  for (int k = 0; k < 8; k++) assert_true(out[k] == 3.0f);
  d.in_shape[1] = 2;
  float node[3] = {0, 0, 0};
  d.disp.nodes = node;
  d.disp.grid[0] = d.disp.grid[1] = d.disp.grid[2] = 1;
  d.disp.spacing[0] = d.disp.spacing[1] = 1;
  d.disp.spacing[2] = 0;
  assert_int_equal(vp_resample_cpu(&d, 1, VP_F32, VP_F32, VP_INTERP_LINEAR, VP_BORDER_EDGE, NULL),
                   VP_ERR_INVALID_ARG);
  assert_non_null(strstr(vp_last_error(), "displacement grid"));
}

/* ---------------------------------------------------------------- */
/* Operators                                                         */

static vp_tensor *random_tensor(vp_dtype t, int ndim, const int64_t *shape) {
  vp_tensor *x = NULL;
  VP_ASSERT_OK(vp_tensor_create(t, ndim, shape, VP_MEM_HOST, 0, &x));
  void *p = random_data(t, vp_tensor_numel(x));
  memcpy(vp_tensor_data(x), p, vp_tensor_nbytes(x));
  free(p);
  double aff[16] = {0};
  for (int k = 0; k < 12; k++) aff[k] = (urand() - 0.5) * 4;
  aff[15] = 1;
  VP_ASSERT_OK(vp_tensor_set_affine(x, aff));
  return x;
}

/* world of NIfTI voxel (i, j, k) for array-order index p (sn axes). */
static void world(const double A[16], int sn, const double *p, double wx[3]) {
  double ijk[3] = {0, 0, 0};
  for (int a = 0; a < sn; a++) ijk[sn - 1 - a] = p[a];
  for (int r = 0; r < 3; r++)
    wx[r] = A[r * 4] * ijk[0] + A[r * 4 + 1] * ijk[1] + A[r * 4 + 2] * ijk[2] + A[r * 4 + 3];
}

static void test_warp_affine_op(void **state) {
  (void)state;
  for (int rep = 0; rep < 8; rep++) {
    int two_d = rep % 2;
    int64_t shape[4] = {2, irand(1, 8), irand(1, 8), irand(1, 8)};
    int ndim = two_d ? 3 : 4; /* 2-D: [H, W] with a channel axis would read as 3-D */
    vp_tensor *x = random_tensor(VP_F32, two_d ? 2 : 4, two_d ? shape + 2 : shape);
    (void)ndim;
    int sn = two_d ? 2 : 3;
    int64_t in3[3] = {two_d ? 1 : shape[1], shape[2], shape[3]};
    int64_t out3[3] = {two_d ? 1 : irand(1, 8), irand(1, 8), irand(1, 8)};
    double M[12];
    random_matrix(two_d, in3, out3, M);
    char json[1024];
    int used = snprintf(json, sizeof json, "{\"matrix\": [");
    for (int r = 3 - sn; r < 3; r++)
      for (int c = 3 - sn; c < 4; c++)
        used += snprintf(json + used, sizeof json - (size_t)used, "%s%.17g",
                         (r == 3 - sn && c == 3 - sn) ? "" : ", ", M[r * 4 + c]);
    used += snprintf(json + used, sizeof json - (size_t)used, "], \"size\": [");
    for (int a = 3 - sn; a < 3; a++)
      used += snprintf(json + used, sizeof json - (size_t)used, "%s%lld", a == 3 - sn ? "" : ", ",
                       (long long)out3[a]);
    snprintf(json + used, sizeof json - (size_t)used,
             "], \"interp\": \"%s\", \"border\": \"reflect\", \"dtype\": \"float64\"}",
             rep % 4 < 2 ? "linear" : "nearest");
    vp_tensor *y = NULL;
    VP_ASSERT_OK(vp_ops_call("warp_affine", 1, &x, json, 0, &y));
    assert_int_equal(vp_tensor_dtype(y), VP_F64);
    job j;
    memset(&j, 0, sizeof j);
    j.d.channels = two_d ? 1 : 2;
    memcpy(j.d.in_shape, in3, sizeof in3);
    memcpy(j.d.out_shape, out3, sizeof out3);
    memcpy(j.d.M, M, sizeof M);
    j.in = vp_tensor_data(x);
    j.out = vp_tensor_data(y);
    check_job(&j, VP_F32, VP_F64, rep % 4 < 2 ? VP_INTERP_LINEAR : VP_INTERP_NEAREST,
              VP_BORDER_REFLECT, json);
    /* metadata: output voxel o sits where input point M o sits */
    double Ai[16], Ao[16];
    vp_tensor_affine(x, Ai);
    vp_tensor_affine(y, Ao);
    for (int k = 0; k < 5; k++) {
      double o[3] = {urand() * 9, urand() * 9, urand() * 9}, p[3], w1[3], w2[3];
      for (int r = 0; r < 3; r++)
        p[r] = M[r * 4] * o[0] + M[r * 4 + 1] * o[1] + M[r * 4 + 2] * o[2] + M[r * 4 + 3];
      world(Ao, sn, o + 3 - sn, w1);
      world(Ai, sn, p + 3 - sn, w2);
      for (int r = 0; r < 3; r++) assert_true(fabs(w1[r] - w2[r]) < 1e-9 * (1 + fabs(w2[r])));
    }
    double sp[3];
    vp_tensor_spacing(y, sp);
    for (int a = 0; a < sn; a++) {
      int col = sn - 1 - a;
      double nrm = sqrt(Ao[col] * Ao[col] + Ao[4 + col] * Ao[4 + col] + Ao[8 + col] * Ao[8 + col]);
      assert_true(fabs(sp[a] - nrm) < 1e-12 * nrm);
    }
    vp_tensor_release(y);
    vp_tensor_release(x);
  }
}

static void test_warp_affine_inverse(void **state) {
  (void)state;
  int64_t shape[3] = {5, 6, 7};
  vp_tensor *x = random_tensor(VP_F64, 3, shape), *y1 = NULL, *y2 = NULL;
  /* forward map input -> output: scale 2 on H, shift 1 on W; its inverse
   * written out by hand */
  VP_ASSERT_OK(vp_ops_call(
      "warp_affine", 1, &x,
      "{\"matrix\": [1, 0, 0, 0,  0, 2, 0, 0,  0, 0, 1, 1], \"inverse\": true}", 0, &y1));
  VP_ASSERT_OK(vp_ops_call("warp_affine", 1, &x,
                           "{\"matrix\": [1, 0, 0, 0,  0, 0.5, 0, 0,  0, 0, 1, -1]}", 0, &y2));
  assert_memory_equal(vp_tensor_data(y1), vp_tensor_data(y2), vp_tensor_nbytes(y1));
  vp_tensor_release(y1);
  vp_tensor_release(y2);
  y1 = NULL;
  assert_int_equal(vp_ops_call("warp_affine", 1, &x,
                               "{\"matrix\": [1, 0, 0, 0,  0, 0, 0, 0,  0, 0, 1, 1], "
                               "\"inverse\": true}",
                               0, &y1),
                   VP_ERR_INVALID_ARG);
  assert_non_null(strstr(vp_last_error(), "singular"));
  assert_int_equal(vp_ops_call("warp_affine", 1, &x,
                               "{\"matrix\": [1, 0, 0, 0, 1, 0], \"interp\": \"linear\"}", 0, &y1),
                   VP_ERR_INVALID_ARG);
  assert_non_null(strstr(vp_last_error(), "'matrix' has 6 values"));
  vp_tensor_release(x);
}

static void test_resize_op(void **state) {
  (void)state;
  const char *modes[3] = {"stretch", "not_larger", "not_smaller"};
  for (int rep = 0; rep < 9; rep++) {
    int64_t shape[4] = {2, irand(1, 12), irand(1, 12), irand(1, 12)};
    vp_tensor *x = random_tensor(rep % 3 == 0 ? VP_U8 : VP_F32, 4, shape), *y = NULL;
    int64_t size[3] = {irand(0, 12), irand(1, 12), irand(1, 12)};
    char json[256];
    snprintf(json, sizeof json,
             "{\"size\": [%lld, %lld, %lld], \"mode\": \"%s\", \"interp\": \"%s\"}",
             (long long)size[0], (long long)size[1], (long long)size[2], modes[rep % 3],
             rep % 2 ? "nearest" : "linear");
    VP_ASSERT_OK(vp_ops_call("resize", 1, &x, json, 0, &y));
    /* expected extents, from the definition */
    int64_t want[3];
    double s = 0;
    for (int a = 0; a < 3; a++)
      if (size[a] > 0) {
        double r = (double)size[a] / (double)shape[1 + a];
        if (s == 0 || (rep % 3 == 1 ? r < s : r > s)) s = r;
      }
    for (int a = 0; a < 3; a++) {
      if (rep % 3 == 0)
        want[a] = size[a] ? size[a] : shape[1 + a];
      else {
        want[a] = (int64_t)floor(shape[1 + a] * s + 0.5);
        if (want[a] < 1) want[a] = 1;
      }
      assert_int_equal(vp_tensor_shape(y)[1 + a], want[a]);
      if (rep % 3 == 1 && size[a] > 0) assert_true(want[a] <= size[a]);
      if (rep % 3 == 2 && size[a] > 0) assert_true(want[a] >= size[a]);
    }
    job j;
    memset(&j, 0, sizeof j);
    j.d.channels = 2;
    for (int a = 0; a < 3; a++) {
      j.d.in_shape[a] = shape[1 + a];
      j.d.out_shape[a] = want[a];
      double r = (double)shape[1 + a] / (double)want[a];
      j.d.M[a * 4 + a] = r;
      j.d.M[a * 4 + 3] = 0.5 * r - 0.5;
    }
    j.in = vp_tensor_data(x);
    j.out = vp_tensor_data(y);
    check_job(&j, vp_tensor_dtype(x), vp_tensor_dtype(y),
              rep % 2 ? VP_INTERP_NEAREST : VP_INTERP_LINEAR, VP_BORDER_EDGE, json);
    /* voxel centres keep their world position; spacing scales by in/out */
    double Ai[16], Ao[16], si[3], so[3];
    vp_tensor_affine(x, Ai);
    vp_tensor_affine(y, Ao);
    vp_tensor_spacing(x, si);
    vp_tensor_spacing(y, so);
    for (int a = 0; a < 3; a++) assert_true(fabs(so[a] - si[a] * j.d.M[a * 5]) < 1e-12 * so[a]);
    for (int k = 0; k < 5; k++) {
      double o[3] = {(double)irand(0, want[0] - 1), (double)irand(0, want[1] - 1),
                     (double)irand(0, want[2] - 1)},
             p[3], w1[3], w2[3];
      for (int a = 0; a < 3; a++) p[a] = (o[a] + 0.5) * j.d.M[a * 5] - 0.5;
      world(Ao, 3, o, w1);
      world(Ai, 3, p, w2);
      for (int r = 0; r < 3; r++) assert_true(fabs(w1[r] - w2[r]) < 1e-9 * (1 + fabs(w2[r])));
    }
    vp_tensor_release(y);
    vp_tensor_release(x);
  }
}

static void test_resize_args(void **state) {
  (void)state;
  int64_t shape[3] = {10, 20, 40};
  vp_tensor *x = random_tensor(VP_F32, 3, shape), *y = NULL;
  VP_ASSERT_OK(vp_ops_call("resize", 1, &x, "{\"scale\": [0.5]}", 0, &y));
  assert_int_equal(vp_tensor_shape(y)[0], 5);
  assert_int_equal(vp_tensor_shape(y)[2], 20);
  vp_tensor_release(y);
  VP_ASSERT_OK(
      vp_ops_call("resize", 1, &x, "{\"size\": [5, 5, 5], \"mode\": \"not_larger\"}", 0, &y));
  assert_int_equal(vp_tensor_shape(y)[0], 1); /* 10 / 8 = 1.25 */
  assert_int_equal(vp_tensor_shape(y)[1], 3); /* 2.5 rounds up */
  assert_int_equal(vp_tensor_shape(y)[2], 5);
  vp_tensor_release(y);
  y = NULL;
  assert_int_equal(vp_ops_call("resize", 1, &x, "{\"size\": [5, 5, 5], \"scale\": [2]}", 0, &y),
                   VP_ERR_INVALID_ARG);
  assert_non_null(strstr(vp_last_error(), "not both"));
  assert_int_equal(vp_ops_call("resize", 1, &x, "{\"size\": [5, 5]}", 0, &y), VP_ERR_INVALID_ARG);
  vp_tensor_release(x);
}

int main(void) {
  g_rng = vp_test_seed();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_engine_all_dtypes),   cmocka_unit_test(test_engine_modes),
      cmocka_unit_test(test_engine_displacement), cmocka_unit_test(test_engine_identity),
      cmocka_unit_test(test_engine_errors),       cmocka_unit_test(test_warp_affine_op),
      cmocka_unit_test(test_warp_affine_inverse), cmocka_unit_test(test_resize_op),
      cmocka_unit_test(test_resize_args),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

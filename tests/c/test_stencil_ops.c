/* gaussian_blur, simulate_low_resolution, bias_field, erase and one_hot on
 * the CPU against references written here in float64: a direct (not
 * separable) 3-D convolution with its own reflect rule; nearest-down /
 * linear-up resizes written as plain loops; MONAI's bias field with
 * closed-form Legendre polynomials; the erase holes re-derived from the
 * draws the operator documents; one_hot by plain loops. Fresh random
 * inputs of every supported dtype, 2-D, 3-D and 4-D samples in mixed
 * batches; probabilities against binomial bounds; argument errors.
 *
 * Tolerances: float64 1e-12 of the data's magnitude; float32 and integers
 * 2e-6 of it (float32 accumulation) plus half a unit for integer rounding;
 * float16 one ulp of the value plus the float32 tolerance. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/convert.h"
#include "core/philox.h"
#include "ops/op.h"
#include "testutil.h"

static uint64_t g_rng;

static double urand(void) { return (double)(vp_test_rand(&g_rng) >> 11) * 0x1p-53; }
static int64_t irand(int64_t lo, int64_t hi) { /* inclusive */
  return lo + (int64_t)(vp_test_rand(&g_rng) % (uint64_t)(hi - lo + 1));
}

static const vp_dtype k_dtypes[] = {VP_U8, VP_I16, VP_U16, VP_I32, VP_F16, VP_F32, VP_F64};
#define N_DTYPES ((int)(sizeof k_dtypes / sizeof k_dtypes[0]))

static double lo_of(vp_dtype t) {
  switch (t) {
    case VP_U8:
    case VP_U16:
    case VP_U32: return 0;
    case VP_I8: return -128;
    case VP_I16: return -32768;
    case VP_I32: return -2147483648.0;
    default: return -INFINITY;
  }
}
static double hi_of(vp_dtype t) {
  switch (t) {
    case VP_U8: return 255;
    case VP_I8: return 127;
    case VP_U16: return 65535;
    case VP_I16: return 32767;
    case VP_U32: return 4294967295.0;
    case VP_I32: return 2147483647.0;
    default: return INFINITY;
  }
}

/* float64's relative tolerance: 1e-12, or float32's where an operator
 * goes through a float32 intermediate on purpose (simulate_low_resolution). */
static double g_f64_tol = 1e-12;

static double get(const vp_tensor *t, int64_t i) {
  return vp_cvt_load(vp_tensor_data(t), vp_tensor_dtype(t), i);
}

/* Random contents: integers over their whole range (int32 over +-2^24, so
 * float32 accumulation stays exact enough to test), floats in [-300, 300). */
static vp_tensor *make(vp_dtype d, int ndim, const int64_t *shape) {
  vp_tensor *t = NULL;
  VP_ASSERT_OK(vp_tensor_create(d, ndim, shape, VP_MEM_HOST, 0, &t));
  int64_t n = vp_tensor_numel(t);
  double lo = d == VP_I32 ? -16777216.0 : lo_of(d), hi = d == VP_I32 ? 16777216.0 : hi_of(d);
  for (int64_t i = 0; i < n; i++) {
    double v = isfinite(lo) ? (double)irand((int64_t)lo, (int64_t)hi) : (urand() - 0.5) * 600;
    vp_cvt_store(vp_tensor_data(t), d, i, v);
  }
  return t;
}

static void release_all(vp_tensor **t, int n) {
  for (int i = 0; i < n; i++) {
    vp_tensor_release(t[i]);
    t[i] = NULL;
  }
}

/* (outer, D, H, W) of a tensor. */
static void shape4(const vp_tensor *t, int64_t s[4]) {
  int nd = vp_tensor_ndim(t), sn = vp_tensor_spatial_ndim(t);
  if (sn > nd) sn = nd;
  const int64_t *sh = vp_tensor_shape(t);
  s[0] = s[1] = s[2] = s[3] = 1;
  for (int a = 0; a < nd - sn; a++) s[0] *= sh[a];
  for (int k = 0; k < sn; k++) s[3 - k] = sh[nd - 1 - k];
}

/* got (element of dtype t) against a float64 reference, with `scale` the
 * data's magnitude. */
static void expect_close(const char *what, int64_t e, vp_dtype t, double got, double ref,
                         double scale) {
  double want = ref, tol;
  if (t == VP_F64) {
    tol = g_f64_tol * scale;
  } else {
    tol = 2e-6 * scale;
    if (t < VP_F16) {
      want = ref < lo_of(t) ? lo_of(t) : (ref > hi_of(t) ? hi_of(t) : ref);
      tol += 0.5;
    } else if (t == VP_F16) {
      tol += fabs(ref) * 0x1p-11 + 0x1p-24;
    }
  }
  if (!(fabs(got - want) <= tol))
    fail_msg("%s (%s): element %lld is %.17g, reference %.17g (tolerance %g)", what,
             vp_dtype_name(t), (long long)e, got, want, tol);
}

static double max_abs(const vp_tensor *t) {
  double m = 1e-300;
  for (int64_t i = 0; i < vp_tensor_numel(t); i++) m = fmax(m, fabs(get(t, i)));
  return m;
}

/* The draw that decides whether sample i of an eager call (iteration 0,
 * sample base 0) is changed. */
static int ref_applies(const char *op, uint64_t seed, int64_t i, double p) {
  vp_rng_key k = vp_op_eager_key(vp_op_lookup(op), seed);
  vp_u32x4 r = vp_rng_draw(k, 0, (uint32_t)i, UINT64_MAX);
  return vp_u01f(r.v[0]) < (float)p;
}

/* ---------------------------------------------------------------- */
/* gaussian_blur                                                     */

/* scipy's reflect, by repeated mirroring (the operator uses a modulo). */
static int64_t mirror(int64_t i, int64_t n) {
  while (i < 0 || i >= n) {
    if (i < 0) i = -i - 1;
    if (i >= n) i = 2 * n - 1 - i;
  }
  return i;
}

static int ref_kernel(double sigma, double truncate, double *w) {
  if (sigma <= 0) {
    w[0] = 1;
    return 0;
  }
  int r = (int)ceil(truncate * sigma);
  double sum = 0;
  for (int k = -r; k <= r; k++) sum += exp(-(double)k * k / (2 * sigma * sigma));
  for (int k = 0; k <= r; k++) w[k] = exp(-(double)k * k / (2 * sigma * sigma)) / sum;
  return r;
}

/* Direct 3-D convolution of channel-merged (outer, D, H, W) data. */
static void check_blur(const vp_tensor *in, const vp_tensor *out, const double sig[3],
                       double truncate) {
  double w[3][160];
  int r[3];
  for (int a = 0; a < 3; a++) r[a] = ref_kernel(sig[a], truncate, w[a]);
  int64_t s[4];
  shape4(in, s);
  const double scale = max_abs(in);
  for (int64_t o = 0; o < s[0]; o++)
    for (int64_t z = 0; z < s[1]; z++)
      for (int64_t y = 0; y < s[2]; y++)
        for (int64_t x = 0; x < s[3]; x++) {
          double acc = 0;
          for (int a = -r[0]; a <= r[0]; a++)
            for (int b = -r[1]; b <= r[1]; b++)
              for (int c = -r[2]; c <= r[2]; c++) {
                int64_t idx =
                    ((o * s[1] + mirror(z + a, s[1])) * s[2] + mirror(y + b, s[2])) * s[3] +
                    mirror(x + c, s[3]);
                acc += w[0][abs(a)] * w[1][abs(b)] * w[2][abs(c)] * get(in, idx);
              }
          int64_t e = ((o * s[1] + z) * s[2] + y) * s[3] + x;
          expect_close("gaussian_blur", e, vp_tensor_dtype(out), get(out, e), acc, scale);
        }
}

static void test_blur_reference(void **state) {
  (void)state;
  for (int di = 0; di < N_DTYPES; di++) {
    vp_dtype d = k_dtypes[di];
    int64_t s2[2] = {irand(1, 12), irand(1, 12)};
    int64_t s3[3] = {irand(1, 8), irand(2, 9), irand(2, 10)};
    int64_t s4[4] = {irand(1, 3), irand(2, 6), irand(2, 7), irand(2, 8)};
    int64_t tiny[3] = {1, 2, 3};   /* radius beyond the extent: reflected more than once */
    int64_t big[3] = {64, 66, 64}; /* large enough for the thread pool */
    int with_big = d == VP_F32 || d == VP_U8;
    vp_tensor *in[5] = {make(d, 2, s2), make(d, 3, s3), make(d, 4, s4), make(d, 3, tiny),
                        with_big ? make(d, 3, big) : NULL};
    int n = with_big ? 5 : 4;
    double sig[5][3];
    char json[512], *p = json;
    p += sprintf(p, "{\"sigma\": {\"per_sample\": [");
    for (int i = 0; i < n; i++) {
      int sn = vp_tensor_spatial_ndim(in[i]);
      double one = i == 3 ? 2.5 : (i == 4 ? 0.8 : 0.3 + urand() * 1.2);
      int per_axis = urand() < 0.5 && i != 4;
      p += sprintf(p, "%s[", i ? ", " : "");
      for (int a = 0; a < 3; a++) sig[i][a] = 0;
      for (int k = 0; k < (per_axis ? sn : 1); k++) {
        double v = per_axis ? (k == 1 ? 0.0 : 0.2 + urand() * 1.3) : one;
        p += sprintf(p, "%s%.17g", k ? ", " : "", v);
        if (per_axis) sig[i][3 - sn + k] = v;
      }
      if (!per_axis)
        for (int k = 0; k < sn; k++) sig[i][3 - sn + k] = one;
      p += sprintf(p, "]");
    }
    double truncate = urand() < 0.5 ? 3.0 : 2.0 + urand() * 2;
    sprintf(p, "]}, \"truncate\": %.17g}", truncate);
    vp_tensor *out[5] = {0};
    VP_ASSERT_OK(vp_ops_call("gaussian_blur", n, in, json, 7, out));
    for (int i = 0; i < n; i++) {
      assert_int_equal(vp_tensor_dtype(out[i]), d);
      check_blur(in[i], out[i], sig[i], truncate);
    }
    release_all(in, n);
    release_all(out, n);
  }
}

/* p per sample: the documented draw decides; unchanged samples are
 * bit-identical copies; the count of changed samples is binomial. */
static void test_blur_probability(void **state) {
  (void)state;
  enum { N = 400 };
  vp_tensor *in[N], *out[N] = {0};
  int64_t sh[2] = {3, 4};
  for (int i = 0; i < N; i++) in[i] = make(VP_F32, 2, sh);
  uint64_t seed = vp_test_seed() ^ 0x5eed;
  VP_ASSERT_OK(vp_ops_call("gaussian_blur", N, in, "{\"sigma\": [1.0], \"p\": 0.3}", seed, out));
  int changed = 0;
  for (int i = 0; i < N; i++) {
    int same = !memcmp(vp_tensor_data(in[i]), vp_tensor_data(out[i]), vp_tensor_nbytes(in[i]));
    int want = ref_applies("gaussian_blur", seed, i, 0.3);
    if (want == same) fail_msg("sample %d: changed %d, the draw says %d", i, !same, want);
    changed += want;
  }
  /* mean 120, sd 9.2: five sd */
  if (changed < 120 - 46 || changed > 120 + 46)
    fail_msg("%d of %d samples blurred at p 0.3", changed, N);
  release_all(in, N);
  release_all(out, N);
}

/* ---------------------------------------------------------------- */
/* simulate_low_resolution                                           */

/* Linear resize back from (m) to (n) voxels along one axis of a float64
 * line: half-voxel map, edge border. */
static double lin_at(const double *low, int64_t m, double x) {
  if (x < 0) x = 0;
  if (x > (double)(m - 1)) x = (double)(m - 1);
  int64_t i0 = (int64_t)floor(x);
  int64_t i1 = i0 + 1 < m ? i0 + 1 : i0;
  double f = x - (double)i0;
  return low[i0] * (1 - f) + low[i1] * f;
}

static void check_lowres(const vp_tensor *in, const vp_tensor *out, uint64_t seed, int64_t i,
                         double p, double pc, double zlo, double zhi, int per_channel) {
  vp_rng_key key = vp_op_eager_key(vp_op_lookup("simulate_low_resolution"), seed);
  vp_u32x4 r = vp_rng_draw(key, 0, (uint32_t)i, UINT64_MAX);
  int apply = vp_u01f(r.v[0]) < (float)p;
  int64_t s[4];
  shape4(in, s);
  const int64_t nsp = s[1] * s[2] * s[3];
  const int sn = vp_tensor_spatial_ndim(in);
  const double scale = max_abs(in);
  for (int64_t c = 0; c < s[0]; c++) {
    vp_u32x4 q = vp_rng_draw(key, 0, (uint32_t)i, (uint64_t)c);
    if (!apply || !(vp_u01f(q.v[0]) < (float)pc)) {
      for (int64_t v = 0; v < nsp; v++)
        if (get(in, c * nsp + v) != get(out, c * nsp + v))
          fail_msg("simulate_low_resolution: sample %lld channel %lld should be unchanged",
                   (long long)i, (long long)c);
      continue;
    }
    double zoom = zlo + (zhi - zlo) * (double)vp_u01f(per_channel ? q.v[1] : r.v[1]);
    int64_t m[3];
    for (int a = 0; a < 3; a++) {
      double e = nearbyint((double)s[1 + a] * zoom);
      m[a] = a < 3 - sn ? 1 : (e < 1 ? 1 : (int64_t)e);
    }
    /* nearest down: voxel floor(pos + 0.5), clamped */
    double *low = malloc((size_t)(m[0] * m[1] * m[2]) * sizeof *low);
    for (int64_t z = 0; z < m[0]; z++)
      for (int64_t y = 0; y < m[1]; y++)
        for (int64_t x = 0; x < m[2]; x++) {
          int64_t src[3], o[3] = {z, y, x};
          for (int a = 0; a < 3; a++) {
            /* the half-voxel map as the engine's matrix holds it: where
             * (o + 0.5) n / m is a tie, rounding picks the side */
            double ratio = (double)s[1 + a] / (double)m[a];
            double pos = ratio * (double)o[a] + (0.5 * ratio - 0.5);
            int64_t k = (int64_t)floor(pos + 0.5);
            src[a] = k < 0 ? 0 : (k >= s[1 + a] ? s[1 + a] - 1 : k);
          }
          low[(z * m[1] + y) * m[2] + x] =
              (double)(float)get(in, c * nsp + (src[0] * s[2] + src[1]) * s[3] + src[2]);
        }
    /* linear up, one axis at a time (trilinear is separable) */
    double *bufw = malloc((size_t)(m[0] * m[1] * s[3]) * sizeof *bufw);
    double *bufh = malloc((size_t)(m[0] * s[2] * s[3]) * sizeof *bufh);
    double *line = malloc((size_t)(s[1] + s[2] + s[3] + m[0] + m[1] + m[2]) * sizeof *line);
    for (int64_t z = 0; z < m[0]; z++)
      for (int64_t y = 0; y < m[1]; y++)
        for (int64_t x = 0; x < s[3]; x++)
          bufw[(z * m[1] + y) * s[3] + x] =
              lin_at(low + (z * m[1] + y) * m[2], m[2],
                     ((double)x + 0.5) * (double)m[2] / (double)s[3] - 0.5);
    for (int64_t z = 0; z < m[0]; z++)
      for (int64_t x = 0; x < s[3]; x++) {
        for (int64_t y = 0; y < m[1]; y++) line[y] = bufw[(z * m[1] + y) * s[3] + x];
        for (int64_t y = 0; y < s[2]; y++)
          bufh[(z * s[2] + y) * s[3] + x] =
              lin_at(line, m[1], ((double)y + 0.5) * (double)m[1] / (double)s[2] - 0.5);
      }
    for (int64_t y = 0; y < s[2]; y++)
      for (int64_t x = 0; x < s[3]; x++) {
        for (int64_t z = 0; z < m[0]; z++) line[z] = bufh[(z * s[2] + y) * s[3] + x];
        for (int64_t z = 0; z < s[1]; z++) {
          double ref = lin_at(line, m[0], ((double)z + 0.5) * (double)m[0] / (double)s[1] - 0.5);
          int64_t e = c * nsp + (z * s[2] + y) * s[3] + x;
          expect_close("simulate_low_resolution", e, vp_tensor_dtype(out), get(out, e), ref, scale);
        }
      }
    free(low);
    free(bufw);
    free(bufh);
    free(line);
  }
}

static void test_lowres_reference(void **state) {
  (void)state;
  for (int di = 0; di < N_DTYPES; di++) {
    vp_dtype d = k_dtypes[di];
    int64_t s2[2] = {irand(4, 20), irand(4, 20)};
    int64_t s3[3] = {irand(3, 12), irand(3, 14), irand(3, 16)};
    int64_t s4[4] = {3, irand(3, 10), irand(3, 11), irand(3, 12)};
    vp_tensor *in[3] = {make(d, 2, s2), make(d, 3, s3), make(d, 4, s4)};
    vp_tensor *out[3] = {0};
    uint64_t seed = vp_test_seed() + (uint64_t)di;
    int per_channel = di & 1;
    double pc = di % 3 == 0 ? 1.0 : 0.6;
    char json[256];
    snprintf(json, sizeof json,
             "{\"zoom_lo\": 0.3, \"zoom_hi\": 0.9, \"p\": 0.8, \"p_per_channel\": %g, "
             "\"per_channel\": %s, \"order_upsample\": \"linear\"}",
             pc, per_channel ? "true" : "false");
    VP_ASSERT_OK(vp_ops_call("simulate_low_resolution", 3, in, json, seed, out));
    g_f64_tol = 2e-6;
    for (int i = 0; i < 3; i++)
      check_lowres(in[i], out[i], seed, i, 0.8, pc, 0.3, 0.9, per_channel);
    g_f64_tol = 1e-12;
    release_all(in, 3);
    release_all(out, 3);
  }
}

/* ---------------------------------------------------------------- */
/* bias_field                                                        */

static double legendre(int n, double x) { /* closed forms */
  double x2 = x * x;
  switch (n) {
    case 0: return 1;
    case 1: return x;
    case 2: return (3 * x2 - 1) / 2;
    case 3: return (5 * x2 - 3) * x / 2;
    case 4: return (35 * x2 * x2 - 30 * x2 + 3) / 8;
    case 5: return (63 * x2 * x2 - 70 * x2 + 15) * x / 8;
    default: return (231 * x2 * x2 * x2 - 315 * x2 * x2 + 105 * x2 - 5) / 16;
  }
}

static double coord(int64_t k, int64_t n) { /* np.linspace(-1, 1, n, dtype=float32) */
  if (n == 1) return -1;
  return k == n - 1 ? 1.0 : (double)(float)(-1.0 + 2.0 * (double)k / (double)(n - 1));
}

static void check_bias(const vp_tensor *in, const vp_tensor *out, uint64_t seed, int64_t i,
                       int degree, double clo, double chi, double p) {
  int64_t s[4];
  shape4(in, s);
  const int sn = vp_tensor_spatial_ndim(in);
  if (!ref_applies("bias_field", seed, i, p)) {
    assert_memory_equal(vp_tensor_data(in), vp_tensor_data(out), vp_tensor_nbytes(in));
    return;
  }
  vp_rng_key key = vp_op_eager_key(vp_op_lookup("bias_field"), seed);
  /* MONAI's term list */
  int terms[100][3], nt = 0;
  for (int a = 0; a <= degree; a++)
    for (int b = 0; b <= (sn == 3 ? degree - a : a); b++)
      for (int c = 0; c <= (sn == 3 ? degree - a - b : 0); c++) {
        terms[nt][0] = a;
        terms[nt][1] = b;
        terms[nt][2] = c;
        nt++;
      }
  double coef[100];
  for (int j = 0; j < nt; j++) {
    vp_u32x4 q = vp_rng_draw(key, 0, (uint32_t)i, (uint64_t)j);
    coef[j] = clo + (chi - clo) * vp_u01d(q.v[0], q.v[1]);
  }
  const double scale = max_abs(in) * 2;
  for (int64_t o = 0; o < s[0]; o++)
    for (int64_t z = 0; z < s[1]; z++)
      for (int64_t y = 0; y < s[2]; y++)
        for (int64_t x = 0; x < s[3]; x++) {
          double lf = 0;
          for (int j = 0; j < nt; j++) {
            if (sn == 3)
              lf += coef[j] * legendre(terms[j][0], coord(z, s[1])) *
                    legendre(terms[j][1], coord(y, s[2])) * legendre(terms[j][2], coord(x, s[3]));
            else
              lf += coef[j] * legendre(terms[j][0], coord(y, s[2])) *
                    legendre(terms[j][1], coord(x, s[3]));
          }
          int64_t e = ((o * s[1] + z) * s[2] + y) * s[3] + x;
          const double ref = get(in, e) * exp(lf);
          expect_close("bias_field", e, vp_tensor_dtype(out), get(out, e), ref,
                       fmax(scale, fabs(ref)));
        }
}

static void test_bias_reference(void **state) {
  (void)state;
  for (int di = 0; di < N_DTYPES; di++) {
    vp_dtype d = k_dtypes[di];
    int64_t s2[2] = {irand(1, 14), irand(2, 15)};
    int64_t s3[3] = {irand(2, 9), irand(1, 10), irand(2, 11)};
    int64_t s4[4] = {2, irand(2, 7), irand(2, 8), irand(2, 9)};
    vp_tensor *in[3] = {make(d, 2, s2), make(d, 3, s3), make(d, 4, s4)};
    vp_tensor *out[3] = {0};
    uint64_t seed = vp_test_seed() + 17 * (uint64_t)di;
    int degree = (int)irand(1, 6);
    double clo = -0.3 + urand() * 0.2, chi = clo + urand() * 0.4;
    char json[256];
    snprintf(json, sizeof json, "{\"degree\": %d, \"coeff_range\": [%.17g, %.17g], \"p\": 0.9}",
             degree, clo, chi);
    VP_ASSERT_OK(vp_ops_call("bias_field", 3, in, json, seed, out));
    for (int i = 0; i < 3; i++) check_bias(in[i], out[i], seed, i, degree, clo, chi, 0.9);
    release_all(in, 3);
    release_all(out, 3);
  }
}

/* ---------------------------------------------------------------- */
/* erase                                                             */

/* The holes of sample i, re-derived from the documented draws. */
static int ref_holes(uint64_t seed, int64_t i, const int64_t s[4], int sn, int least, int most,
                     const double flo[3], const double fhi[3], int64_t box[][6]) {
  vp_rng_key key = vp_op_eager_key(vp_op_lookup("erase"), seed);
  vp_u32x4 r = vp_rng_draw(key, 0, (uint32_t)i, UINT64_MAX);
  if (most < least) most = least;
  int count = least + (int)floor(vp_u01f(r.v[1]) * (most - least + 1));
  for (int h = 0; h < count; h++) {
    vp_u32x4 a = vp_rng_draw(key, 0, (uint32_t)i, UINT64_MAX - 1 - (uint64_t)h);
    vp_u32x4 b = vp_rng_draw(key, 0, (uint32_t)i, UINT64_MAX - 33 - (uint64_t)h);
    for (int ax = 0; ax < 3; ax++) {
      int k = ax - (3 - sn);
      int64_t n = s[1 + ax];
      if (k < 0) {
        box[h][ax] = 0;
        box[h][3 + ax] = n;
        continue;
      }
      double m = nearbyint(n * (flo[k] + (fhi[k] - flo[k]) * vp_u01f(a.v[k])));
      int64_t ext = m < 1 ? 1 : (m > n ? n : (int64_t)m);
      int64_t st = (int64_t)floor(vp_u01f(b.v[k]) * (double)(n - ext + 1));
      if (st > n - ext) st = n - ext;
      box[h][ax] = st;
      box[h][3 + ax] = st + ext;
    }
  }
  return count;
}

static void test_erase_reference(void **state) {
  (void)state;
  for (int di = 0; di < N_DTYPES; di++) {
    vp_dtype d = k_dtypes[di];
    int64_t s2[2] = {irand(3, 30), irand(3, 30)};
    int64_t s3[3] = {irand(2, 12), irand(2, 13), irand(2, 14)};
    int64_t s4[4] = {2, irand(2, 9), irand(2, 10), irand(2, 11)};
    vp_tensor *in[3] = {make(d, 2, s2), make(d, 3, s3), make(d, 4, s4)};
    vp_tensor *out[3] = {0};
    uint64_t seed = vp_test_seed() + 31 * (uint64_t)di;
    int noise = di & 1;
    const double flo[3] = {0.1, 0.2, 0.05}, fhi[3] = {0.5, 0.6, 0.7};
    char json[400];
    /* per-axis sizes for the 3-axis samples, one pair for the 2-D one */
    snprintf(json, sizeof json,
             "{\"holes\": 1, \"max_holes\": 4, \"size_lo\": {\"per_sample\": [[0.1], [0.1, 0.2, "
             "0.05], [0.1, 0.2, 0.05]]}, \"size_hi\": {\"per_sample\": [[0.5], [0.5, 0.6, 0.7], "
             "[0.5, 0.6, 0.7]]}, \"fill\": \"%s\", \"value\": -7.25, \"mean\": 3, \"stddev\": 2, "
             "\"p\": 0.9}",
             noise ? "noise" : "value");
    VP_ASSERT_OK(vp_ops_call("erase", 3, in, json, seed, out));
    vp_rng_key key = vp_op_eager_key(vp_op_lookup("erase"), seed);
    for (int i = 0; i < 3; i++) {
      int64_t s[4];
      shape4(in[i], s);
      int sn = vp_tensor_spatial_ndim(in[i]);
      const double lo1[3] = {0.1, 0.1, 0.1}, hi1[3] = {0.5, 0.5, 0.5};
      int64_t box[32][6];
      int nh = ref_applies("erase", seed, i, 0.9)
                   ? ref_holes(seed, i, s, sn, 1, 4, i ? flo : lo1, i ? fhi : hi1, box)
                   : 0;
      for (int64_t o = 0; o < s[0]; o++)
        for (int64_t z = 0; z < s[1]; z++)
          for (int64_t y = 0; y < s[2]; y++)
            for (int64_t x = 0; x < s[3]; x++) {
              int64_t e = ((o * s[1] + z) * s[2] + y) * s[3] + x;
              int inside = 0;
              for (int h = 0; h < nh; h++)
                inside |= z >= box[h][0] && z < box[h][3] && y >= box[h][1] && y < box[h][4] &&
                          x >= box[h][2] && x < box[h][5];
              double want = get(in[i], e);
              if (inside) {
                want = -7.25;
                if (noise) {
                  vp_u32x4 w = vp_rng_draw(key, 0, (uint32_t)i, (uint64_t)e / 4);
                  vp_f32x2 p2 =
                      (e & 3) < 2 ? vp_normal2f(w.v[0], w.v[1]) : vp_normal2f(w.v[2], w.v[3]);
                  want = 3 + 2 * (double)((e & 1) ? p2.y : p2.x);
                }
              }
              expect_close("erase", e, d, get(out[i], e), want, fabs(want));
            }
    }
    release_all(in, 3);
    release_all(out, 3);
  }
}

/* Properties that need no re-derivation: one hole with p 1 changes exactly
 * one box, whose extents lie within the size bounds. */
static void test_erase_one_box(void **state) {
  (void)state;
  for (int rep = 0; rep < 20; rep++) {
    int64_t sh[3] = {irand(5, 20), irand(5, 20), irand(5, 20)};
    vp_tensor *in = make(VP_F32, 3, sh), *out = NULL;
    float *a = vp_tensor_data(in);
    for (int64_t k = 0; k < vp_tensor_numel(in); k++) a[k] = 1000 + (float)k; /* never the fill */
    VP_ASSERT_OK(vp_ops_call("erase", 1, &in,
                             "{\"holes\": 1, \"size_lo\": [0.2], \"size_hi\": [0.6], \"value\": 5}",
                             vp_test_seed() + (uint64_t)rep, &out));
    int64_t lo[3] = {sh[0], sh[1], sh[2]}, hi[3] = {-1, -1, -1}, changed = 0;
    const float *b = vp_tensor_data(out);
    for (int64_t z = 0; z < sh[0]; z++)
      for (int64_t y = 0; y < sh[1]; y++)
        for (int64_t x = 0; x < sh[2]; x++) {
          int64_t e = (z * sh[1] + y) * sh[2] + x;
          if (b[e] == a[e]) continue;
          assert_true(b[e] == 5.0f);
          changed++;
          int64_t v[3] = {z, y, x};
          for (int k = 0; k < 3; k++) {
            lo[k] = v[k] < lo[k] ? v[k] : lo[k];
            hi[k] = v[k] > hi[k] ? v[k] : hi[k];
          }
        }
    int64_t vol = 1;
    for (int k = 0; k < 3; k++) {
      int64_t ext = hi[k] - lo[k] + 1;
      vol *= ext;
      if (ext < (int64_t)floor(0.2 * sh[k]) || ext > (int64_t)ceil(0.6 * sh[k]))
        fail_msg("erase: hole extent %lld on axis %d of %lld, outside [0.2, 0.6]", (long long)ext,
                 k, (long long)sh[k]);
    }
    assert_int_equal(vol, changed); /* a full box */
    vp_tensor_release(in);
    vp_tensor_release(out);
  }
}

/* ---------------------------------------------------------------- */
/* one_hot                                                           */

static void test_one_hot(void **state) {
  (void)state;
  const vp_dtype labels[] = {VP_U8, VP_I16, VP_I32, VP_F32};
  const vp_dtype outs[] = {VP_F32, VP_U8, VP_F16, VP_F64};
  for (int li = 0; li < 4; li++) {
    int64_t s3[3] = {irand(1, 6), irand(1, 7), irand(1, 8)};
    int64_t s4[4] = {1, irand(1, 6), irand(1, 7), irand(1, 8)};
    vp_tensor *in[2] = {NULL, NULL}, *out[2] = {0};
    VP_ASSERT_OK(vp_tensor_create(labels[li], 3, s3, VP_MEM_HOST, 0, &in[0]));
    VP_ASSERT_OK(vp_tensor_create(labels[li], 4, s4, VP_MEM_HOST, 0, &in[1]));
    for (int i = 0; i < 2; i++)
      for (int64_t k = 0; k < vp_tensor_numel(in[i]); k++)
        vp_cvt_store(vp_tensor_data(in[i]), labels[li], k,
                     labels[li] == VP_F32 && k % 7 == 3 ? 1.5 : (double)irand(0, 6));
    const int use_list = li & 1;
    char json[128];
    snprintf(json, sizeof json,
             use_list ? "{\"classes\": [4, 0, 2], \"dtype\": \"%s\"}"
                      : "{\"num_classes\": 5, \"dtype\": \"%s\"}",
             vp_dtype_name(outs[li]));
    VP_ASSERT_OK(vp_ops_call("one_hot", 2, in, json, 0, out));
    const double list[3] = {4, 0, 2};
    const int64_t K = use_list ? 3 : 5;
    for (int i = 0; i < 2; i++) {
      const int64_t nsp = vp_tensor_numel(in[i]);
      assert_int_equal(vp_tensor_ndim(out[i]), 4);
      assert_int_equal(vp_tensor_shape(out[i])[0], K);
      assert_int_equal(vp_tensor_dtype(out[i]), outs[li]);
      for (int64_t v = 0; v < nsp; v++) {
        double lab = get(in[i], v);
        for (int64_t k = 0; k < K; k++) {
          int want = use_list ? lab == list[k] : lab == (double)k;
          if (get(out[i], k * nsp + v) != (double)want)
            fail_msg("one_hot: label %g, channel %lld: %g", lab, (long long)k,
                     get(out[i], k * nsp + v));
        }
      }
    }
    release_all(in, 2);
    release_all(out, 2);
  }
}

/* ---------------------------------------------------------------- */
/* Argument errors                                                   */

static void expect_error(const char *op, vp_tensor *in, const char *args, const char *word) {
  vp_tensor *out = NULL;
  vp_status s = vp_ops_call(op, 1, &in, args, 1, &out);
  if (s != VP_ERR_INVALID_ARG)
    fail_msg("%s %s: got %s, want INVALID_ARG", op, args, vp_status_name(s));
  assert_null(out);
  const char *m = vp_last_error();
  if (!strstr(m, op) || !strstr(m, word))
    fail_msg("%s %s: message '%s' lacks '%s'", op, args, m, word);
}

static void test_errors(void **state) {
  (void)state;
  int64_t sh[3] = {4, 5, 6}, sh2[4] = {2, 4, 5, 6};
  vp_tensor *t = make(VP_F32, 3, sh), *two = make(VP_U8, 4, sh2);
  expect_error("gaussian_blur", t, "{\"sigma\": [1, 2]}", "sigma");
  expect_error("gaussian_blur", t, "{\"sigma\": [40]}", "sigma");
  expect_error("simulate_low_resolution", t, "{\"zoom_lo\": 0.9, \"zoom_hi\": 0.5}", "zoom_lo");
  expect_error("simulate_low_resolution", t, "{\"ignore_axes\": [5]}", "ignore_axes");
  expect_error("bias_field", t, "{\"coeff_range\": [0.2, 0.1]}", "coeff_range");
  expect_error("bias_field", t, "{\"degree\": 9}", "degree");
  expect_error("erase", t, "{\"size_lo\": [0.5], \"size_hi\": [0.2]}", "size_lo");
  expect_error("erase", t, "{\"size_lo\": [0.1, 0.2]}", "size_lo");
  expect_error("one_hot", two, "{\"num_classes\": 3}", "channel");
  expect_error("one_hot", t, "{}", "num_classes");
  expect_error("one_hot", t, "{\"num_classes\": 2, \"classes\": [1, 2, 3]}", "num_classes");
  expect_error("one_hot", t, "{\"classes\": [1, 2, 1]}", "twice");
  vp_tensor_release(t);
  vp_tensor_release(two);
}

int main(void) {
  g_rng = vp_test_seed();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_blur_reference),   cmocka_unit_test(test_blur_probability),
      cmocka_unit_test(test_lowres_reference), cmocka_unit_test(test_bias_reference),
      cmocka_unit_test(test_erase_reference),  cmocka_unit_test(test_erase_one_box),
      cmocka_unit_test(test_one_hot),          cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

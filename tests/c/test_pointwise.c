/* The pointwise engine and the intensity operators on the CPU:
 * - random chains of pointwise operators, fused by vp_pointwise_run, give
 *   the bytes of the same chain run op by op through vp_ops_call (mixed
 *   shapes, 1-4 channels, channels of more than one statistics chunk,
 *   float32/float16/int16/uint8/float64 inputs), whatever the threads;
 * - cast of edge values between every pair of dtypes against an oracle
 *   written here (nearest even, saturation, NaN -> 0; float16 by the
 *   compiler's _Float16);
 * - p: the fraction of changed samples of every random operator within 5
 *   binomial sigmas; Rician noise on zeros has the Rayleigh mean and
 *   variance within 5 sigmas of the estimators;
 * - normalize's computed statistics: each channel's mean 0 and std 1 to
 *   1e-9 (float64 output); gamma with retain_stats keeps mean and std;
 * - normalize_masked against an oracle in double (masks shared or per
 *   channel, outside zero or keep), and inside a chain the engine runs
 *   (brightness, normalize_masked, cast) byte-equal to the calls one by one;
 * - argument and chain errors name the operator and the reason.
 * The NumPy references of every operator are tests/python/test_intensity.py. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "ops/pointwise.h"
#include "testutil.h"

static uint64_t g_rng;

static double urand(void) { return (double)(vp_test_rand(&g_rng) >> 11) * 0x1p-53; }

static void release_all(vp_tensor **t, int n) {
  for (int i = 0; i < n; i++) {
    vp_tensor_release(t[i]);
    t[i] = NULL;
  }
}

/* Random values of a dtype's range, a tenth of them 0. */
static void fill(vp_tensor *t) {
  int64_t n = vp_tensor_numel(t);
  for (int64_t e = 0; e < n; e++) {
    double v = urand() < 0.1 ? 0 : (urand() - 0.3) * 200;
    if (t->dtype == VP_U8) v = fabs(v);
    vp_cvt_store(t->data, t->dtype, e, v);
  }
}

enum { NB = 4 };
static const int64_t k_shapes[NB][4] = {{2, 5, 6, 7}, {3, 4, 5, 3}, {7, 9, 5, 0}, {2, 20, 24, 25}};
static const int k_ndims[NB] = {4, 4, 3, 4};

static void make_batch(vp_dtype t, vp_tensor **in) {
  for (int i = 0; i < NB; i++) {
    VP_ASSERT_OK(vp_tensor_create(t, k_ndims[i], k_shapes[i], VP_MEM_HOST, 0, &in[i]));
    fill(in[i]);
  }
}

/* A list {"per_sample": [...]} of NB uniform values in [lo, hi). */
static const char *per_sample(char *buf, size_t cap, double lo, double hi) {
  int u = snprintf(buf, cap, "{\"per_sample\": [");
  for (int i = 0; i < NB; i++)
    u += snprintf(buf + u, cap - (size_t)u, "%s%.17g", i ? ", " : "", lo + (hi - lo) * urand());
  snprintf(buf + u, cap - (size_t)u, "]}");
  return buf;
}

static const char *k_tf[2] = {"false", "true"};

/* Arguments of a random instance of pointwise op `k` (of 11). */
static const char *random_op(int k, char *json, size_t cap) {
  char a[256];
  int coin = (int)(urand() * 2), coin2 = (int)(urand() * 2), coin3 = (int)(urand() * 2);
  switch (k) {
    case 0:
      snprintf(json, cap, "{\"factor\": %s, \"p\": 0.7}", per_sample(a, sizeof a, 0.7, 1.3));
      return "brightness";
    case 1:
      snprintf(json, cap, "{\"shift\": %s, \"p\": 0.8}", per_sample(a, sizeof a, -5, 5));
      return "brightness_shift";
    case 2: snprintf(json, cap, "{\"lo\": -3.5, \"hi\": 40}"); return "clamp";
    case 3:
      snprintf(json, cap, "{\"factor\": %s, \"p\": 0.8, \"per_channel\": %s}",
               per_sample(a, sizeof a, 0.65, 1.5), k_tf[coin]);
      return "contrast";
    case 4:
      snprintf(json, cap,
               "{\"gamma\": %s, \"p\": 0.8, \"invert\": %s, \"retain_stats\": %s, "
               "\"per_channel\": %s}",
               per_sample(a, sizeof a, 0.7, 1.5), k_tf[coin], k_tf[coin2], k_tf[coin3]);
      return "gamma";
    case 5:
      snprintf(json, cap, "{\"stddev\": %s, \"p\": 0.7}", per_sample(a, sizeof a, 0, 3));
      return "gaussian_noise";
    case 6: snprintf(json, cap, "{\"stddev\": 1.5, \"mean\": 0.5, \"p\": 0.6}"); return "rician_noise";
    case 7: {
      static const char *modes[3] = {"given", "sample", "channel"};
      snprintf(json, cap, "{\"stats\": \"%s\", \"nonzero\": %s, \"mean\": 3, \"std\": 7, "
               "\"dtype\": \"%s\"}",
               modes[(int)(urand() * 3)], k_tf[coin], coin2 ? "float16" : "float32");
      return "normalize";
    }
    case 8:
      snprintf(json, cap, "{\"a_min\": -10, \"a_max\": 50, \"clip\": %s}", k_tf[coin]);
      return "scale_intensity_range";
    case 9: snprintf(json, cap, "{}"); return "ct_normalize";
    default: {
      static const char *to[5] = {"float32", "float16", "int16", "uint8", "float64"};
      snprintf(json, cap, "{\"dtype\": \"%s\"}", to[(int)(urand() * 5)]);
      return "cast";
    }
  }
}

/* The chain fused through vp_pointwise_run (no threads) into outputs shaped
 * like `like`. */
static void run_fused(int n, const char **names, char (*jsons)[512], const uint64_t *seeds,
                      vp_tensor **in, vp_tensor **like, vp_tensor **out) {
  const vp_op_desc *ops[VP_PW_MAX_OPS];
  vp_op_call calls[VP_PW_MAX_OPS];
  vp_op_args *args[VP_PW_MAX_OPS];
  for (int i = 0; i < NB; i++)
    VP_ASSERT_OK(vp_tensor_create(like[i]->dtype, like[i]->ndim, like[i]->shape, VP_MEM_HOST, 0,
                                  &out[i]));
  for (int k = 0; k < n; k++) {
    ops[k] = vp_op_lookup(names[k]);
    assert_non_null(ops[k]);
    assert_true(vp_op_is_pointwise(ops[k]));
    VP_ASSERT_OK(vp_op_args_parse(ops[k], jsons[k], NB, &args[k]));
    memset(&calls[k], 0, sizeof calls[k]);
    calls[k].batch = NB;
    calls[k].args = args[k];
    calls[k].key = vp_op_eager_key(ops[k], seeds[k]);
  }
  calls[0].in[0] = in;
  calls[n - 1].out[0] = out;
  VP_ASSERT_OK(vp_pointwise_run(ops, calls, n, 0));
  for (int k = 0; k < n; k++) vp_op_args_free(args[k]);
}

static void test_fused_equals_unfused(void **state) {
  (void)state;
  static const vp_dtype dts[5] = {VP_F32, VP_F16, VP_I16, VP_U8, VP_F64};
  for (int trial = 0; trial < 60; trial++) {
    vp_dtype dt = dts[trial % 5];
    int n = 2 + (int)(urand() * 4);
    const char *names[VP_PW_MAX_OPS];
    char jsons[VP_PW_MAX_OPS][512];
    uint64_t seeds[VP_PW_MAX_OPS];
    for (int k = 0; k < n; k++) {
      names[k] = random_op((int)(urand() * 11), jsons[k], sizeof jsons[k]);
      seeds[k] = vp_test_rand(&g_rng);
    }
    vp_tensor *in[NB], *cur[NB], *next[NB], *fused[NB];
    make_batch(dt, in);
    for (int i = 0; i < NB; i++) {
      cur[i] = in[i];
      vp_tensor_retain(in[i]);
    }
    for (int k = 0; k < n; k++) {
      VP_ASSERT_OK(vp_ops_call(names[k], NB, cur, jsons[k], seeds[k], next));
      release_all(cur, NB);
      memcpy(cur, next, sizeof cur);
    }
    run_fused(n, names, jsons, seeds, in, cur, fused);
    for (int i = 0; i < NB; i++) {
      if (memcmp(cur[i]->data, fused[i]->data, vp_tensor_nbytes(cur[i]))) {
        char chain[1024] = "";
        for (int k = 0; k < n; k++) {
          strncat(chain, names[k], sizeof chain - strlen(chain) - 1);
          strncat(chain, jsons[k], sizeof chain - strlen(chain) - 1);
          strncat(chain, " | ", sizeof chain - strlen(chain) - 1);
        }
        int64_t e = 0, m = vp_tensor_numel(cur[i]);
        size_t es = vp_dtype_size(cur[i]->dtype);
        while (e < m - 1 && !memcmp((char *)cur[i]->data + e * es, (char *)fused[i]->data + e * es, es))
          e++;
        fail_msg("%s input: fused differs from op by op, sample %d element %lld (%.17g vs %.17g): %s",
                 vp_dtype_name(dt), i, (long long)e, vp_cvt_load(fused[i]->data, cur[i]->dtype, e),
                 vp_cvt_load(cur[i]->data, cur[i]->dtype, e), chain);
      }
    }
    release_all(fused, NB);
    release_all(cur, NB);
    release_all(in, NB);
  }
}

/* ---------------------------------------------------------------- */

static double oracle(double v, vp_dtype to) {
  static const double lo[] = {0, -128, 0, -32768, 0, -2147483648.0, -0x1p63};
  static const double hi[] = {255, 127, 65535, 32767, 4294967295.0, 2147483647.0, 0x1p63};
  if (to == VP_F16) return (double)(_Float16)(float)v;
  if (to == VP_F32) return (double)(float)v;
  if (to == VP_F64) return v;
  if (isnan(v)) return 0;
  double r = nearbyint(v);
  return r < lo[to] ? lo[to] : (r > hi[to] ? hi[to] : r);
}

static void test_cast_saturation(void **state) {
  (void)state;
  static const double edge[] = {NAN, INFINITY, -INFINITY, 1e300, -1e300, 2.5, -2.5, 3.5, -0.5,
                                255.5, 256, -129, 127.5, 65535.5, 65536, 32767.5, -32768.5,
                                2147483647.5, -2147483648.5, 4294967295.5, 4294967296, 9.3e18,
                                -9.3e18, 70000, 65519, 65520, 1e-8, -3e-5, 0.1, 1234.567};
  const int64_t n = (int64_t)(sizeof edge / sizeof edge[0]);
  vp_tensor *src = NULL;
  VP_ASSERT_OK(vp_tensor_create(VP_F64, 1, &n, VP_MEM_HOST, 0, &src));
  memcpy(src->data, edge, sizeof edge);
  for (int from = 0; from < VP_DTYPE_COUNT; from++) {
    vp_tensor *a = NULL;
    char json[64];
    snprintf(json, sizeof json, "{\"dtype\": \"%s\"}", vp_dtype_name((vp_dtype)from));
    VP_ASSERT_OK(vp_ops_call("cast", 1, &src, json, 0, &a));
    for (int64_t e = 0; e < n; e++) { /* the first hop against the oracle too */
      double got = vp_cvt_load(a->data, a->dtype, e), want = oracle(edge[e], (vp_dtype)from);
      if (!(got == want || (isnan(got) && isnan(want))) && from != VP_I64)
        fail_msg("cast float64 %.17g -> %s: %.17g, want %.17g", edge[e],
                 vp_dtype_name((vp_dtype)from), got, want);
    }
    for (int to = 0; to < VP_DTYPE_COUNT; to++) {
      vp_tensor *b = NULL;
      snprintf(json, sizeof json, "{\"dtype\": \"%s\"}", vp_dtype_name((vp_dtype)to));
      VP_ASSERT_OK(vp_ops_call("cast", 1, &a, json, 0, &b));
      for (int64_t e = 0; e < n; e++) {
        double x = vp_cvt_load(a->data, a->dtype, e);
        double got = vp_cvt_load(b->data, b->dtype, e), want = oracle(x, (vp_dtype)to);
        if (to == VP_I64) { /* compare as integers: 2^63 does not fit */
          int64_t gi = ((const int64_t *)b->data)[e];
          int64_t wi = isnan(x) ? 0 : (x >= 0x1p63 ? INT64_MAX : (x <= -0x1p63 ? INT64_MIN : (int64_t)nearbyint(x)));
          if (from == VP_I64) wi = ((const int64_t *)a->data)[e];
          if (gi != wi)
            fail_msg("cast %s %.17g -> int64: %lld, want %lld", vp_dtype_name((vp_dtype)from), x,
                     (long long)gi, (long long)wi);
          continue;
        }
        if (!(got == want || (isnan(got) && isnan(want))))
          fail_msg("cast %s %.17g -> %s: %.17g, want %.17g", vp_dtype_name((vp_dtype)from), x,
                   vp_dtype_name((vp_dtype)to), got, want);
      }
      vp_tensor_release(b);
    }
    vp_tensor_release(a);
  }
  vp_tensor_release(src);
}

/* ---------------------------------------------------------------- */

static void test_probabilities(void **state) {
  (void)state;
  enum { N = 400 };
  static const char *ops[] = {"brightness", "brightness_shift", "contrast", "gamma",
                              "gaussian_noise", "rician_noise"};
  static const char *args[] = {"{\"factor\": 2, \"p\": 0.3}", "{\"shift\": 1, \"p\": 0.3}",
                               "{\"factor\": 2, \"p\": 0.3}", "{\"gamma\": 2, \"p\": 0.3}",
                               "{\"p\": 0.3}", "{\"p\": 0.3}"};
  int64_t small[1] = {8};
  vp_tensor *in[N], *out[N];
  for (int i = 0; i < N; i++) {
    VP_ASSERT_OK(vp_tensor_create(VP_F32, 1, small, VP_MEM_HOST, 0, &in[i]));
    for (int k = 0; k < 8; k++) ((float *)in[i]->data)[k] = (float)(k + 1);
  }
  for (int o = 0; o < 6; o++) {
    VP_ASSERT_OK(vp_ops_call(ops[o], N, in, args[o], vp_test_rand(&g_rng), out));
    int changed = 0;
    for (int i = 0; i < N; i++) changed += memcmp(in[i]->data, out[i]->data, 32) != 0;
    double sig = sqrt(N * 0.3 * 0.7);
    if (fabs(changed - N * 0.3) > 5 * sig) fail_msg("%s p = 0.3: %d of %d changed", ops[o], changed, N);
    release_all(out, N);
  }
  release_all(in, N);
}

static void test_rician_statistics(void **state) {
  (void)state;
  int64_t sh[3] = {40, 50, 60};
  vp_tensor *z = NULL, *o = NULL;
  VP_ASSERT_OK(vp_tensor_create(VP_F64, 3, sh, VP_MEM_HOST, 0, &z));
  memset(z->data, 0, vp_tensor_nbytes(z));
  const double sigma = 2.0;
  VP_ASSERT_OK(vp_ops_call("rician_noise", 1, &z, "{\"stddev\": 2}", vp_test_rand(&g_rng), &o));
  int64_t n = vp_tensor_numel(o);
  const double *v = o->data;
  double s1 = 0, s2 = 0;
  for (int64_t i = 0; i < n; i++) s1 += v[i];
  double m = s1 / n;
  for (int64_t i = 0; i < n; i++) s2 += (v[i] - m) * (v[i] - m);
  double var = s2 / (n - 1);
  /* Rayleigh(sigma): mean sigma sqrt(pi/2), variance (4 - pi)/2 sigma^2,
   * fourth central moment (32 - 3 pi^2)/4 sigma^4 (the estimator's sigma) */
  double want_m = sigma * sqrt(M_PI / 2), want_v = (4 - M_PI) / 2 * sigma * sigma;
  double mu4 = (32 - 3 * M_PI * M_PI) / 4 * pow(sigma, 4);
  if (fabs(m - want_m) > 5 * sqrt(want_v / n)) fail_msg("rician mean %g, want %g", m, want_m);
  if (fabs(var - want_v) > 5 * sqrt((mu4 - want_v * want_v) / n))
    fail_msg("rician variance %g, want %g", var, want_v);
  vp_tensor_release(o);
  vp_tensor_release(z);
}

static void channel_moments(const vp_tensor *t, int64_t c, int nonzero_of, const vp_tensor *src,
                            double *mean, double *sd) {
  int64_t cn = vp_tensor_numel(t) / (t->ndim == 4 ? t->shape[0] : 1);
  double s1 = 0, s2 = 0, cnt = 0;
  for (int64_t e = c * cn; e < (c + 1) * cn; e++) {
    if (nonzero_of && vp_cvt_load(src->data, src->dtype, e) == 0) continue;
    double v = vp_cvt_load(t->data, t->dtype, e);
    s1 += v;
    s2 += v * v;
    cnt++;
  }
  *mean = s1 / cnt;
  *sd = sqrt(s2 / cnt - *mean * *mean);
}

static void test_normalize_and_retain(void **state) {
  (void)state;
  vp_tensor *in[NB], *out[NB];
  make_batch(VP_F64, in);
  for (int nz = 0; nz < 2; nz++) {
    char json[128];
    snprintf(json, sizeof json, "{\"stats\": \"channel\", \"nonzero\": %s, \"dtype\": \"float64\"}",
             k_tf[nz]);
    VP_ASSERT_OK(vp_ops_call("normalize", NB, in, json, 0, out));
    for (int i = 0; i < NB; i++) {
      int64_t C = in[i]->ndim == 4 ? in[i]->shape[0] : 1;
      for (int64_t c = 0; c < C; c++) {
        double m, sd;
        channel_moments(out[i], c, nz, in[i], &m, &sd);
        if (fabs(m) > 1e-9 || fabs(sd - 1) > 1e-9)
          fail_msg("normalize nonzero=%d sample %d channel %lld: mean %g std %g", nz, i,
                   (long long)c, m, sd);
      }
      if (nz)
        for (int64_t e = 0; e < vp_tensor_numel(in[i]); e++)
          if (vp_cvt_load(in[i]->data, VP_F64, e) == 0) assert_true(((double *)out[i]->data)[e] == 0);
    }
    release_all(out, NB);
  }
  /* gamma with retain_stats keeps each channel's mean and std */
  VP_ASSERT_OK(vp_ops_call("gamma", NB, in,
                           "{\"gamma\": 1.4, \"retain_stats\": true, \"per_channel\": true}", 0, out));
  for (int i = 0; i < NB; i++) {
    int64_t C = in[i]->ndim == 4 ? in[i]->shape[0] : 1;
    for (int64_t c = 0; c < C; c++) {
      double m0, s0, m1, s1;
      if (in[i]->ndim != 4) continue;
      channel_moments(in[i], c, 0, in[i], &m0, &s0);
      channel_moments(out[i], c, 0, in[i], &m1, &s1);
      if (fabs(m1 - m0) > 1e-9 * (fabs(m0) + s0) || fabs(s1 - s0) > 1e-6 * s0)
        fail_msg("gamma retain sample %d channel %lld: mean %g -> %g, std %g -> %g", i,
                 (long long)c, m0, m1, s0, s1);
    }
  }
  release_all(out, NB);
  release_all(in, NB);
}

/* normalize_masked on the CPU against an oracle in double written here:
 * masks shared by the channels ([D, H, W] and [1, D, H, W]) and per
 * channel ([C, D, H, W]), uint8 and int16, statistics per channel and per
 * sample, outside zero and keep. Tolerance: inside 1e-5 * (|want| + 1)
 * (float32 arithmetic), outside exact. */
static void masked_oracle(const vp_tensor *x, const vp_tensor *m, int per_channel_stats,
                          int outside_keep, const vp_tensor *got, const char *what) {
  const int64_t C = x->ndim == 4 ? x->shape[0] : 1, cn = vp_tensor_numel(x) / (C ? C : 1);
  const int64_t mc = vp_tensor_numel(m) / (cn ? cn : 1); /* 1 or C mask channels */
  double s1[8] = {0}, s2[8] = {0}, n[8] = {0};
  for (int64_t c = 0; c < C; c++)
    for (int64_t e = 0; e < cn; e++) {
      if (vp_cvt_load(m->data, m->dtype, (mc > 1 ? c * cn : 0) + e) == 0) continue;
      double v = vp_cvt_load(x->data, x->dtype, c * cn + e);
      int g = per_channel_stats ? (int)c : 0;
      s1[g] += v, s2[g] += v * v, n[g] += 1;
    }
  for (int64_t c = 0; c < C; c++) {
    int g = per_channel_stats ? (int)c : 0;
    double mean = n[g] ? s1[g] / n[g] : 0, var = n[g] ? s2[g] / n[g] - mean * mean : 0;
    double sd = var > 0 ? sqrt(var) : 0;
    for (int64_t e = 0; e < cn; e++) {
      double v = vp_cvt_load(x->data, x->dtype, c * cn + e);
      double o = vp_cvt_load(got->data, got->dtype, c * cn + e);
      if (vp_cvt_load(m->data, m->dtype, (mc > 1 ? c * cn : 0) + e) == 0) {
        if (o != (outside_keep ? v : 0))
          fail_msg("%s: channel %lld element %lld outside the mask: %g (input %g)", what,
                   (long long)c, (long long)e, o, v);
        continue;
      }
      double want = (v - mean) / (sd > 1e-8 ? sd : 1e-8);
      if (fabs(o - want) > 1e-5 * (fabs(want) + 1))
        fail_msg("%s: channel %lld element %lld: %.9g, want %.9g", what, (long long)c,
                 (long long)e, o, want);
    }
  }
}

static vp_tensor *random_mask(vp_dtype t, int ndim, const int64_t *shape) {
  vp_tensor *m = NULL;
  VP_ASSERT_OK(vp_tensor_create(t, ndim, shape, VP_MEM_HOST, 0, &m));
  for (int64_t e = 0; e < vp_tensor_numel(m); e++)
    vp_cvt_store(m->data, t, e, urand() < 0.6 ? (t == VP_U8 ? 1 + (int)(urand() * 200) : -3) : 0);
  return m;
}

static void test_normalize_masked(void **state) {
  (void)state;
  vp_tensor *in[2 * NB], *out[NB];
  make_batch(VP_F32, in);
  for (int variant = 0; variant < 4; variant++) {
    const vp_dtype mt = variant & 1 ? VP_I16 : VP_U8;
    for (int i = 0; i < NB; i++) {
      const vp_tensor *x = in[i];
      int64_t sh[4];
      int nd;
      if (x->ndim == 4 && (i + variant) % 3 == 0) { /* per channel */
        nd = 4;
        memcpy(sh, x->shape, sizeof sh);
      } else if (x->ndim == 4 && (i + variant) % 3 == 1) { /* one channel in front */
        nd = 4;
        sh[0] = 1;
        memcpy(sh + 1, x->shape + 1, 3 * sizeof *sh);
      } else { /* spatial only */
        nd = 3;
        memcpy(sh, x->shape + (x->ndim == 4), 3 * sizeof *sh);
      }
      in[NB + i] = random_mask(mt, nd, sh);
    }
    const int per_channel = variant < 2, keep = variant == 1 || variant == 2;
    char json[128];
    snprintf(json, sizeof json, "{\"stats\": \"%s\", \"outside\": \"%s\"}",
             per_channel ? "channel" : "sample", keep ? "keep" : "zero");
    VP_ASSERT_OK(vp_ops_call("normalize_masked", NB, in, json, 0, out));
    for (int i = 0; i < NB; i++) {
      char what[160];
      snprintf(what, sizeof what, "normalize_masked %s, %s mask, sample %d", json,
               vp_dtype_name(mt), i);
      assert_int_equal(out[i]->dtype, VP_F32);
      masked_oracle(in[i], in[NB + i], per_channel, keep, out[i], what);
    }
    release_all(out, NB);

    /* in a chain run by the engine: the bytes of the calls one by one */
    vp_tensor *a[NB], *b[NB], *fused[NB];
    VP_ASSERT_OK(vp_ops_call("brightness", NB, in, "{\"factor\": 1.7}", 5, a));
    vp_tensor *ab[2 * NB];
    for (int i = 0; i < NB; i++) ab[i] = a[i], ab[NB + i] = in[NB + i];
    VP_ASSERT_OK(vp_ops_call("normalize_masked", NB, ab, json, 6, b));
    vp_tensor *c[NB];
    VP_ASSERT_OK(vp_ops_call("cast", NB, b, "{\"dtype\": \"float16\"}", 7, c));
    const char *names[3] = {"brightness", "normalize_masked", "cast"};
    const char *jsons[3] = {"{\"factor\": 1.7}", json, "{\"dtype\": \"float16\"}"};
    const vp_op_desc *ops[3];
    vp_op_args *args[3];
    vp_op_call calls[3];
    for (int k = 0; k < 3; k++) {
      ops[k] = vp_op_lookup(names[k]);
      VP_ASSERT_OK(vp_op_args_parse(ops[k], jsons[k], NB, &args[k]));
      memset(&calls[k], 0, sizeof calls[k]);
      calls[k].batch = NB;
      calls[k].args = args[k];
      calls[k].key = vp_op_eager_key(ops[k], 5 + (uint64_t)k);
    }
    for (int i = 0; i < NB; i++)
      VP_ASSERT_OK(vp_tensor_create(VP_F16, in[i]->ndim, in[i]->shape, VP_MEM_HOST, 0, &fused[i]));
    calls[0].in[0] = in;
    calls[1].in[1] = in + NB;
    calls[2].out[0] = fused;
    VP_ASSERT_OK(vp_pointwise_run(ops, calls, 3, 0));
    for (int i = 0; i < NB; i++)
      assert_memory_equal(fused[i]->data, c[i]->data, vp_tensor_nbytes(c[i]));
    for (int k = 0; k < 3; k++) vp_op_args_free(args[k]);
    release_all(a, NB);
    release_all(b, NB);
    release_all(c, NB);
    release_all(fused, NB);
    release_all(in + NB, NB);
  }
  /* a mask of another spatial shape */
  for (int i = 0; i < NB; i++) {
    int64_t sh[3] = {3, 3, 3};
    in[NB + i] = random_mask(VP_U8, 3, sh);
  }
  assert_int_equal(vp_ops_call("normalize_masked", NB, in, NULL, 0, out), VP_ERR_INVALID_ARG);
  assert_non_null(strstr(vp_last_error(), "normalize_masked"));
  assert_non_null(strstr(vp_last_error(), "mask of shape [3, 3, 3]"));
  release_all(in, 2 * NB);
}

static void test_errors(void **state) {
  (void)state;
  vp_tensor *in[NB], *out[NB];
  make_batch(VP_F32, in);
  assert_int_equal(vp_ops_call("clamp", NB, in, "{\"lo\": 5, \"hi\": 3}", 0, out),
                   VP_ERR_INVALID_ARG);
  assert_non_null(strstr(vp_last_error(), "clamp"));
  assert_non_null(strstr(vp_last_error(), "lo"));
  assert_int_equal(vp_ops_call("gamma", NB, in, "{\"gamma\": 0}", 0, out), VP_ERR_INVALID_ARG);
  assert_non_null(strstr(vp_last_error(), "'gamma'"));
  /* a chain with a non-pointwise operator */
  const vp_op_desc *ops[2] = {vp_op_lookup("brightness"), vp_op_lookup("flip")};
  vp_op_call calls[2];
  memset(calls, 0, sizeof calls);
  calls[0].batch = calls[1].batch = NB;
  calls[0].in[0] = in;
  calls[1].out[0] = in;
  assert_int_equal(vp_pointwise_run(ops, calls, 2, 0), VP_ERR_INVALID_ARG);
  assert_non_null(strstr(vp_last_error(), "flip"));
  assert_false(vp_op_is_pointwise(vp_op_lookup("flip")));
  assert_true(vp_op_is_pointwise(vp_op_lookup("cast")));
  release_all(in, NB);
}

int main(void) {
  g_rng = vp_test_seed();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fused_equals_unfused), cmocka_unit_test(test_cast_saturation),
      cmocka_unit_test(test_probabilities),        cmocka_unit_test(test_rician_statistics),
      cmocka_unit_test(test_normalize_and_retain), cmocka_unit_test(test_normalize_masked),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

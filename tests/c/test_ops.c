/* Operators on the CPU against independent references written here (plain
 * loops, float64 where it matters), on fresh random inputs of every dtype,
 * 2-D, 3-D and 4-D, in batches of mixed shapes; argument errors; noise and
 * random-node statistics; affine bookkeeping of flip and slice. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/philox.h"
#include "ops/op.h"
#include "testutil.h"

static uint64_t g_rng;

static double urand(void) { return (double)(vp_test_rand(&g_rng) >> 11) * 0x1p-53; }
static int64_t irand(int64_t lo, int64_t hi) { /* inclusive */
  return lo + (int64_t)(vp_test_rand(&g_rng) % (uint64_t)(hi - lo + 1));
}

/* ---------------------------------------------------------------- */
/* Reference element access, independent of core/convert.h           */

static double ref_half_to_double(uint16_t h) {
  int sign = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  double v;
  if (e == 0) v = ldexp(m, -24);
  else if (e == 31) v = m ? NAN : INFINITY;
  else v = ldexp(1024 + m, e - 25);
  return sign ? -v : v;
}

/* float -> half by rounding the value to the half grid in double. */
static uint16_t ref_half(float x) {
  uint16_t sign = signbit(x) ? 0x8000 : 0;
  double a = fabs((double)x);
  if (isnan(x)) return sign | 0x7e00;
  if (a >= 65520.0) return sign | 0x7c00;
  int e;
  frexp(a, &e); /* a = f * 2^e, f in [0.5, 1) */
  int q_exp = e - 11 < -24 ? -24 : e - 11; /* quantum: 11 significant bits, subnormals 2^-24 */
  double q = nearbyint(ldexp(a, -q_exp)); /* ties to even */
  double r = ldexp(q, q_exp);
  if (r == 0) return sign;
  if (r < 0x1p-14) return sign | (uint16_t)ldexp(r, 24);
  frexp(r, &e);
  uint16_t he = (uint16_t)(e - 1 + 15);
  uint16_t hm = (uint16_t)(ldexp(r, -(e - 1)) * 1024.0 - 1024.0);
  return sign | (uint16_t)(he << 10) | hm;
}

static double get(const vp_tensor *t, int64_t i) {
  const void *p = vp_tensor_data(t);
  switch (vp_tensor_dtype(t)) {
    case VP_U8: return ((const uint8_t *)p)[i];
    case VP_I8: return ((const int8_t *)p)[i];
    case VP_U16: return ((const uint16_t *)p)[i];
    case VP_I16: return ((const int16_t *)p)[i];
    case VP_U32: return ((const uint32_t *)p)[i];
    case VP_I32: return ((const int32_t *)p)[i];
    case VP_I64: return (double)((const int64_t *)p)[i];
    case VP_F16: return ref_half_to_double(((const uint16_t *)p)[i]);
    case VP_F32: return ((const float *)p)[i];
    default: return ((const double *)p)[i];
  }
}

/* Expected stored value of v in dtype t, as the bytes of a uint64. */
static uint64_t ref_store(vp_dtype t, double v) {
  static const double lo[] = {0, -128, 0, -32768, 0, -2147483648.0, -0x1p63};
  static const double hi[] = {255, 127, 65535, 32767, 4294967295.0, 2147483647.0, 0x1p63};
  uint64_t out = 0;
  if (t <= VP_I64) {
    double r = isnan(v) ? 0 : nearbyint(v);
    if (r < lo[t]) r = lo[t];
    if (r > hi[t]) r = hi[t];
    int64_t k = (t == VP_I64 && r >= 0x1p63) ? INT64_MAX : (int64_t)r;
    if (t == VP_U32 || t == VP_U16 || t == VP_U8) {
      uint64_t u = (uint64_t)r;
      memcpy(&out, &u, vp_dtype_size(t));
    } else {
      memcpy(&out, &k, vp_dtype_size(t));
    }
  } else if (t == VP_F16) {
    uint16_t h = ref_half((float)v);
    memcpy(&out, &h, 2);
  } else if (t == VP_F32) {
    float f = (float)v;
    memcpy(&out, &f, 4);
  } else {
    memcpy(&out, &v, 8);
  }
  return out;
}

/* Element i's bytes equal `want` (floats: NaN matches any NaN). */
static int elem_matches(const vp_tensor *t, int64_t i, uint64_t want) {
  size_t es = vp_dtype_size(vp_tensor_dtype(t));
  uint64_t got = 0;
  memcpy(&got, (const char *)vp_tensor_data(t) + i * es, es);
  if (got == want) return 1;
  vp_dtype d = vp_tensor_dtype(t);
  if (d >= VP_F16) {
    vp_tensor *tmp = NULL;
    int64_t one = 1;
    VP_ASSERT_OK(vp_tensor_create(d, 1, &one, VP_MEM_HOST, 0, &tmp));
    memcpy(vp_tensor_data(tmp), &want, es);
    int both_nan = isnan(get(tmp, 0)) && isnan(get(t, i));
    vp_tensor_release(tmp);
    return both_nan;
  }
  return 0;
}

/* ---------------------------------------------------------------- */
/* Inputs                                                            */

/* Random contents: integers over their whole range; floats mostly
 * moderate, some huge, some exact halves (rounding ties), NaN and inf. */
static void fill_random(vp_tensor *t) {
  int64_t n = vp_tensor_numel(t);
  vp_dtype d = vp_tensor_dtype(t);
  unsigned char *p = vp_tensor_data(t);
  for (int64_t i = 0; i < n; i++) {
    if (d <= VP_I64) {
      uint64_t r = vp_test_rand(&g_rng);
      memcpy(p + i * vp_dtype_size(d), &r, vp_dtype_size(d));
      continue;
    }
    double v;
    int k = (int)irand(0, 19);
    if (k == 0) v = NAN;
    else if (k == 1) v = urand() < 0.5 ? INFINITY : -INFINITY;
    else if (k < 4) v = (urand() - 0.5) * 1e20;
    else if (k < 7) v = (double)irand(-70000, 70000) + 0.5;
    else if (k < 9) v = (urand() - 0.5) * 6e9;
    else v = (urand() - 0.5) * 600;
    uint64_t bits = ref_store(d, v);
    memcpy(p + i * vp_dtype_size(d), &bits, vp_dtype_size(d));
  }
}

static void set_random_geometry(vp_tensor *t) {
  double aff[16] = {0};
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 4; c++) aff[r * 4 + c] = (urand() - 0.5) * 4;
  aff[15] = 1;
  VP_ASSERT_OK(vp_tensor_set_affine(t, aff));
  int sn = vp_tensor_spatial_ndim(t);
  double sp[3] = {0.5 + urand(), 0.5 + urand(), 0.5 + urand()};
  VP_ASSERT_OK(vp_tensor_set_spacing(t, sn, sp));
}

static vp_tensor *make(vp_dtype d, int ndim, const int64_t *shape) {
  vp_tensor *t = NULL;
  VP_ASSERT_OK(vp_tensor_create(d, ndim, shape, VP_MEM_HOST, 0, &t));
  fill_random(t);
  set_random_geometry(t);
  return t;
}

/* A batch of mixed shapes: 2-D, 3-D, 4-D (channels), and one large
 * 3-D sample so that the CPU bodies run on the thread pool. */
#define NB 5
static void make_batch(vp_dtype d, vp_tensor **b, int big) {
  int64_t s2[2] = {irand(1, 9), irand(1, 11)};
  int64_t s3[3] = {irand(1, 6), irand(1, 7), irand(1, 9)};
  int64_t s4[4] = {irand(1, 3), irand(1, 5), irand(1, 6), irand(1, 7)};
  int64_t s3b[3] = {irand(2, 5), 1, irand(2, 5)};
  int64_t sbig[3] = {big ? 67 : 9, big ? 64 : 8, big ? 71 : 7};
  b[0] = make(d, 2, s2);
  b[1] = make(d, 3, s3);
  b[2] = make(d, 4, s4);
  b[3] = make(d, 3, s3b);
  b[4] = make(d, 3, sbig);
}

static void release_all(vp_tensor **t, int n) {
  for (int i = 0; i < n; i++) vp_tensor_release(t[i]);
}

/* Index math on (outer, D, H, W) views. */
static void shape4(const vp_tensor *t, int64_t s[4]) {
  int nd = vp_tensor_ndim(t), sn = vp_tensor_spatial_ndim(t);
  if (sn > nd) sn = nd;
  const int64_t *sh = vp_tensor_shape(t);
  s[0] = s[1] = s[2] = s[3] = 1;
  for (int a = 0; a < nd - sn; a++) s[0] *= sh[a];
  for (int k = 0; k < sn; k++) s[3 - k] = sh[nd - 1 - k];
}

static void world(const vp_tensor *t, const double idx_dhw[3], double out[3]) {
  double a[16];
  vp_tensor_affine(t, a);
  int sn = vp_tensor_spatial_ndim(t);
  double ijk[3] = {0, 0, 0}; /* NIfTI (i, j, k) = reversed spatial array indices */
  for (int k = 0; k < sn; k++) ijk[k] = idx_dhw[2 - k];
  for (int r = 0; r < 3; r++) out[r] = a[r * 4] * ijk[0] + a[r * 4 + 1] * ijk[1] + a[r * 4 + 2] * ijk[2] + a[r * 4 + 3];
}

static void assert_world_equal(const double a[3], const double b[3]) {
  for (int r = 0; r < 3; r++)
    if (fabs(a[r] - b[r]) > 1e-9 * (1 + fabs(a[r])))
      fail_msg("world coordinate %d: %.17g != %.17g", r, a[r], b[r]);
}

static void assert_spacing_equal(const vp_tensor *a, const vp_tensor *b) {
  double sa[3], sb[3];
  vp_tensor_spacing(a, sa);
  vp_tensor_spacing(b, sb);
  for (int k = 0; k < 3; k++) assert_true(sa[k] == sb[k]);
  assert_int_equal(vp_tensor_spatial_ndim(a), vp_tensor_spatial_ndim(b));
}

/* ---------------------------------------------------------------- */
/* Registry, descriptions, argument errors                           */

static void test_registry(void **state) {
  (void)state;
  assert_true(vp_ops_count() >= 8);
  const char *want[] = {"flip", "slice", "cast", "gaussian_noise", "uniform", "normal",
                        "coin_flip", "choice"};
  for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
    int found = 0;
    for (int i = 0; i < vp_ops_count(); i++) found |= !strcmp(vp_ops_name(i), want[k]);
    assert_true(found);
    char *text = NULL;
    VP_ASSERT_OK(vp_ops_describe(want[k], &text));
    json_error_t err;
    json_t *d = json_loads(text, 0, &err);
    if (!d) fail_msg("describe(%s) is not JSON: %s", want[k], err.text);
    assert_string_equal(json_string_value(json_object_get(d, "name")), want[k]);
    assert_true(json_is_array(json_object_get(d, "args")));
    assert_true(json_is_boolean(json_object_get(d, "gpu")));
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(d, "args"), i, a) {
      assert_non_null(json_string_value(json_object_get(a, "name")));
      assert_non_null(json_string_value(json_object_get(a, "doc")));
    }
    json_decref(d);
    vp_free(text);
  }
  assert_null(vp_ops_name(-1));
  assert_null(vp_ops_name(vp_ops_count()));
  char *text = (char *)1;
  assert_int_equal(vp_ops_describe("flipp", &text), VP_ERR_INVALID_ARG);
  assert_null(text);
  assert_non_null(strstr(vp_last_error(), "did you mean flip"));
  assert_null(vp_op_lookup("noise"));
  assert_non_null(strstr(vp_last_error(), "gaussian_noise"));
  const vp_op_desc *op = vp_op_lookup("slice");
  assert_int_equal(vp_op_arg_index(op, "fill_value"), 3);
  assert_int_equal(vp_op_arg_index(op, "fill"), -1);
  vp_arg_value v;
  VP_ASSERT_OK(vp_arg_parse(op, 0, "[1, -2, 3]", &v));
  assert_int_equal(v.len, 3);
  assert_true(v.v[1] == -2);
}

/* The call fails with INVALID_ARG (or `want`) and the message holds every
 * one of the words. */
static void expect_error(const char *op, int64_t batch, vp_tensor **in, const char *args,
                         vp_status want, const char *w1, const char *w2) {
  vp_tensor *out[8] = {0};
  vp_status s = vp_ops_call(op, batch, in, args, 1, out);
  if (s != want)
    fail_msg("%s %s: got %s, want %s (%s)", op, args, vp_status_name(s), vp_status_name(want),
             vp_last_error());
  for (int i = 0; i < batch; i++) assert_null(out[i]);
  const char *m = vp_last_error();
  if (!strstr(m, op) || (w1 && !strstr(m, w1)) || (w2 && !strstr(m, w2)))
    fail_msg("%s %s: message '%s' lacks '%s' / '%s'", op, args, m, w1 ? w1 : "", w2 ? w2 : "");
}

static void test_bad_args(void **state) {
  (void)state;
  int64_t sh[3] = {4, 5, 6};
  vp_tensor *in[2] = {make(VP_F32, 3, sh), make(VP_F32, 3, sh)};
  expect_error("flip", 1, in, "{\"horizontl\": true}", VP_ERR_INVALID_ARG, "horizontl",
               "depthwise, vertical, horizontal");
  expect_error("flip", 1, in, "{\"horizontal\": \"yes\"}", VP_ERR_INVALID_ARG, "'horizontal'",
               "true or false");
  expect_error("flip", 1, in, "{\"horizontal\": ", VP_ERR_INVALID_ARG, "JSON", NULL);
  expect_error("flip", 1, in, "[1]", VP_ERR_INVALID_ARG, "object", NULL);
  expect_error("flip", 2, in, "{\"vertical\": {\"per_sample\": [true]}}", VP_ERR_INVALID_ARG,
               "'vertical'", "2 values");
  expect_error("slice", 1, in, "{\"anchor\": [0, 0, 0]}", VP_ERR_INVALID_ARG, "'shape'",
               "required");
  expect_error("slice", 1, in, "{\"anchor\": [0, 0], \"shape\": [1, 1]}", VP_ERR_INVALID_ARG,
               "'anchor'", "3 spatial axes");
  expect_error("slice", 1, in, "{\"anchor\": [0, 0, 0, 0, 0], \"shape\": [1, 1, 1]}",
               VP_ERR_INVALID_ARG, "'anchor'", "5 values");
  expect_error("slice", 1, in, "{\"anchor\": [0, 0.5, 0], \"shape\": [1, 1, 1]}",
               VP_ERR_INVALID_ARG, "'anchor'", "not an integer");
  expect_error("slice", 1, in, "{\"anchor\": [0, 0, 0], \"shape\": [1, -1, 1]}",
               VP_ERR_INVALID_ARG, "'shape'", "outside");
  expect_error("slice", 1, in, "{\"anchor\": [0, 0, 4], \"shape\": [1, 1, 3]}",
               VP_ERR_OUT_OF_BOUNDS, "[4, 7)", "spatial axis 2");
  expect_error("slice", 1, in,
               "{\"anchor\": [0, 0, 0], \"shape\": [1, 1, 1], \"out_of_bounds_policy\": \"wrap\"}",
               VP_ERR_INVALID_ARG, "'out_of_bounds_policy'", "error|pad|trim_to_shape");
  expect_error("slice", 1, in,
               "{\"anchor\": [0, 0, 0], \"shape\": [1, 1, 1], \"fill_value\": 1e301}",
               VP_ERR_INVALID_ARG, "'fill_value'", NULL);
  expect_error("slice", 1, in,
               "{\"anchor\": [0, 0, 0], \"shape\": [1, 1, 1], \"fill_value\": {\"per_sample\": [1]}}",
               VP_ERR_INVALID_ARG, "'fill_value'", "cannot vary per sample");
  expect_error("cast", 1, in, "{}", VP_ERR_INVALID_ARG, "'dtype'", "required");
  expect_error("cast", 1, in, "{\"dtype\": \"complex64\"}", VP_ERR_INVALID_ARG, "'dtype'",
               "complex64");
  expect_error("gaussian_noise", 1, in, "{\"stddev\": -1}", VP_ERR_INVALID_ARG, "'stddev'",
               "outside");
  expect_error("gaussian_noise", 1, in, "{\"p\": 1.5}", VP_ERR_INVALID_ARG, "'p'", "outside");
  expect_error("gaussian_noise", 2, in, "{\"p\": {\"per_sample\": [0.5, 2]}}", VP_ERR_INVALID_ARG,
               "'p'", "sample 1");
  expect_error("uniform", 1, NULL, "{\"range\": [2, 1]}", VP_ERR_INVALID_ARG, "'range'", "lo <= hi");
  expect_error("uniform", 1, NULL, "{\"shape\": [1, 2, 3, 4, 5, 6]}", VP_ERR_INVALID_ARG,
               "'shape'", "6 values");
  expect_error("choice", 1, NULL, "{\"values\": [1, 2], \"p\": [0.5, 0.6]}", VP_ERR_INVALID_ARG,
               "'p'", "sums to");
  expect_error("choice", 1, NULL, "{\"values\": [1, 2], \"p\": [1]}", VP_ERR_INVALID_ARG, "'p'",
               "1 values for 2");
  expect_error("coin_flip", 1, NULL, "{\"probability\": -0.1}", VP_ERR_INVALID_ARG,
               "'probability'", "outside");
  /* a batch mixes dtypes */
  int64_t s2[2] = {3, 3};
  vp_tensor *mixed[2] = {in[0], make(VP_I16, 2, s2)};
  expect_error("flip", 2, mixed, NULL, VP_ERR_INVALID_ARG, "int16", "float32");
  vp_tensor_release(mixed[1]);
  /* unknown operator */
  vp_tensor *out[1];
  assert_int_equal(vp_ops_call("crop3d", 1, in, NULL, 0, out), VP_ERR_INVALID_ARG);
  release_all(in, 2);
}

/* ---------------------------------------------------------------- */
/* flip                                                              */

static void test_flip(void **state) {
  (void)state;
  for (int d = 0; d < VP_DTYPE_COUNT; d++) {
    vp_tensor *in[NB], *out[NB];
    make_batch((vp_dtype)d, in, d == VP_F32 || d == VP_U8);
    int fl[NB][3];
    char json[512];
    int used = 0;
    const char *names[3] = {"depthwise", "vertical", "horizontal"};
    used += snprintf(json + used, sizeof json - used, "{");
    for (int a = 0; a < 3; a++) {
      used += snprintf(json + used, sizeof json - used, "%s\"%s\": {\"per_sample\": [", a ? ", " : "",
                       names[a]);
      for (int i = 0; i < NB; i++) {
        fl[i][a] = (int)irand(0, 1);
        used += snprintf(json + used, sizeof json - used, "%s%s", i ? ", " : "",
                         fl[i][a] ? "true" : "false");
      }
      used += snprintf(json + used, sizeof json - used, "]}");
    }
    snprintf(json + used, sizeof json - used, "}");
    VP_ASSERT_OK(vp_ops_call("flip", NB, in, json, 0, out));
    /* the same flags as argument items (what bindings pass): the same bytes */
    double vals[3][NB];
    int32_t lens[NB];
    vp_arg_item items[3];
    for (int a = 0; a < 3; a++) {
      for (int i = 0; i < NB; i++) {
        vals[a][i] = fl[i][a];
        lens[i] = 1;
      }
      items[a] =
          (vp_arg_item){names[a], NULL, vals[a], lens, 0, VP_ARG_ITEM_BOOL | VP_ARG_ITEM_INTEGER};
    }
    vp_tensor *out2[NB];
    VP_ASSERT_OK(vp_ops_call_items("flip", NB, in, items, 3, 0, out2));
    for (int i = 0; i < NB; i++)
      assert_memory_equal(vp_tensor_data(out2[i]), vp_tensor_data(out[i]),
                          vp_tensor_nbytes(out[i]));
    release_all(out2, NB);
    const double two = 2;
    const vp_arg_item bad = {"vertical", NULL, &two, NULL, 1, VP_ARG_ITEM_INTEGER};
    assert_int_equal(vp_ops_call_items("flip", NB, in, &bad, 1, 0, out2), VP_ERR_INVALID_ARG);
    assert_non_null(
        strstr(vp_last_error(), "flip: argument 'vertical': expected true or false, got 2"));
    for (int i = 0; i < NB; i++) assert_null(out2[i]);
    for (int i = 0; i < NB; i++) {
      assert_int_equal(vp_tensor_dtype(out[i]), d);
      assert_int_equal(vp_tensor_ndim(out[i]), vp_tensor_ndim(in[i]));
      int64_t s[4];
      shape4(in[i], s);
      int sn = vp_tensor_spatial_ndim(in[i]);
      /* a 2-D sample has no D: depthwise is ignored */
      int fd = sn >= 3 && fl[i][0], fh = fl[i][1], fw = fl[i][2];
      size_t es = vp_dtype_size((vp_dtype)d);
      for (int64_t o = 0; o < s[0]; o++)
        for (int64_t z = 0; z < s[1]; z++)
          for (int64_t h = 0; h < s[2]; h++)
            for (int64_t w = 0; w < s[3]; w++) {
              int64_t src = ((o * s[1] + (fd ? s[1] - 1 - z : z)) * s[2] + (fh ? s[2] - 1 - h : h)) * s[3] +
                            (fw ? s[3] - 1 - w : w);
              int64_t dst = ((o * s[1] + z) * s[2] + h) * s[3] + w;
              if (memcmp((char *)vp_tensor_data(out[i]) + dst * es,
                         (char *)vp_tensor_data(in[i]) + src * es, es))
                fail_msg("flip %s sample %d element %lld differs", vp_dtype_name((vp_dtype)d), i,
                         (long long)dst);
            }
      assert_spacing_equal(in[i], out[i]);
      for (int k = 0; k < 5; k++) {
        double oi[3] = {(double)irand(0, s[1] - 1), (double)irand(0, s[2] - 1), (double)irand(0, s[3] - 1)};
        double ii[3] = {fd ? s[1] - 1 - oi[0] : oi[0], fh ? s[2] - 1 - oi[1] : oi[1],
                        fw ? s[3] - 1 - oi[2] : oi[2]};
        double wo[3], wi[3];
        world(out[i], oi, wo);
        world(in[i], ii, wi);
        assert_world_equal(wo, wi);
      }
    }
    release_all(out, NB);
    release_all(in, NB);
  }
}

/* ---------------------------------------------------------------- */
/* slice                                                             */

static void test_slice(void **state) {
  (void)state;
  const char *policies[3] = {"error", "pad", "trim_to_shape"};
  for (int d = 0; d < VP_DTYPE_COUNT; d++) {
    for (int pol = 0; pol < 3; pol++) {
      vp_tensor *in[NB], *out[NB];
      make_batch((vp_dtype)d, in, d == VP_I16 && pol == 1);
      int64_t anchor[NB][3], shp[NB][3];
      char a_json[512], s_json[512];
      int ua = snprintf(a_json, sizeof a_json, "{\"per_sample\": ["),
          us = snprintf(s_json, sizeof s_json, "{\"per_sample\": [");
      for (int i = 0; i < NB; i++) {
        int64_t s4[4];
        shape4(in[i], s4);
        int sn = vp_tensor_spatial_ndim(in[i]);
        ua += snprintf(a_json + ua, sizeof a_json - ua, "%s[", i ? ", " : "");
        us += snprintf(s_json + us, sizeof s_json - us, "%s[", i ? ", " : "");
        for (int a = 0; a < sn; a++) {
          int64_t n = s4[4 - sn + a];
          if (pol == 0) {
            anchor[i][a] = irand(0, n - 1);
            shp[i][a] = irand(0, n - anchor[i][a]);
          } else {
            anchor[i][a] = irand(-3, n + 1);
            shp[i][a] = irand(0, n + 4);
          }
          ua += snprintf(a_json + ua, sizeof a_json - ua, "%s%lld", a ? ", " : "", (long long)anchor[i][a]);
          us += snprintf(s_json + us, sizeof s_json - us, "%s%lld", a ? ", " : "", (long long)shp[i][a]);
        }
        ua += snprintf(a_json + ua, sizeof a_json - ua, "]");
        us += snprintf(s_json + us, sizeof s_json - us, "]");
      }
      snprintf(a_json + ua, sizeof a_json - ua, "]}");
      snprintf(s_json + us, sizeof s_json - us, "]}");
      double fillv = (d >= VP_F16) ? -2.5 : 300.7; /* saturates in the narrow integers */
      char json[1200];
      snprintf(json, sizeof json,
               "{\"anchor\": %s, \"shape\": %s, \"out_of_bounds_policy\": \"%s\", \"fill_value\": %g}",
               a_json, s_json, policies[pol], fillv);
      VP_ASSERT_OK(vp_ops_call("slice", NB, in, json, 0, out));
      uint64_t fill_bits = ref_store((vp_dtype)d, fillv);
      size_t es = vp_dtype_size((vp_dtype)d);
      for (int i = 0; i < NB; i++) {
        int64_t si[4], so[4];
        shape4(in[i], si);
        int sn = vp_tensor_spatial_ndim(in[i]);
        int64_t st[4] = {0, 0, 0, 0}, ext[4] = {si[0], 1, 1, 1};
        for (int a = 0; a < sn; a++) {
          int ax = 4 - sn + a;
          int64_t lo = anchor[i][a], hi = lo + shp[i][a], n = si[ax];
          if (pol == 2) {
            int64_t b = lo < 0 ? 0 : (lo > n ? n : lo), e = hi > n ? n : hi;
            if (e < b) e = b;
            st[ax] = b;
            ext[ax] = e - b;
          } else {
            st[ax] = lo;
            ext[ax] = shp[i][a];
          }
        }
        shape4(out[i], so);
        for (int ax = 0; ax < 4; ax++) assert_int_equal(so[ax], ext[ax]);
        for (int64_t o = 0; o < so[0]; o++)
          for (int64_t z = 0; z < so[1]; z++)
            for (int64_t h = 0; h < so[2]; h++)
              for (int64_t w = 0; w < so[3]; w++) {
                int64_t iz = z + st[1], ih = h + st[2], iw = w + st[3];
                int inside = iz >= 0 && iz < si[1] && ih >= 0 && ih < si[2] && iw >= 0 && iw < si[3];
                uint64_t want = fill_bits;
                if (inside) {
                  want = 0;
                  memcpy(&want, (char *)vp_tensor_data(in[i]) + (((o * si[1] + iz) * si[2] + ih) * si[3] + iw) * es, es);
                }
                int64_t dst = ((o * so[1] + z) * so[2] + h) * so[3] + w;
                uint64_t got = 0;
                memcpy(&got, (char *)vp_tensor_data(out[i]) + dst * es, es);
                if (got != want)
                  fail_msg("slice %s %s sample %d element %lld: %llx != %llx", vp_dtype_name((vp_dtype)d),
                           policies[pol], i, (long long)dst, (unsigned long long)got,
                           (unsigned long long)want);
              }
        assert_spacing_equal(in[i], out[i]);
        double oi[3] = {(double)irand(-2, 5), (double)irand(-2, 5), (double)irand(-2, 5)};
        double ii[3] = {oi[0] + (double)st[1], oi[1] + (double)st[2], oi[2] + (double)st[3]};
        double wo[3], wi[3];
        world(out[i], oi, wo);
        world(in[i], ii, wi);
        assert_world_equal(wo, wi);
      }
      release_all(out, NB);
      release_all(in, NB);
    }
  }
}

/* rel_anchor r places the box at floor(r * (n - shape + 1)) when it fits
 * and -floor(r * (shape - n + 1)) when it does not: the same output as the
 * explicit anchor computed here. */
static void test_slice_rel_anchor(void **state) {
  (void)state;
  int64_t shape[4] = {2, 9, 13, 6};
  vp_tensor *in = NULL;
  VP_ASSERT_OK(vp_tensor_create(VP_F32, 4, shape, VP_MEM_HOST, 0, &in));
  float *p = vp_tensor_data(in);
  for (int64_t k = 0; k < vp_tensor_numel(in); k++) p[k] = (float)k;
  const int64_t box[3] = {4, 13, 8}; /* fits, fits exactly, overhangs */
  for (int trial = 0; trial < 50; trial++) {
    double r[3];
    int64_t anchor[3];
    for (int a = 0; a < 3; a++) {
      r[a] = trial == 0 ? 0.0 : trial == 1 ? 1.0 : (double)irand(0, 1000) / 1000.0;
      int64_t n = shape[1 + a];
      double rr = r[a] < 1.0 ? r[a] : 1.0 - 1e-12;
      anchor[a] = n >= box[a] ? (int64_t)(rr * (double)(n - box[a] + 1))
                              : -(int64_t)(rr * (double)(box[a] - n + 1));
      if (trial == 0) assert_true(anchor[a] == 0);
      if (trial == 1) assert_true(anchor[a] == (n >= box[a] ? n - box[a] : n - box[a]));
    }
    char j1[256], j2[256];
    snprintf(j1, sizeof j1,
             "{\"rel_anchor\": [%.17g, %.17g, %.17g], \"shape\": [4, 13, 8], "
             "\"out_of_bounds_policy\": \"pad\"}",
             r[0], r[1], r[2]);
    snprintf(j2, sizeof j2,
             "{\"anchor\": [%lld, %lld, %lld], \"shape\": [4, 13, 8], "
             "\"out_of_bounds_policy\": \"pad\"}",
             (long long)anchor[0], (long long)anchor[1], (long long)anchor[2]);
    vp_tensor *o1 = NULL, *o2 = NULL;
    VP_ASSERT_OK(vp_ops_call("slice", 1, &in, j1, 0, &o1));
    VP_ASSERT_OK(vp_ops_call("slice", 1, &in, j2, 0, &o2));
    assert_int_equal(vp_tensor_nbytes(o1), 2 * 4 * 13 * 8 * 4);
    assert_memory_equal(vp_tensor_data(o1), vp_tensor_data(o2), vp_tensor_nbytes(o1));
    vp_tensor_release(o1);
    vp_tensor_release(o2);
  }
  vp_tensor *o = (vp_tensor *)0x1;
  assert_int_equal(vp_ops_call("slice", 1, &in, "{\"shape\": [1, 1, 1]}", 0, &o),
                   VP_ERR_INVALID_ARG);
  assert_non_null(strstr(vp_last_error(), "rel_anchor"));
  assert_int_equal(
      vp_ops_call("slice", 1, &in, "{\"rel_anchor\": [0.5, 1.5, 0], \"shape\": [1, 1, 1]}", 0, &o),
      VP_ERR_INVALID_ARG);
  vp_tensor_release(in);
}

/* ---------------------------------------------------------------- */
/* cast                                                              */

static void test_cast(void **state) {
  (void)state;
  for (int from = 0; from < VP_DTYPE_COUNT; from++) {
    vp_tensor *in[NB], *out[NB];
    make_batch((vp_dtype)from, in, 0);
    for (int to = 0; to < VP_DTYPE_COUNT; to++) {
      char json[64];
      snprintf(json, sizeof json, "{\"dtype\": \"%s\"}", vp_dtype_name((vp_dtype)to));
      VP_ASSERT_OK(vp_ops_call("cast", NB, in, json, 0, out));
      for (int i = 0; i < NB; i++) {
        assert_int_equal(vp_tensor_dtype(out[i]), to);
        assert_spacing_equal(in[i], out[i]);
        int64_t n = vp_tensor_numel(in[i]);
        for (int64_t e = 0; e < n; e++) {
          uint64_t want = 0;
          if (from == to) memcpy(&want, (char *)vp_tensor_data(in[i]) + e * vp_dtype_size((vp_dtype)from), vp_dtype_size((vp_dtype)from));
          else want = ref_store((vp_dtype)to, get(in[i], e));
          if (!elem_matches(out[i], e, want))
            fail_msg("cast %s -> %s: element %lld of %.17g", vp_dtype_name((vp_dtype)from),
                     vp_dtype_name((vp_dtype)to), (long long)e, get(in[i], e));
        }
      }
      release_all(out, NB);
    }
    release_all(in, NB);
  }
  /* edge values, by hand */
  int64_t four = 6;
  vp_tensor *f = NULL, *o = NULL;
  VP_ASSERT_OK(vp_tensor_create(VP_F64, 1, &four, VP_MEM_HOST, 0, &f));
  double v[6] = {2.5, -0.5, 1e300, NAN, -1e300, 3.5};
  memcpy(vp_tensor_data(f), v, sizeof v);
  VP_ASSERT_OK(vp_ops_call("cast", 1, &f, "{\"dtype\": \"int64\"}", 0, &o));
  const int64_t *r = vp_tensor_data(o);
  assert_true(r[0] == 2 && r[1] == 0 && r[2] == INT64_MAX && r[3] == 0 && r[4] == INT64_MIN && r[5] == 4);
  vp_tensor_release(o);
  vp_tensor_release(f);
}

/* ---------------------------------------------------------------- */
/* gaussian_noise                                                    */

/* The documented draws: z of element e of counter sample s. */
static float ref_z(vp_rng_key key, uint32_t s, int64_t e) {
  vp_u32x4 r = vp_rng_draw(key, 0, s, (uint64_t)e / 4);
  int k = (int)(e % 4);
  vp_f32x2 z = vp_normal2f(r.v[k < 2 ? 0 : 2], r.v[k < 2 ? 1 : 3]);
  return k % 2 ? z.y : z.x;
}

static void test_noise_exact(void **state) {
  (void)state;
  uint64_t seed = vp_test_rand(&g_rng);
  vp_rng_key key = vp_op_eager_key(vp_op_lookup("gaussian_noise"), seed);
  for (int d = 0; d < VP_DTYPE_COUNT; d++) {
    vp_tensor *in[NB], *out[NB], *again[NB];
    make_batch((vp_dtype)d, in, d == VP_F32);
    double mean[NB], sd[NB], p[NB];
    char json[600];
    int u = snprintf(json, sizeof json, "{\"mean\": {\"per_sample\": [");
    for (int i = 0; i < NB; i++) {
      mean[i] = (urand() - 0.5) * 100;
      u += snprintf(json + u, sizeof json - u, "%s%.17g", i ? ", " : "", mean[i]);
    }
    u += snprintf(json + u, sizeof json - u, "]}, \"stddev\": {\"per_sample\": [");
    for (int i = 0; i < NB; i++) {
      sd[i] = urand() * 50;
      u += snprintf(json + u, sizeof json - u, "%s%.17g", i ? ", " : "", sd[i]);
    }
    u += snprintf(json + u, sizeof json - u, "]}, \"p\": {\"per_sample\": [");
    for (int i = 0; i < NB; i++) {
      p[i] = i == 0 ? 0.0 : (i == 1 ? 1.0 : urand());
      u += snprintf(json + u, sizeof json - u, "%s%.17g", i ? ", " : "", p[i]);
    }
    snprintf(json + u, sizeof json - u, "]}}");
    VP_ASSERT_OK(vp_ops_call("gaussian_noise", NB, in, json, seed, out));
    VP_ASSERT_OK(vp_ops_call("gaussian_noise", NB, in, json, seed, again));
    for (int i = 0; i < NB; i++) {
      assert_memory_equal(vp_tensor_data(out[i]), vp_tensor_data(again[i]), vp_tensor_nbytes(out[i]));
      vp_u32x4 r = vp_rng_draw(key, 0, (uint32_t)i, UINT64_MAX);
      int applied = vp_u01f(r.v[0]) < (float)p[i];
      if (i == 0) assert_false(applied);
      if (i == 1) assert_true(applied);
      int64_t n = vp_tensor_numel(in[i]);
      size_t es = vp_dtype_size((vp_dtype)d);
      for (int64_t e = 0; e < n; e++) {
        uint64_t want = 0;
        if (!applied) {
          memcpy(&want, (char *)vp_tensor_data(in[i]) + e * es, es);
        } else {
          float z = ref_z(key, (uint32_t)i, e);
          if (d == VP_F32 || d == VP_F16) {
            float x = (float)get(in[i], e);
            want = ref_store((vp_dtype)d, (double)(x + ((float)mean[i] + (float)sd[i] * z)));
          } else {
            want = ref_store((vp_dtype)d, get(in[i], e) + (mean[i] + sd[i] * (double)z));
          }
        }
        if (!elem_matches(out[i], e, want))
          fail_msg("gaussian_noise %s sample %d element %lld", vp_dtype_name((vp_dtype)d), i,
                   (long long)e);
      }
    }
    release_all(again, NB);
    release_all(out, NB);
    release_all(in, NB);
  }
}

static void test_noise_statistics(void **state) {
  (void)state;
  /* mean and sigma of the noise on zeros: 5-sigma bounds of the estimators */
  int64_t sh[3] = {40, 50, 60};
  vp_tensor *z = NULL, *o = NULL;
  VP_ASSERT_OK(vp_tensor_create(VP_F64, 3, sh, VP_MEM_HOST, 0, &z));
  memset(vp_tensor_data(z), 0, vp_tensor_nbytes(z));
  const double mu = 1.5, sigma = 3.0;
  VP_ASSERT_OK(vp_ops_call("gaussian_noise", 1, &z, "{\"mean\": 1.5, \"stddev\": 3}",
                           vp_test_rand(&g_rng), &o));
  int64_t n = vp_tensor_numel(o);
  const double *v = vp_tensor_data(o);
  double s1 = 0, s2 = 0;
  for (int64_t i = 0; i < n; i++) s1 += v[i];
  double m = s1 / n;
  for (int64_t i = 0; i < n; i++) s2 += (v[i] - m) * (v[i] - m);
  double sd = sqrt(s2 / (n - 1));
  assert_true(fabs(m - mu) < 5 * sigma / sqrt((double)n));
  assert_true(fabs(sd - sigma) < 5 * sigma / sqrt(2.0 * n));
  vp_tensor_release(o);
  vp_tensor_release(z);

  /* p: the fraction of changed samples within 5 binomial sigmas */
  enum { N = 400 };
  int64_t small[1] = {8};
  vp_tensor *in[N], *out[N];
  for (int i = 0; i < N; i++) {
    VP_ASSERT_OK(vp_tensor_create(VP_F32, 1, small, VP_MEM_HOST, 0, &in[i]));
    memset(vp_tensor_data(in[i]), 0, vp_tensor_nbytes(in[i]));
  }
  const double p = 0.3;
  VP_ASSERT_OK(vp_ops_call("gaussian_noise", N, in, "{\"p\": 0.3}", vp_test_rand(&g_rng), out));
  int changed = 0;
  for (int i = 0; i < N; i++) {
    const float *f = vp_tensor_data(out[i]);
    int any = 0;
    for (int k = 0; k < 8; k++) any |= f[k] != 0;
    changed += any;
  }
  double sig = sqrt(N * p * (1 - p));
  if (fabs(changed - N * p) > 5 * sig) fail_msg("p = 0.3: %d of %d samples changed", changed, N);
  release_all(out, N);
  release_all(in, N);
}

/* ---------------------------------------------------------------- */
/* random nodes                                                      */

static void test_random_nodes(void **state) {
  (void)state;
  uint64_t seed = vp_test_rand(&g_rng);
  enum { N = 3 };
  vp_tensor *a[N], *b[N];
  /* default: one float32 scalar per sample */
  VP_ASSERT_OK(vp_ops_call("uniform", N, NULL, NULL, seed, a));
  for (int i = 0; i < N; i++) {
    assert_int_equal(vp_tensor_ndim(a[i]), 0);
    assert_int_equal(vp_tensor_dtype(a[i]), VP_F32);
    float x = *(const float *)vp_tensor_data(a[i]);
    assert_true(x >= 0 && x <= 1);
  }
  release_all(a, N);

  /* uniform: range per sample, moments, same seed same bytes */
  const char *uj = "{\"range\": {\"per_sample\": [[-2, 6], [10, 10.5], [0, 1]]}, \"shape\": [20000], \"dtype\": \"float64\"}";
  VP_ASSERT_OK(vp_ops_call("uniform", N, NULL, uj, seed, a));
  VP_ASSERT_OK(vp_ops_call("uniform", N, NULL, uj, seed, b));
  const double lo[N] = {-2, 10, 0}, hi[N] = {6, 10.5, 1};
  for (int i = 0; i < N; i++) {
    assert_memory_equal(vp_tensor_data(a[i]), vp_tensor_data(b[i]), vp_tensor_nbytes(a[i]));
    const double *v = vp_tensor_data(a[i]);
    double s = 0;
    for (int k = 0; k < 20000; k++) {
      assert_true(v[k] >= lo[i] && v[k] <= hi[i]);
      s += v[k];
    }
    double w = hi[i] - lo[i];
    assert_true(fabs(s / 20000 - (lo[i] + hi[i]) / 2) < 5 * w / sqrt(12.0 * 20000));
  }
  /* samples differ from each other */
  assert_true(memcmp(vp_tensor_data(a[0]), vp_tensor_data(a[2]), 64) != 0);
  release_all(b, N);
  VP_ASSERT_OK(vp_ops_call("uniform", N, NULL, uj, seed + 1, b));
  assert_true(memcmp(vp_tensor_data(a[2]), vp_tensor_data(b[2]), 64) != 0);
  release_all(b, N);
  release_all(a, N);

  /* normal */
  VP_ASSERT_OK(vp_ops_call("normal", 1, NULL, "{\"mean\": -3, \"stddev\": 0.5, \"shape\": [100, 200], \"dtype\": \"float64\"}", seed, a));
  {
    const double *v = vp_tensor_data(a[0]);
    double s1 = 0, s2 = 0;
    for (int k = 0; k < 20000; k++) s1 += v[k];
    double m = s1 / 20000;
    for (int k = 0; k < 20000; k++) s2 += (v[k] - m) * (v[k] - m);
    assert_true(fabs(m + 3) < 5 * 0.5 / sqrt(20000.0));
    assert_true(fabs(sqrt(s2 / 19999) - 0.5) < 5 * 0.5 / sqrt(40000.0));
    assert_int_equal(vp_tensor_ndim(a[0]), 2);
  }
  vp_tensor_release(a[0]);

  /* coin_flip */
  VP_ASSERT_OK(vp_ops_call("coin_flip", 1, NULL, "{\"probability\": 0.2, \"shape\": [10000]}", seed, a));
  {
    assert_int_equal(vp_tensor_dtype(a[0]), VP_I32);
    const int32_t *v = vp_tensor_data(a[0]);
    int ones = 0;
    for (int k = 0; k < 10000; k++) {
      assert_true(v[k] == 0 || v[k] == 1);
      ones += v[k];
    }
    assert_true(fabs(ones - 2000.0) < 5 * sqrt(10000 * 0.2 * 0.8));
  }
  vp_tensor_release(a[0]);

  /* choice, with and without p */
  VP_ASSERT_OK(vp_ops_call("choice", 1, NULL, "{\"values\": [1, 2, 4], \"p\": [0.5, 0, 0.5], \"shape\": [10000], \"dtype\": \"uint8\"}", seed, a));
  {
    const uint8_t *v = vp_tensor_data(a[0]);
    int c[5] = {0};
    for (int k = 0; k < 10000; k++) {
      assert_true(v[k] == 1 || v[k] == 4);
      c[v[k]]++;
    }
    assert_true(fabs(c[1] - 5000.0) < 5 * 50);
  }
  vp_tensor_release(a[0]);
  VP_ASSERT_OK(vp_ops_call("choice", 1, NULL, "{\"values\": [7, 8, 9, 10], \"shape\": [8000]}", seed, a));
  {
    const float *v = vp_tensor_data(a[0]);
    int c[4] = {0};
    for (int k = 0; k < 8000; k++) {
      assert_true(v[k] >= 7 && v[k] <= 10 && v[k] == floorf(v[k]));
      c[(int)v[k] - 7]++;
    }
    for (int j = 0; j < 4; j++) assert_true(fabs(c[j] - 2000.0) < 5 * sqrt(8000 * 0.25 * 0.75));
  }
  vp_tensor_release(a[0]);
}

/* Results do not depend on the batch: a sample run alone draws what it
 * draws at index 0 of a batch. */
static void test_noise_same_seed_same_bytes(void **state) {
  (void)state;
  int64_t sh[4] = {2, 9, 10, 11};
  vp_tensor *in = make(VP_F32, 4, sh), *o1, *o2, *o3;
  uint64_t seed = vp_test_rand(&g_rng);
  VP_ASSERT_OK(vp_ops_call("gaussian_noise", 1, &in, "{\"stddev\": 2}", seed, &o1));
  VP_ASSERT_OK(vp_ops_call("gaussian_noise", 1, &in, "{\"stddev\": 2}", seed, &o2));
  VP_ASSERT_OK(vp_ops_call("gaussian_noise", 1, &in, "{\"stddev\": 2}", seed ^ 1, &o3));
  assert_memory_equal(vp_tensor_data(o1), vp_tensor_data(o2), vp_tensor_nbytes(o1));
  assert_true(memcmp(vp_tensor_data(o1), vp_tensor_data(o3), vp_tensor_nbytes(o1)) != 0);
  vp_tensor_release(o1);
  vp_tensor_release(o2);
  vp_tensor_release(o3);
  vp_tensor_release(in);
}

/* docs/ops.md is what `voxpipe ops --markdown` prints (regenerate it after
 * changing an operator's descriptor). Needs the CLI (VP_CLI, set by ctest). */
static void test_docs_current(void **state) {
  (void)state;
  const char *cli = getenv("VP_CLI");
  if (!cli) skip();
  char path[1024], cmd[1200];
  snprintf(path, sizeof path, "%s/../../docs/ops.md", vp_test_data_dir());
  snprintf(cmd, sizeof cmd, "'%s' ops --markdown", cli);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t cap = 1 << 20, n = 0;
  char *got = malloc(cap);
  assert_non_null(got);
  for (size_t r; (r = fread(got + n, 1, cap - n, p)) > 0;) n += r;
  assert_int_equal(pclose(p), 0);
  size_t wn = 0;
  char *want = vp_test_read_file(path, &wn);
  if (n != wn || memcmp(got, want, n))
    fail_msg("docs/ops.md is stale: run `voxpipe ops --markdown > docs/ops.md`");
  free(want);
  free(got);
}

int main(void) {
  g_rng = vp_test_seed();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_registry),
      cmocka_unit_test(test_bad_args),
      cmocka_unit_test(test_flip),
      cmocka_unit_test(test_slice), cmocka_unit_test(test_slice_rel_anchor),
      cmocka_unit_test(test_cast),
      cmocka_unit_test(test_noise_exact),
      cmocka_unit_test(test_noise_statistics),
      cmocka_unit_test(test_noise_same_seed_same_bytes),
      cmocka_unit_test(test_random_nodes),
      cmocka_unit_test(test_docs_current),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The operators' GPU bodies against their CPU bodies: bit-exact for flip,
 * slice and cast, within 1e-6 relative (integers: 1, float16: one ulp) for
 * gaussian_noise, on batches of mixed shapes that include a 4-channel
 * 155x240x240 float32 sample. Output buffers are poisoned (0xAB bytes, or
 * NaN for floats) before the GPU run so that unwritten voxels show. Exits 77
 * (skipped) without a GPU. */
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "core/cuda_rt.h"
#include "core/status.h"
#include "testutil.h"
}
#include "ops/op.h"
#include "gpu_testutil.h"

/* Random host tensor: integer bytes over the whole range, floats in
 * [-300, 300) with a few NaN and exact halves. */
static vp_tensor *make_host(vp_dtype d, int ndim, const int64_t *shape) {
  vp_tensor *t = NULL;
  VP_ASSERT_OK(vp_tensor_create(d, ndim, shape, VP_MEM_HOST, 0, &t));
  int64_t n = vp_tensor_numel(t);
  unsigned char *p = (unsigned char *)vp_tensor_data(t);
  size_t es = vp_dtype_size(d);
  for (int64_t i = 0; i < n; i++) {
    uint64_t r = vp_test_rand(&g_rng);
    if (d < VP_F16) {
      memcpy(p + i * es, &r, es);
      continue;
    }
    double v = (r % 97 == 0) ? NAN : ((r % 7 == 0) ? (double)(int)(r % 1000) - 500.5
                                                   : (urand() - 0.5) * 600);
    if (d == VP_F16) {
      /* a float16 with that value's top bits: any half pattern is fine */
      uint16_t h = (uint16_t)(r >> 16);
      if (((h >> 10) & 31) == 31) h &= 0xbfff; /* no inf/nan patterns */
      memcpy(p + i * es, &h, 2);
    } else if (d == VP_F32) {
      float f = (float)v;
      memcpy(p + i * es, &f, 4);
    } else {
      memcpy(p + i * es, &v, 8);
    }
  }
  double aff[16] = {0};
  for (int k = 0; k < 12; k++) aff[k] = urand() - 0.5;
  aff[15] = 1;
  VP_ASSERT_OK(vp_tensor_set_affine(t, aff));
  return t;
}

/* A mixed batch: 2-D, 3-D, 4-D, and (when big) [4, 155, 240, 240]. */
static int make_batch(vp_dtype d, int big, vp_tensor **host, vp_tensor **dev) {
  int64_t s2[2] = {17, 33}, s3[3] = {5, 31, 7}, s4[4] = {2, 3, 9, 65}, sb[4] = {4, 155, 240, 240};
  int n = 0;
  host[n++] = make_host(d, 2, s2);
  host[n++] = make_host(d, 3, s3);
  if (big) host[n++] = make_host(d, 4, sb);
  host[n++] = make_host(d, 4, s4);
  for (int i = 0; i < n; i++) VP_ASSERT_OK(vp_tensor_copy_to(host[i], VP_MEM_DEVICE, 0, &dev[i]));
  return n;
}




static void assert_same_bytes(const char *what, const vp_tensor *cpu, const vp_tensor *gpu_dev) {
  vp_tensor *g = to_host(gpu_dev);
  assert_int_equal(vp_tensor_ndim(cpu), vp_tensor_ndim(g));
  for (int a = 0; a < vp_tensor_ndim(cpu); a++)
    assert_int_equal(vp_tensor_shape(cpu)[a], vp_tensor_shape(g)[a]);
  assert_int_equal(vp_tensor_dtype(cpu), vp_tensor_dtype(g));
  size_t nb = vp_tensor_nbytes(cpu);
  if (memcmp(vp_tensor_data(cpu), vp_tensor_data(g), nb)) {
    const unsigned char *a = (const unsigned char *)vp_tensor_data(cpu),
                        *b = (const unsigned char *)vp_tensor_data(g);
    size_t k = 0;
    while (a[k] == b[k]) k++;
    fail_msg("%s: GPU differs from CPU at byte %zu of %zu (%02x vs %02x)", what, k, nb, b[k], a[k]);
  }
  vp_tensor_release(g);
}

/* Runs op on the CPU, on the GPU through vp_ops_call (metadata, too) and
 * poisoned; all three must agree bit for bit. */
static void compare_exact(const char *name, vp_dtype d, int big, const char *json) {
  vp_tensor *h[8], *dv[8], *co[8], *go[8], *po[8];
  int n = make_batch(d, big, h, dv);
  VP_ASSERT_OK(vp_ops_call(name, n, h, json, 7, co));
  VP_ASSERT_OK(vp_ops_call(name, n, dv, json, 7, go));
  run_poisoned(name, n, dv, json, 7, po);
  char what[160];
  for (int i = 0; i < n; i++) {
    snprintf(what, sizeof what, "%s %s %s sample %d", name, vp_dtype_name(d), json, i);
    assert_int_equal(vp_tensor_memkind(go[i]), VP_MEM_DEVICE);
    assert_same_bytes(what, co[i], go[i]);
    assert_same_bytes(what, co[i], po[i]);
    double a1[16], a2[16];
    vp_tensor_affine(co[i], a1);
    vp_tensor_affine(go[i], a2);
    assert_memory_equal(a1, a2, sizeof a1);
  }
  release_all(po, n);
  release_all(go, n);
  release_all(co, n);
  release_all(dv, n);
  release_all(h, n);
}

static void test_flip_gpu(void **state) {
  (void)state;
  for (int d = 0; d < VP_DTYPE_COUNT; d++)
    compare_exact("flip",(vp_dtype)d, 0,
                  "{\"depthwise\": {\"per_sample\": [true, false, true]}, \"vertical\": true, "
                  "\"horizontal\": {\"per_sample\": [true, true, false]}}");
  compare_exact("flip", VP_F32, 1,
                "{\"depthwise\": true, \"vertical\": {\"per_sample\": [true, false, true, true]}}");
}

static void test_slice_gpu(void **state) {
  (void)state;
  const char *small =
      "{\"anchor\": {\"per_sample\": [[-3, 5], [1, -2, 3], [2, 4, 60]]}, "
      "\"shape\": {\"per_sample\": [[20, 20], [3, 40, 9], [9, 9, 9]]}, "
      "\"out_of_bounds_policy\": \"%s\", \"fill_value\": -7.5}";
  const char *pol[2] = {"pad", "trim_to_shape"};
  char json[512];
  for (int d = 0; d < VP_DTYPE_COUNT; d++)
    for (int p = 0; p < 2; p++) {
      snprintf(json, sizeof json, small, pol[p]);
      compare_exact("slice", (vp_dtype)d, 0, json);
    }
  compare_exact("slice", VP_F32, 1,
                "{\"anchor\": {\"per_sample\": [[0, 0], [0, 0, 0], [-10, 20, 30], [0, 0, 0]]}, "
                "\"shape\": {\"per_sample\": [[17, 33], [5, 31, 7], [160, 128, 128], [9, 9, 9]]}, "
                "\"out_of_bounds_policy\": \"pad\"}");
}

static void test_cast_gpu(void **state) {
  (void)state;
  char json[64];
  for (int from = 0; from < VP_DTYPE_COUNT; from++)
    for (int to = 0; to < VP_DTYPE_COUNT; to++) {
      snprintf(json, sizeof json, "{\"dtype\": \"%s\"}", vp_dtype_name((vp_dtype)to));
      compare_exact("cast", (vp_dtype)from, 0, json);
    }
  compare_exact("cast", VP_F32, 1, "{\"dtype\": \"float16\"}");
  compare_exact("cast", VP_F32, 1, "{\"dtype\": \"int16\"}");
}

static double get_h(const vp_tensor *t, int64_t i) {
  const void *p = vp_tensor_data(t);
  switch (vp_tensor_dtype(t)) {
    case VP_U8: return ((const uint8_t *)p)[i];
    case VP_I8: return ((const int8_t *)p)[i];
    case VP_U16: return ((const uint16_t *)p)[i];
    case VP_I16: return ((const int16_t *)p)[i];
    case VP_U32: return ((const uint32_t *)p)[i];
    case VP_I32: return ((const int32_t *)p)[i];
    case VP_I64: return (double)((const int64_t *)p)[i];
    case VP_F16: {
      uint16_t h = ((const uint16_t *)p)[i];
      int e = (h >> 10) & 31, m = h & 1023;
      double v = e == 0 ? ldexp(m, -24) : (e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25));
      return (h >> 15) ? -v : v;
    }
    case VP_F32: return ((const float *)p)[i];
    default: return ((const double *)p)[i];
  }
}

static void test_noise_gpu(void **state) {
  (void)state;
  const char *json =
      "{\"mean\": {\"per_sample\": [0.5, -2, 3, 0]}, \"stddev\": {\"per_sample\": [1, 20, 0.25, 4]}, "
      "\"p\": {\"per_sample\": [1, 1, 0.5, 1]}}";
  for (int d = 0; d < VP_DTYPE_COUNT; d++) {
    int big = d == VP_F32;
    vp_tensor *h[8], *dv[8], *co[8], *po[8];
    int n = make_batch((vp_dtype)d, 1, h, dv);
    if (!big) { /* the big sample only for float32: the others reuse the small shapes */
      release_all(h, n);
      release_all(dv, n);
      n = make_batch((vp_dtype)d, 0, h, dv);
    }
    char js[512];
    snprintf(js, sizeof js, "%s", json);
    if (!big) /* three samples */
      snprintf(js, sizeof js,
               "{\"mean\": {\"per_sample\": [0.5, -2, 3]}, \"stddev\": {\"per_sample\": [1, 20, "
               "0.25]}, \"p\": {\"per_sample\": [1, 1, 0.5]}}");
    uint64_t seed = vp_test_rand(&g_rng);
    VP_ASSERT_OK(vp_ops_call("gaussian_noise", n, h, js, seed, co));
    run_poisoned("gaussian_noise", n, dv, js, seed, po);
    for (int i = 0; i < n; i++) {
      vp_tensor *g = to_host(po[i]);
      int64_t m = vp_tensor_numel(g);
      for (int64_t e = 0; e < m; e++) {
        double a = get_h(co[i], e), b = get_h(g, e);
        if (isnan(a) && isnan(b)) continue;
        double tol;
        if (d < VP_F16) tol = 1; /* a rounding tie may fall either way */
        /* float32: the normal draws differ in their last bits (logf, sinf
         * and cosf on each side), scaled by |mean| + 6 stddev <= 125;
         * float16: the same before its rounding, which a result that
         * cancels (x + mean + stddev n near 0) can move by an ulp more */
        else if (d == VP_F16) tol = fabs(a) * 0x1p-10 + 0x1p-24 + 1e-6 * 100;
        else tol = 1e-6 * (fabs(a) + 100);
        double err = fabs(a - b);
        if (!(err <= tol))
          fail_msg("gaussian_noise %s sample %d element %lld: CPU %.9g GPU %.9g",
                   vp_dtype_name((vp_dtype)d), i, (long long)e, a, b);
      }
      vp_tensor_release(g);
    }
    release_all(po, n);
    release_all(co, n);
    release_all(dv, n);
    release_all(h, n);
  }
}

int main(void) {
  if (vp_cuda_device_count() == 0) {
    fprintf(stderr, "no CUDA device: skipped\n");
    return 77;
  }
  g_rng = vp_test_seed();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_flip_gpu),
      cmocka_unit_test(test_slice_gpu),
      cmocka_unit_test(test_cast_gpu),
      cmocka_unit_test(test_noise_gpu),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
